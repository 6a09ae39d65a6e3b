"""Lambda's Invoke through the real boto3, against a Python handler that the official
awslambdaric runs unmodified under Stepyard's Runtime API."""

import base64
import json
import sys
import tempfile
import textwrap
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

HANDLER = textwrap.dedent(
    """
    import os

    class OrderError(Exception):
        pass

    def handler(event, context):
        print("order", event.get("order"), flush=True)
        if event.get("fail"):
            raise OrderError("order %s is invalid" % event.get("order"))
        return {"order": event.get("order"), "request_id": context.aws_request_id,
                "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}
    """
)


def create_function(server, name):
    code = tempfile.mkdtemp(prefix="stepyard-fn-")
    with open(f"{code}/app.py", "w") as f:
        f.write(HANDLER)
    body = {
        "name": name,
        "runtime": "process",
        # The interpreter running this suite has awslambdaric (tests/python/requirements.txt).
        "command": [sys.executable, "-m", "awslambdaric", "app.handler"],
        "code": code,
        "handler": "app.handler",
    }
    request = urllib.request.Request(
        f"{server.url}/v1/functions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


@pytest.fixture(scope="module")
def lam(server):
    return server.client("lambda")


def test_boto3_invoke_returns_the_handlers_result_and_its_logs(server, lam):
    name = f"orders-{uuid.uuid4().hex[:8]}"
    create_function(server, name)
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"order": 42}), LogType="Tail")
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    result = json.loads(response["Payload"].read())
    assert result["order"] == 42
    assert result["function"] == name
    logs = base64.b64decode(response["LogResult"]).decode()
    assert "order 42" in logs
    assert f"END RequestId: {result['request_id']}" in logs


def test_boto3_invoke_reports_a_handler_error_as_lambda_does(server, lam):
    name = f"orders-{uuid.uuid4().hex[:8]}"
    create_function(server, name)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    response = lam.invoke(FunctionName=arn, Payload=json.dumps({"order": 7, "fail": True}))
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "OrderError"
    assert error["errorMessage"] == "order 7 is invalid"


def test_boto3_invoke_event_and_missing_function(server, lam):
    name = f"orders-{uuid.uuid4().hex[:8]}"
    create_function(server, name)
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert response["StatusCode"] == 202
    with pytest.raises(ClientError) as raised:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
