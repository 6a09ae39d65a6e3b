"""Parses a GitHub pull_request webhook payload into what the scan needs.

A Lambda handler as on AWS, run unmodified by the official runtime client
(`python3 -m awslambdaric app.handler`). The event is the EventBridge event's
`detail`: GitHub's payload as the webhook delivered it.
"""

import os
import re

# Where the scanner container sees the repositories (the task definition's mount).
REPOS_MOUNT = os.environ.get("REPOS_MOUNT", "/repos")
# A repository name is one path segment: nothing that could climb out of the mount.
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class InvalidPullRequest(Exception):
    """The event is not a pull_request payload (the workflow catches this by name)."""


def handler(event, context):
    try:
        pr = event["pull_request"]
        repo = event["repository"]
        name = repo["name"]
    except (KeyError, TypeError) as e:
        raise InvalidPullRequest(f"missing field {e}") from None
    if not SAFE_NAME.match(name) or name in (".", ".."):
        raise InvalidPullRequest(f"unexpected repository name {name!r}")
    parsed = {
        "action": event.get("action"),
        "number": pr["number"],
        "title": pr.get("title", ""),
        "author": pr.get("user", {}).get("login"),
        "repository": repo["full_name"],
        "head_ref": pr.get("head", {}).get("ref"),
        "head_sha": pr.get("head", {}).get("sha"),
        "url": pr.get("html_url"),
        "scan_path": f"{REPOS_MOUNT}/{name}",
    }
    print(f"pull request {parsed['repository']}#{parsed['number']} ({parsed['action']}): "
          f"scanning {parsed['scan_path']} (request {context.aws_request_id})", flush=True)
    return parsed
