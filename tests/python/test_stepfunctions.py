"""The Step Functions API through the real boto3, as a user's existing code would call it."""

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import wait_for_status

PASS_CHAIN = {
    "Comment": "three Pass states",
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Parameters": {"who.$": "$.who"}, "Next": "B"},
        "B": {"Type": "Pass", "Result": "hello", "ResultPath": "$.greeting", "Next": "C"},
        "C": {"Type": "Pass", "End": True},
    },
}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(sfn, definition, name=None, kind="STANDARD"):
    return sfn.create_state_machine(
        name=name or unique("sm"),
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/ignored",
        type=kind,
    )["stateMachineArn"]


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_create_describe_list_update_delete(sfn):
    name = unique("crud")
    arn = create(sfn, PASS_CHAIN, name=name)
    assert arn == f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert described["name"] == name
    assert described["type"] == "STANDARD"
    assert described["status"] == "ACTIVE"
    assert json.loads(described["definition"]) == PASS_CHAIN
    listed = [m["name"] for m in sfn.list_state_machines(maxResults=1000)["stateMachines"]]
    assert name in listed

    changed = dict(PASS_CHAIN, Comment="changed")
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(changed))
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])["Comment"] == "changed"

    # The role alone may change too: a new revision with the same definition.
    before = sfn.describe_state_machine(stateMachineArn=arn)
    updated = sfn.update_state_machine(stateMachineArn=arn, roleArn="arn:aws:iam::123456789012:role/other")
    after = sfn.describe_state_machine(stateMachineArn=arn)
    assert after["roleArn"] == "arn:aws:iam::123456789012:role/other"
    assert after["definition"] == before["definition"]
    assert after["revisionId"] == updated["revisionId"] != before["revisionId"]
    with pytest.raises(ClientError) as excinfo:
        sfn.update_state_machine(stateMachineArn=arn)
    assert error_code(excinfo) == "ValidationException"

    sfn.delete_state_machine(stateMachineArn=arn)
    with pytest.raises(ClientError) as excinfo:
        sfn.describe_state_machine(stateMachineArn=arn)
    assert error_code(excinfo) == "StateMachineDoesNotExist"


