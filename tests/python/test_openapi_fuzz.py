"""Property-based fuzzing of the native REST API from its own OpenAPI document, with schemathesis.

The property: no request, however malformed, gets a 5xx; and every documented response matches its
schema (`not_a_server_error`, `response_schema_conformance`). The run is bounded (a fixed number of
examples per operation) and deterministic (`--generation-deterministic`, which also keeps no example database), so
that it is CI-stable; it takes well under two minutes against the debug binary.

Two schemathesis runs, each against a fresh server:
- breadth: every operation with generated path parameters (almost all unknown names: the routing,
  validation and 404 paths);
- existing resources: the path parameters pinned to a state machine, an execution and an activity
  created beforehand, so the generated bodies and queries reach the handlers' real logic.

Responses are checked against the served document as it is.

Activity polling long-polls (up to 60 s by default), which a fuzzer would only see as timeouts: it
is excluded from both runs and checked below with explicit values instead. The AWS JSON protocol on
`POST /` is not in the OpenAPI document; a small Hypothesis property covers it at the end.
"""

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import pytest

from conftest import Server

# Imported, not importorskip'd: a missing fuzzer must fail the suite, not skip it.
import schemathesis  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")
CHECKS = "not_a_server_error,response_schema_conformance"
MAX_EXAMPLES = "25"
POLL = "/v1/activities/{name}/poll"
# The resources of the API issue (state machines, executions, task tokens, activities), the event
# bus (buses, rules, targets, archives, replays, dead letters, webhooks) and the system routes. Functions, task definitions and container tasks start processes and containers: fuzzing them
# needs its own setup (fake runtimes), left to their owners.
SCOPE = r"^/(healthz|metrics|v1/(state-machines|activities|task-tokens|event-buses|event-patterns|archives|replays|dead-letters|webhooks))(/|$)"

PASS_ONE = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
WAIT_LONG = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}


def call(url, method, path, body=None, headers=None, content_type="application/json"):
    """One HTTP request; returns (status, body bytes) for any status."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    if data is not None and content_type:
        request.add_header("content-type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def make_resources(url):
    """The resources the pinned runs and the AWS property aim at."""
    for path, body in [
        ("/v1/state-machines", {"name": "fuzz-std", "type": "STANDARD", "definition": WAIT_LONG}),
        ("/v1/state-machines", {"name": "fuzz-express", "type": "EXPRESS", "definition": PASS_ONE}),
        ("/v1/state-machines/fuzz-std/executions", {"name": "fuzz-exec", "input": {}}),
        ("/v1/activities", {"name": "fuzz-act"}),
    ]:
        status, answer = call(url, "POST", path, body)
        assert status == 201, (path, status, answer)
    rule = {"event_pattern": {"source": ["fuzz"]}}
    status, answer = call(url, "PUT", "/v1/event-buses/default/rules/fuzz-rule", rule)
    assert status == 200, (status, answer)
    status, answer = call(url, "POST", "/v1/archives", {"name": "fuzz-archive", "event_bus": "default"})
    assert status == 201, (status, answer)


def started_server():
    srv = Server()
    try:
        make_resources(srv.url)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fuzz_server():
    # A server per schemathesis run: it leaves hundreds of resources behind, and deletes what it finds.
    yield from started_server()


@pytest.fixture(scope="module")
def shared_server():
    # For the hand-written cases below, which leave the fixture's resources in place.
    yield from started_server()


def run_schemathesis(url, config, *extra):
    """Runs the schemathesis CLI on the server's own OpenAPI document, in a temporary folder holding
    `config` as schemathesis.toml."""
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=30) as response:
        document = json.load(response)
    with tempfile.TemporaryDirectory(prefix="stepyard-fuzz-") as folder:
        with open(os.path.join(folder, "schemathesis.toml"), "w") as out:
            out.write(config)
        with open(os.path.join(folder, "openapi.json"), "w") as out:
            json.dump(document, out)
        command = [
            SCHEMATHESIS,
            "run",
            "openapi.json",
            "--url",
            url,
            "--checks",
            CHECKS,
            "--max-examples",
            MAX_EXAMPLES,
            "--generation-deterministic",
            "--request-timeout",
            "20",
            "--workers",
            "1",
            "--include-path-regex",
            SCOPE,
            "--exclude-path",
            POLL,
            "--no-color",
            *extra,
        ]
        done = subprocess.run(
            command, cwd=folder, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"}
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found problems ({' '.join(command)}):\n{output[-12000:]}"
    return output


def test_openapi_fuzz_breadth(fuzz_server):
    run_schemathesis(fuzz_server.url, "")


# Path parameters pinned to the resources made by the fixture; the sync start goes to the EXPRESS
# machine, so that it runs (a sync start of a STANDARD one is a 400, checked below).
EXISTING_RESOURCES = r"""
[[operations]]
include-path-regex = '^/v1/state-machines/\{name\}(?!/executions/sync$)'
parameters = { "path.name" = "fuzz-std", "path.execution" = "fuzz-exec" }

[[operations]]
include-path = "/v1/state-machines/{name}/executions/sync"
parameters = { "path.name" = "fuzz-express" }

