"""The same operations through the real AWS CLI with --endpoint-url."""

import json
import os
import subprocess
import sys

from conftest import wait_for_status


def aws(server, *args):
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    })
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    result = subprocess.run(
        [cli, "stepfunctions", *args, "--endpoint-url", server.url, "--output", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    return result


def test_cli_create_start_describe(server, sfn, tmp_path):
    definition = tmp_path / "sm.json"
    definition.write_text(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}))
    created = aws(server, "create-state-machine", "--name", "cli-machine",
                  "--definition", f"file://{definition}", "--role-arn", "arn:aws:iam::123456789012:role/r")
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["stateMachineArn"]
    started = aws(server, "start-execution", "--state-machine-arn", arn, "--input", '{"a": 1}')
    assert started.returncode == 0, started.stderr
    execution = json.loads(started.stdout)["executionArn"]
    wait_for_status(sfn, execution)
    described = aws(server, "describe-execution", "--execution-arn", execution)
    assert described.returncode == 0, described.stderr
    body = json.loads(described.stdout)
    assert body["status"] == "SUCCEEDED"
    assert json.loads(body["output"]) == {"ok": 1}
    listed = aws(server, "list-state-machines")
    assert "cli-machine" in [m["name"] for m in json.loads(listed.stdout)["stateMachines"]]


def test_cli_error_is_the_aws_error_name(server):
    result = aws(server, "describe-state-machine", "--state-machine-arn",
                 "arn:aws:states:us-east-1:123456789012:stateMachine:nope")
    assert result.returncode != 0
    assert "StateMachineDoesNotExist" in result.stderr


def test_cli_stop_execution_and_get_execution_history(server, sfn, tmp_path):
    definition = tmp_path / "nap.json"
    definition.write_text(json.dumps({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}))
    created = aws(server, "create-state-machine", "--name", "cli-napper",
                  "--definition", f"file://{definition}", "--role-arn", "arn:aws:iam::123456789012:role/r")
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["stateMachineArn"]
    started = aws(server, "start-execution", "--state-machine-arn", arn, "--name", "cli-nap-1")
    assert started.returncode == 0, started.stderr
    execution = json.loads(started.stdout)["executionArn"]
    wait_for_status(sfn, execution, statuses=("RUNNING",))

    stopped = aws(server, "stop-execution", "--execution-arn", execution,
                  "--error", "Operator.Stop", "--cause", "from the CLI")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopDate" in json.loads(stopped.stdout)
    done = wait_for_status(sfn, execution)
    assert done["status"] == "ABORTED"

    # The CLI pages the history itself (--page-size), so a one-event page still gives every event.
    history = aws(server, "get-execution-history", "--execution-arn", execution, "--page-size", "1")
    assert history.returncode == 0, history.stderr
    events = json.loads(history.stdout)["events"]
    types = [e["type"] for e in events]
    assert types[0] == "ExecutionStarted"
    assert types[-1] == "ExecutionAborted"
    assert "WaitStateEntered" in types
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["executionAbortedEventDetails"] == {"error": "Operator.Stop", "cause": "from the CLI"}

    newest_first = aws(server, "get-execution-history", "--execution-arn", execution,
                       "--reverse-order", "--max-items", "1")
    assert newest_first.returncode == 0, newest_first.stderr
    page = json.loads(newest_first.stdout)
    assert [e["type"] for e in page["events"]] == ["ExecutionAborted"]
    assert page.get("NextToken"), "the CLI's own token for the rest"

    again = aws(server, "stop-execution", "--execution-arn", arn.replace(":stateMachine:", ":execution:") + ":nope")
    assert again.returncode != 0
    assert "ExecutionDoesNotExist" in again.stderr


def test_cli_start_sync_execution(server, tmp_path):
    definition = tmp_path / "express.json"
    definition.write_text(json.dumps({
        "StartAt": "Greet",
        "States": {"Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hi {}', $.who)"}, "End": True}},
    }))
    created = aws(server, "create-state-machine", "--name", "cli-express", "--type", "EXPRESS",
                  "--definition", f"file://{definition}", "--role-arn", "arn:aws:iam::123456789012:role/r")
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["stateMachineArn"]
    # AWS_DISABLE_HOST_PREFIX_INJECTION (set in `aws`) keeps the CLI from calling `sync-HOST`.
    result = aws(server, "start-sync-execution", "--state-machine-arn", arn, "--input", '{"who": "cli"}')
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["status"] == "SUCCEEDED"
    assert json.loads(body["output"]) == {"greeting": "hi cli"}
    assert body["executionArn"].startswith("arn:aws:states:us-east-1:123456789012:express:cli-express:")

    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps({"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Nope", "Cause": "said no"}}}))
    created = aws(server, "create-state-machine", "--name", "cli-express-fails", "--type", "EXPRESS",
                  "--definition", f"file://{failing}", "--role-arn", "arn:aws:iam::123456789012:role/r")
    arn = json.loads(created.stdout)["stateMachineArn"]
    result = aws(server, "start-sync-execution", "--state-machine-arn", arn)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert (body["status"], body["error"], body["cause"]) == ("FAILED", "Nope", "said no")


def test_cli_lists_state_machine_versions(server, tmp_path):
    definition = tmp_path / "v.json"
    for n in (1, 2):
        definition.write_text(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": n, "End": True}}}))
        if n == 1:
            created = aws(server, "create-state-machine", "--name", "cli-versions",
                          "--definition", f"file://{definition}", "--role-arn", "arn:aws:iam::123456789012:role/r")
            assert created.returncode == 0, created.stderr
            arn = json.loads(created.stdout)["stateMachineArn"]
        else:
            updated = aws(server, "update-state-machine", "--state-machine-arn", arn, "--definition", f"file://{definition}")
            assert updated.returncode == 0, updated.stderr
    listed = aws(server, "list-state-machine-versions", "--state-machine-arn", arn)
    assert listed.returncode == 0, listed.stderr
    versions = json.loads(listed.stdout)["stateMachineVersions"]
    assert len(versions) == 2
    oldest = versions[-1]["stateMachineVersionArn"]
    assert oldest.startswith(arn + ":")
    described = aws(server, "describe-state-machine", "--state-machine-arn", oldest)
    assert described.returncode == 0, described.stderr
    assert json.loads(json.loads(described.stdout)["definition"])["States"]["P"]["Result"] == 1


def test_cli_tags(server, tmp_path):
    definition = tmp_path / "sm.json"
    definition.write_text(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    created = aws(server, "create-state-machine", "--name", "cli-tagged",
                  "--definition", f"file://{definition}", "--role-arn", "arn:aws:iam::123456789012:role/r",
                  "--tags", "key=team,value=platform")
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["stateMachineArn"]
    tagged = aws(server, "tag-resource", "--resource-arn", arn, "--tags", "key=stage,value=prod")
    assert tagged.returncode == 0, tagged.stderr
    listed = aws(server, "list-tags-for-resource", "--resource-arn", arn)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["tags"] == [{"key": "stage", "value": "prod"}, {"key": "team", "value": "platform"}]
    untagged = aws(server, "untag-resource", "--resource-arn", arn, "--tag-keys", "team", "stage")
    assert untagged.returncode == 0, untagged.stderr
    assert json.loads(aws(server, "list-tags-for-resource", "--resource-arn", arn).stdout)["tags"] == []
