"""With access keys configured, SigV4 signatures are verified."""

import pytest
from botocore.exceptions import ClientError

from conftest import Server


@pytest.fixture(scope="module")
def signed_server():
    srv = Server("--aws-access-keys", "AKIDSTEPYARD:s3cret-key")
    yield srv
    srv.stop()


def test_right_key_is_accepted(signed_server):
    client = signed_server.client(key="AKIDSTEPYARD", secret="s3cret-key")
    assert "stateMachines" in client.list_state_machines()


def test_wrong_secret_is_rejected(signed_server):
    client = signed_server.client(key="AKIDSTEPYARD", secret="wrong")
    with pytest.raises(ClientError) as excinfo:
        client.list_state_machines()
    assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_rejected(signed_server):
    client = signed_server.client(key="AKIDOTHER", secret="s3cret-key")
    with pytest.raises(ClientError) as excinfo:
        client.list_state_machines()
    assert excinfo.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_lambda_invoke_path_is_signed_too(signed_server):
    # No function is needed: the signature is checked before the function is looked up.
    good = signed_server.client("lambda", key="AKIDSTEPYARD", secret="s3cret-key")
    with pytest.raises(ClientError) as excinfo:
        good.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:absent", Payload=b"{}")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    bad = signed_server.client("lambda", key="AKIDSTEPYARD", secret="wrong")
    with pytest.raises(ClientError) as excinfo:
        bad.invoke(FunctionName="absent", Payload=b"{}")
    assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
