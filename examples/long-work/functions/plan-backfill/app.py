"""Plans a backfill and hands it off: the work takes longer than a function may run.

A Lambda handler as on AWS, run unmodified by `python3 -m awslambdaric app.handler`. It checks
the request and sizes the work against its own time budget (the function's timeout: Lambda's
is at most 15 minutes); the workflow then runs the work in a container task, which has no
such limit and sends heartbeats while it works.
"""

import re

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class InvalidRequest(Exception):
    pass


def handler(event, context):
    job_id = str(event.get("job_id", ""))
    if not JOB_ID.match(job_id):
        raise InvalidRequest(f"job_id {job_id!r} is not 1 to 64 letters, digits, - or _")
    chunks = int(event["chunks"])
    chunk_seconds = int(event.get("chunk_seconds", 1))
    if not (1 <= chunks <= 10_000 and 1 <= chunk_seconds <= 3600):
        raise InvalidRequest("chunks must be 1..10000 and chunk_seconds 1..3600")
    budget = context.get_remaining_time_in_millis() / 1000
    estimated = chunks * chunk_seconds
    plan = {
        "job_id": job_id,
        "chunks": chunks,
        "chunk_seconds": chunk_seconds,
        "estimated_seconds": estimated,
        "function_timeout_seconds": round(budget),
        "hand_off": estimated > budget,
    }
    print(f"backfill {job_id}: {chunks} chunks, about {estimated} s; "
          f"this function has {budget:.1f} s, so it hands off to a container", flush=True)
    return plan
