"""The `.waitForTaskToken` callback pattern and RedriveExecution through the real boto3.

The callback resource is `sns:publish.waitForTaskToken` on a topic with no subscribers: publishing
needs no outside service, and the token is read where a user without a subscriber would find it,
in the `TaskScheduled` event's parameters of GetExecutionHistory.
"""

import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import wait_for_status
from test_stepfunctions import create, error_code, unique


def native(server, method, path, body=None):
    request = urllib.request.Request(
        server.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def callback_machine(server, sfn, catch=False):
    """Ask (publish the token, wait for it), and with `catch` a Catch of `Rejected` into Said no."""
    topic = native(server, "POST", "/v1/topics", {"name": unique("approvals")})["arn"]
    ask = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
        "Parameters": {"TopicArn": topic, "Message": {"token.$": "$$.Task.Token", "order.$": "$.order"}},
        "HeartbeatSeconds": 600,
        "End": True,
    }
    states = {"Ask": ask}
    if catch:
        ask["Catch"] = [{"ErrorEquals": ["Rejected"], "ResultPath": "$.why", "Next": "Said no"}]
        states["Said no"] = {"Type": "Pass", "End": True}
    return create(sfn, {"StartAt": "Ask", "States": states})


def token_of(sfn, execution_arn, timeout=30):
    """The token from the TaskScheduled parameters, once the task waits for it."""
    deadline = time.monotonic() + timeout
    while True:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]
        types = [e["type"] for e in events]
        scheduled = [e for e in events if e["type"] == "TaskScheduled"]
        # TaskSubmitted: the publish went out, so the task now waits for its token.
        if scheduled and "TaskSubmitted" in types:
            details = scheduled[-1]["taskScheduledEventDetails"]
            assert details["resourceType"] == "sns"
            assert details["resource"] == "publish.waitForTaskToken"
            return json.loads(details["parameters"])["Message"]["token"]
        if time.monotonic() > deadline:
            raise AssertionError(f"no submitted task after {timeout} s: {types}")
        time.sleep(0.02)


def test_wait_for_task_token_success_with_heartbeats(server, sfn):
    arn = callback_machine(server, sfn)
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"order": 7}))
    token = token_of(sfn, started["executionArn"])
    assert sfn.describe_execution(executionArn=started["executionArn"])["status"] == "RUNNING"
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True, "order": 7}))
    done = wait_for_status(sfn, started["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"approved": True, "order": 7}
    types = [e["type"] for e in sfn.get_execution_history(executionArn=started["executionArn"])["events"]]
    assert "TaskSucceeded" in types

    # The task is closed: its token answers no more.
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_heartbeat(taskToken=token)
    assert error_code(excinfo) == "TaskDoesNotExist"


def test_wait_for_task_token_failure_is_caught_or_fails_the_execution(server, sfn):
    arn = callback_machine(server, sfn)
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"order": 8}))
    token = token_of(sfn, started["executionArn"])
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="too expensive")
    done = wait_for_status(sfn, started["executionArn"])
    assert done["status"] == "FAILED"
    assert done["error"] == "Rejected"
    assert done["cause"] == "too expensive"
    failed = [e for e in sfn.get_execution_history(executionArn=started["executionArn"])["events"]
              if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "Rejected"

    caught = callback_machine(server, sfn, catch=True)
    started = sfn.start_execution(stateMachineArn=caught, input=json.dumps({"order": 9}))
    token = token_of(sfn, started["executionArn"])
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="no budget")
    done = wait_for_status(sfn, started["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"order": 9, "why": {"Error": "Rejected", "Cause": "no budget"}}


def test_unknown_and_invalid_tokens_have_aws_error_names(sfn):
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken="not-a-token", output="{}")
    assert error_code(excinfo) == "TaskDoesNotExist"
    # Longer than any token the server hands out, yet within what boto3 lets through.
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_failure(taskToken="x" * 1500, error="E")
    assert error_code(excinfo) == "InvalidToken"


def test_redrive_a_failed_execution_runs_the_failed_state_again(sfn):
    """An activity task fails the first run; the redrive schedules it again and it succeeds."""
    activity = sfn.create_activity(name=unique("flaky"))["activityArn"]
    arn = create(sfn, {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prepared", "Next": "Work"},
            "Work": {"Type": "Task", "Resource": activity, "End": True},
        },
    })
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"job": 1}))
    task = sfn.get_activity_task(activityArn=activity, workerName="py-worker")
    assert json.loads(task["input"]) == {"job": 1, "prepared": "ready"}
    sfn.send_task_failure(taskToken=task["taskToken"], error="Worker.Crashed", cause="disk full")
    failed = wait_for_status(sfn, started["executionArn"])
    assert failed["status"] == "FAILED"
    assert failed["error"] == "Worker.Crashed"

    redriven = sfn.redrive_execution(executionArn=started["executionArn"])
    assert redriven["redriveDate"]
    task = sfn.get_activity_task(activityArn=activity, workerName="py-worker")
    # The redrive resumes at the failed state, with the input it had.
    assert json.loads(task["input"]) == {"job": 1, "prepared": "ready"}
    sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"done": True}))
    done = wait_for_status(sfn, started["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"done": True}
    assert done["redriveCount"] == 1
    types = [e["type"] for e in sfn.get_execution_history(executionArn=started["executionArn"])["events"]]
    assert "ExecutionRedriven" in types
    assert types.count("PassStateEntered") == 1, "Prepare does not run again"

    # A SUCCEEDED execution is not redrivable.
    with pytest.raises(ClientError) as excinfo:
        sfn.redrive_execution(executionArn=started["executionArn"])
    assert error_code(excinfo) == "ExecutionNotRedrivable"
    sfn.delete_activity(activityArn=activity)
