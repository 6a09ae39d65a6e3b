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
