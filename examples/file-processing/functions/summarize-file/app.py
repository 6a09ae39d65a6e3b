"""Reads an uploaded file and stores a summary of it next to the uploads.

A Lambda handler as on AWS, run unmodified by `python3 -m awslambdaric app.handler`. Buckets
are folders under STORAGE_ROOT: the file of bucket B and key K is STORAGE_ROOT/B/K, and its
summary goes to STORAGE_ROOT/summaries/B/K.summary.json.
"""

import hashlib
import json
import os
import re
from collections import Counter

STORAGE_ROOT = os.environ["STORAGE_ROOT"]
WORD = re.compile(r"[A-Za-z0-9']+")


class FileNotFound(Exception):
    """The event names a file that is not there (the workflow catches this by name)."""


class InvalidKey(Exception):
    """A bucket or key that would leave the storage folder."""


def inside(root, *parts):
    path = os.path.realpath(os.path.join(root, *parts))
    if not path.startswith(os.path.realpath(root) + os.sep):
        raise InvalidKey(f"{'/'.join(parts)!r} is outside the storage folder")
    return path


def handler(event, context):
    bucket = event["bucket"]["name"]
    key = event["object"]["key"]
    path = inside(STORAGE_ROOT, bucket, key)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFound(f"s3://{bucket}/{key} does not exist") from None
    text = data.decode("utf-8", errors="replace")
    words = [w.lower() for w in WORD.findall(text)]
    summary = {
        "bucket": bucket,
        "key": key,
        "bytes": len(data),
        "lines": len(text.splitlines()),
        "words": len(words),
        "sha256": hashlib.sha256(data).hexdigest(),
        "first_line": text.splitlines()[0] if text else "",
        "top_words": [w for w, _ in Counter(words).most_common(3)],
    }
    summary_key = f"{key}.summary.json"
    target = inside(STORAGE_ROOT, "summaries", bucket, summary_key)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # Written whole, then renamed: a reader never sees half a summary.
    with open(target + ".tmp", "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(target + ".tmp", target)
    print(f"summarized s3://{bucket}/{key}: {summary['lines']} lines, {summary['words']} words", flush=True)
    return {**summary, "summary": f"s3://summaries/{bucket}/{summary_key}"}