[[operations]]
include-path-regex = '^/v1/activities/\{name\}'
parameters = { "path.name" = "fuzz-act" }

[[operations]]
include-path-regex = '^/v1/(event-buses|webhooks/github)/\{bus\}'
parameters = { "path.bus" = "default", "path.rule" = "fuzz-rule" }

[[operations]]
include-path-regex = '^/v1/archives/\{name\}'
parameters = { "path.name" = "fuzz-archive" }
"""


def test_openapi_fuzz_existing_resources(fuzz_server):
    # No DELETE: the pinned resources must live through the whole run. No stateful phase: with the
    # names pinned its links add nothing.
    run_schemathesis(
        fuzz_server.url, EXISTING_RESOURCES, "--exclude-method", "DELETE", "--phases", "examples,coverage,fuzzing"
    )


POLL_QUERIES = [
    "wait_seconds=0",
    "wait_seconds=61",
    "wait_seconds=-1",
    "wait_seconds=18446744073709551616",
    "wait_seconds=abc",
    "wait_seconds=0&worker_name=%00%ff",
    "wait_seconds=0&wait_seconds=1",
]


def test_activity_poll_rejects_or_answers_without_5xx(shared_server):
    for query in POLL_QUERIES:
        for name in ("fuzz-act", "no-such-activity", "%20", "a" * 300):
            status, body = call(shared_server.url, "POST", f"/v1/activities/{name}/poll?{query}")
            assert status < 500, (name, query, status, body)


def test_sync_start_of_a_standard_machine_is_a_client_error(shared_server):
    # Found by this fuzzer: it was a 500 (StateMachineTypeNotSupported unmapped), fixed in 5ec4983.
    status, body = call(shared_server.url, "POST", "/v1/state-machines/fuzz-std/executions/sync", {"input": {}})
    assert status == 400, (status, body)
    status, body = call(
        shared_server.url,
        "POST",
        "/",
        {"stateMachineArn": f"{ARN}:stateMachine:fuzz-std"},
        headers={"x-amz-target": "AWSStepFunctions.StartSyncExecution"},
        content_type="application/x-amz-json-1.0",
    )
    assert status == 400 and json.loads(body)["__type"] == "StateMachineTypeNotSupported", (status, body)


# --- the AWS JSON protocol on POST / (not in the OpenAPI document) -----------------------------

ARN = "arn:aws:states:us-east-1:123456789012"
AWS_OPERATIONS = [
    "CreateStateMachine",
    "DescribeStateMachine",
    "UpdateStateMachine",
    "ListStateMachines",
    "ValidateStateMachineDefinition",
    "StartExecution",
    "StartSyncExecution",
    "DescribeExecution",
    "ListExecutions",
    "StopExecution",
    "RedriveExecution",
    "GetExecutionHistory",
    "DescribeStateMachineForExecution",
    "SendTaskSuccess",
    "SendTaskFailure",
    "SendTaskHeartbeat",
    "CreateActivity",
    "DescribeActivity",
    "ListActivities",
    "TestState",
    "NoSuchOperation",
]
AWS_FIELDS = {
    "stateMachineArn": st.sampled_from(
        [f"{ARN}:stateMachine:fuzz-std", f"{ARN}:stateMachine:fuzz-express", f"{ARN}:stateMachine:none", "x"]
    ),
    "executionArn": st.sampled_from([f"{ARN}:execution:fuzz-std:fuzz-exec", f"{ARN}:execution:none:none", ""]),
    "activityArn": st.sampled_from([f"{ARN}:activity:fuzz-act", "arn:aws:states:::activity:"]),
    "name": st.text(max_size=90),
    "definition": st.one_of(st.just(json.dumps(PASS_ONE)), st.text(max_size=40)),
    "input": st.one_of(st.just("{}"), st.text(max_size=40)),
    "type": st.sampled_from(["STANDARD", "EXPRESS", "express", ""]),
    "maxResults": st.integers(min_value=-(2**63), max_value=2**64),
    "nextToken": st.text(max_size=40),
    "statusFilter": st.sampled_from(["RUNNING", "SUCCEEDED", "nope"]),
    "taskToken": st.text(max_size=40),
    "output": st.text(max_size=40),
    "reverseOrder": st.booleans(),
    "error": st.text(max_size=20),
    "cause": st.text(max_size=20),
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


@st.composite
def aws_bodies(draw):
    """A JSON object with AWS field names, each either well-typed or any JSON value; or raw bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=60))
    keys = draw(st.lists(st.sampled_from(sorted(AWS_FIELDS)), max_size=5, unique=True))
    body = {}
    for key in keys:
        body[key] = draw(AWS_FIELDS[key] if draw(st.booleans()) else JSON_VALUES)
    return json.dumps(body).encode()


@settings(
    max_examples=500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operation=st.sampled_from(AWS_OPERATIONS), body=aws_bodies())
def test_aws_protocol_never_answers_5xx(shared_server, operation, body):
    status, answer = call(
        shared_server.url,
        "POST",
        "/",
        body,
        headers={"x-amz-target": f"AWSStepFunctions.{operation}"},
        content_type="application/x-amz-json-1.0",
    )
    assert status < 500, (operation, body, status, answer)