def test_execution_runs_to_success_with_history(sfn):
    arn = create(sfn, PASS_CHAIN)
    started = sfn.start_execution(stateMachineArn=arn, name="first", input=json.dumps({"who": "world"}))
    assert started["executionArn"].endswith(":first")
    done = wait_for_status(sfn, started["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"who": "world", "greeting": "hello"}
    assert json.loads(done["input"]) == {"who": "world"}
    assert done["stopDate"] >= done["startDate"]

    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    types = [e["type"] for e in events]
    assert types == [
        "ExecutionStarted",
        "PassStateEntered", "PassStateExited",
        "PassStateEntered", "PassStateExited",
        "PassStateEntered", "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[1]["stateEnteredEventDetails"]["name"] == "A"
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == {"who": "world", "greeting": "hello"}

    # Paging: two events a page, in order, and the same events in all.
    paged, token = [], None
    while True:
        kwargs = {"executionArn": started["executionArn"], "maxResults": 2}
        if token:
            kwargs["nextToken"] = token
        page = sfn.get_execution_history(**kwargs)
        assert len(page["events"]) <= 2
        paged.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            break
    assert [e["id"] for e in paged] == [e["id"] for e in events]
    reverse = sfn.get_execution_history(executionArn=started["executionArn"], reverseOrder=True)["events"]
    assert [e["id"] for e in reverse] == [e["id"] for e in reversed(events)]

    listed = sfn.list_executions(stateMachineArn=arn, statusFilter="SUCCEEDED")["executions"]
    assert [e["name"] for e in listed] == ["first"]
    assert sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"] == []
    for_execution = sfn.describe_state_machine_for_execution(executionArn=started["executionArn"])
    assert for_execution["stateMachineArn"] == arn


def test_execution_names_are_idempotent_while_running_with_the_same_input(sfn):
    # AWS: the same name and input as a RUNNING execution returns it; a different input, or a closed
    # execution, is ExecutionAlreadyExists.
    arn = create(sfn, {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    first = sfn.start_execution(stateMachineArn=arn, name="once", input='{"who": 1}')
    again = sfn.start_execution(stateMachineArn=arn, name="once", input='{"who": 1}')
    assert again["executionArn"] == first["executionArn"]
    with pytest.raises(ClientError) as excinfo:
        sfn.start_execution(stateMachineArn=arn, name="once", input='{"who": 2}')
    assert error_code(excinfo) == "ExecutionAlreadyExists"
    sfn.stop_execution(executionArn=first["executionArn"])
    wait_for_status(sfn, first["executionArn"])
    with pytest.raises(ClientError) as excinfo:
        sfn.start_execution(stateMachineArn=arn, name="once", input='{"who": 1}')
    assert error_code(excinfo) == "ExecutionAlreadyExists"


def test_failures_are_reported_with_error_and_cause(sfn):
    arn = create(sfn, {
        "StartAt": "Boom",
        "States": {"Boom": {"Type": "Fail", "Error": "Custom.Bad", "Cause": "it broke"}},
    })
    started = sfn.start_execution(stateMachineArn=arn)
    done = wait_for_status(sfn, started["executionArn"])
    assert done["status"] == "FAILED"
    assert done["error"] == "Custom.Bad"
    assert done["cause"] == "it broke"
    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    assert events[-1]["type"] == "ExecutionFailed"
    assert events[-1]["executionFailedEventDetails"] == {"error": "Custom.Bad", "cause": "it broke"}


def test_stop_a_waiting_execution(sfn):
    arn = create(sfn, {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    started = sfn.start_execution(stateMachineArn=arn)
    wait_for_status(sfn, started["executionArn"], statuses=("RUNNING",))
    sfn.stop_execution(executionArn=started["executionArn"], error="Operator.Stop", cause="no longer needed")
    done = wait_for_status(sfn, started["executionArn"])
    assert done["status"] == "ABORTED"
    assert done.get("error") == "Operator.Stop"
    types = [e["type"] for e in sfn.get_execution_history(executionArn=started["executionArn"])["events"]]
    assert types[-1] == "ExecutionAborted"


def test_start_sync_execution_returns_the_output(sfn):
    arn = create(sfn, PASS_CHAIN, kind="EXPRESS")
    result = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"who": "sync"}))
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"who": "sync", "greeting": "hello"}


def test_activity_worker_loop_with_task_token(sfn):
    activity = sfn.create_activity(name=unique("approve"))["activityArn"]
    assert activity.startswith("arn:aws:states:us-east-1:123456789012:activity:")
    arn = create(sfn, {
        "StartAt": "Approve",
        "States": {
            "Approve": {
                "Type": "Task",
                "Resource": activity,
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.error", "Next": "Rejected"}],
                "End": True,
            },
            "Rejected": {"Type": "Pass", "End": True},
        },
    })
    approved = sfn.start_execution(stateMachineArn=arn, input='{"order": 1}')
    task = sfn.get_activity_task(activityArn=activity, workerName="py-worker")
    assert json.loads(task["input"]) == {"order": 1}
    sfn.send_task_heartbeat(taskToken=task["taskToken"])
    sfn.send_task_success(taskToken=task["taskToken"], output='{"approved": true}')
    done = wait_for_status(sfn, approved["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"approved": True}

    rejected = sfn.start_execution(stateMachineArn=arn, input='{"order": 2}')
    task = sfn.get_activity_task(activityArn=activity, workerName="py-worker")
    sfn.send_task_failure(taskToken=task["taskToken"], error="Rejected", cause="too expensive")
    done = wait_for_status(sfn, rejected["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"order": 2, "error": {"Error": "Rejected", "Cause": "too expensive"}}

    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert error_code(excinfo) in ("TaskDoesNotExist", "InvalidToken", "TaskTimedOut")
    assert activity in [a["activityArn"] for a in sfn.list_activities()["activities"]]
    sfn.delete_activity(activityArn=activity)


def test_errors_have_aws_names(sfn):
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:does-not-exist"
    with pytest.raises(ClientError) as excinfo:
        sfn.start_execution(stateMachineArn=missing)
    assert error_code(excinfo) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as excinfo:
        sfn.describe_state_machine(stateMachineArn="not-an-arn")
    assert error_code(excinfo) == "InvalidArn"
    with pytest.raises(ClientError) as excinfo:
        sfn.create_state_machine(
            name=unique("bad"),
            definition=json.dumps({"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/r",
        )
    assert error_code(excinfo) == "InvalidDefinition"
    assert "Nowhere" in excinfo.value.response["Error"]["Message"]
    name = unique("dup")
    create(sfn, PASS_CHAIN, name=name)
    with pytest.raises(ClientError) as excinfo:
        create(sfn, dict(PASS_CHAIN, Comment="other"), name=name)
    assert error_code(excinfo) == "StateMachineAlreadyExists"


def test_validate_state_machine_definition(sfn):
    ok = sfn.validate_state_machine_definition(definition=json.dumps(PASS_CHAIN), type="STANDARD")
    assert ok["result"] == "OK"
    assert ok["diagnostics"] == []
    bad = sfn.validate_state_machine_definition(
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}}})
    )
    assert bad["result"] == "FAIL"
    assert any(d["location"] == "/States/A/Next" for d in bad["diagnostics"])


JSONATA_ORDER = {
    "QueryLanguage": "JSONata",
    "StartAt": "Price",
    "States": {
        "Price": {
            "Type": "Pass",
            "Assign": {"total": "{% $sum($states.input.lines.(qty * price)) %}", "customer": "{% $states.input.customer %}"},
            "Output": {"count": "{% $count($states.input.lines) %}"},
            "Next": "Big?",
        },
        "Big?": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $total > 100 %}", "Next": "Discount", "Assign": {"tier": "gold"}}],
            "Default": "Done",
            "Assign": {"tier": "standard"},
        },
        "Discount": {"Type": "Pass", "Assign": {"total": "{% $total * 0.9 %}"}, "Next": "Done"},
        "Done": {
            "Type": "Succeed",
            "Output": {"customer": "{% $customer %}", "tier": "{% $tier %}", "total": "{% $total %}", "lines": "{% $states.input.count %}"},
        },
    },
}


def test_a_jsonata_workflow_with_variables_runs_and_its_history_shows_them(sfn):
    arn = create(sfn, JSONATA_ORDER)
    start = sfn.start_execution(
        stateMachineArn=arn,
        input=json.dumps({"customer": "ann", "lines": [{"qty": 2, "price": 50}, {"qty": 1, "price": 20}]}),
    )
    described = wait_for_status(sfn, start["executionArn"])
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"customer": "ann", "tier": "gold", "total": 108, "lines": 2}
    events = sfn.get_execution_history(executionArn=start["executionArn"])["events"]
    price_exit = next(e for e in events if e["type"] == "PassStateExited")
    details = price_exit["stateExitedEventDetails"]
    assert details["name"] == "Price"
    assert details["assignedVariables"] == {"total": "120", "customer": '"ann"'}
    assert details["assignedVariablesDetails"] == {"truncated": False}


def test_a_failing_jsonata_expression_fails_with_states_query_evaluation_error(sfn):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Bad",
        "States": {"Bad": {"Type": "Pass", "Output": "{% $states.input.n + 'x' %}", "End": True}},
    }
    start = sfn.start_execution(stateMachineArn=create(sfn, definition), input='{"n": 1}')
    described = wait_for_status(sfn, start["executionArn"])
    assert described["status"] == "FAILED"
    assert described["error"] == "States.QueryEvaluationError"
    assert "specified for the field 'Output'" in described["cause"]


def test_validation_names_the_fields_of_the_wrong_query_language(sfn):
    bad = sfn.validate_state_machine_definition(
        definition=json.dumps(
            {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.a", "Output": "{% 1 + %}", "End": True}}}
        )
    )
    assert bad["result"] == "FAIL"
    locations = {d["location"] for d in bad["diagnostics"]}
    assert {"/States/A/InputPath", "/States/A/Output"} <= locations
    with pytest.raises(ClientError) as excinfo:
        create(sfn, {"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {"x": 1}, "End": True}}})
    assert error_code(excinfo) == "InvalidDefinition"
    assert "/States/A/Output" in excinfo.value.response["Error"]["Message"]


def test_test_state_takes_variables_and_reports_them(sfn):
    state = {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"seen": "{% $limit + 1 %}"}, "Output": "{% $states.input.v * $limit %}", "End": True}
    answer = sfn.test_state(
        definition=json.dumps(state),
        roleArn="arn:aws:iam::123456789012:role/ignored",
        input='{"v": 3}',
        variables='{"limit": 10}',
    )
    assert answer["status"] == "SUCCEEDED"
    assert json.loads(answer["output"]) == 30
    assert json.loads(answer["inspectionData"]["variables"]) == {"limit": 10, "seen": 11}


def test_tags_on_state_machines_and_activities(sfn):
    arn = sfn.create_state_machine(
        name=unique("tagged"),
        definition=json.dumps(PASS_CHAIN),
        roleArn="arn:aws:iam::123456789012:role/ignored",
        tags=[{"key": "team", "value": "platform"}, {"key": "stage", "value": "dev"}],
    )["stateMachineArn"]
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "stage", "value": "prod"}, {"key": "cost", "value": "42"}])
    sfn.untag_resource(resourceArn=arn, tagKeys=["team"])
    tags = sfn.list_tags_for_resource(resourceArn=arn)["tags"]
    assert sorted((t["key"], t["value"]) for t in tags) == [("cost", "42"), ("stage", "prod")]

    activity = sfn.create_activity(name=unique("act"), tags=[{"key": "owner", "value": "ops"}])["activityArn"]
    assert sfn.list_tags_for_resource(resourceArn=activity)["tags"] == [{"key": "owner", "value": "ops"}]

    with pytest.raises(ClientError) as excinfo:
        sfn.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(49)])
    assert error_code(excinfo) == "TooManyTags"
    with pytest.raises(ClientError) as excinfo:
        sfn.list_tags_for_resource(resourceArn=arn + "-missing")
    assert error_code(excinfo) == "ResourceNotFound"
    # A refused call changed nothing.
    assert len(sfn.list_tags_for_resource(resourceArn=arn)["tags"]) == 2
