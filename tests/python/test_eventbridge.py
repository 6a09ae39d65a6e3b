"""The EventBridge API through the real boto3: rules, targets, PutEvents, schedules, API
destinations with retries and dead letters, archives and replays, and kill -9 with deliveries
pending."""

import datetime
import http.server
import json
import socket
import threading
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import Server

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def events(server):
    return server.client("events")


def machine(sfn, name=None):
    return sfn.create_state_machine(
        name=name or unique("sm"),
        definition=json.dumps(PASS),
        roleArn="arn:aws:iam::123456789012:role/ignored",
    )["stateMachineArn"]


def wait_for_executions(sfn, sm_arn, count, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        found = sfn.list_executions(stateMachineArn=sm_arn)["executions"]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} executions after {timeout} s, wanted {count}")
        time.sleep(0.05)


def test_a_rule_starts_a_state_machine_with_the_transformed_input(sfn, events):
    sm = machine(sfn)
    rule = unique("prs")
    pattern = {"source": ["github"], "detail-type": ["pull_request"],
               "detail": {"action": ["opened", "synchronize"]}}
    arn = events.put_rule(Name=rule, EventPattern=json.dumps(pattern))["RuleArn"]
    assert arn == f"arn:aws:events:us-east-1:123456789012:rule/{rule}"
    put = events.put_targets(Rule=rule, Targets=[{
        "Id": "scan", "Arn": sm, "RoleArn": "arn:aws:iam::123456789012:role/ignored",
        "InputTransformer": {
            "InputPathsMap": {"repo": "$.detail.repository.full_name", "n": "$.detail.number"},
            "InputTemplate": '{"repository": <repo>, "pr": <n>}',
        },
    }])
    assert put["FailedEntryCount"] == 0
    described = events.describe_rule(Name=rule)
    assert described["State"] == "ENABLED"
    assert json.loads(described["EventPattern"]) == pattern
    assert events.list_targets_by_rule(Rule=rule)["Targets"][0]["Id"] == "scan"

    answer = events.put_events(Entries=[
        {"Source": "github", "DetailType": "pull_request",
         "Detail": json.dumps({"action": "opened", "number": 7,
                               "repository": {"full_name": "acme/app"}})},
        {"Source": "github", "DetailType": "pull_request", "Detail": json.dumps({"action": "closed"})},
        {"DetailType": "pull_request", "Detail": "{}"},
    ])
    assert answer["FailedEntryCount"] == 1
    assert "EventId" in answer["Entries"][0] and "EventId" in answer["Entries"][1]
    assert answer["Entries"][2]["ErrorCode"] == "InvalidArgument"

    [execution] = wait_for_executions(sfn, sm, 1)
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"repository": "acme/app", "pr": 7}
    time.sleep(0.3)
    assert len(sfn.list_executions(stateMachineArn=sm)["executions"]) == 1

    events.remove_targets(Rule=rule, Ids=["scan"])
    events.delete_rule(Name=rule)
    with pytest.raises(ClientError) as excinfo:
        events.describe_rule(Name=rule)
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_invalid_patterns_and_unknown_resources_are_aws_errors(events):
    with pytest.raises(ClientError) as excinfo:
        events.put_rule(Name=unique("bad"), EventPattern='["not", "an", "object"]')
    assert error_code(excinfo) == "InvalidEventPatternException"
    with pytest.raises(ClientError) as excinfo:
        events.put_rule(Name=unique("bad"), ScheduleExpression="rate(1 minutes)")
    assert error_code(excinfo) == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        events.list_rules(EventBusName="no-such-bus")
    assert error_code(excinfo) == "ResourceNotFoundException"
    event = {"id": "1", "account": "123456789012", "source": "shop", "time": "2026-12-02T00:00:00Z",
             "region": "us-east-1", "detail-type": "order", "detail": {"total": 12}}
    matched = events.test_event_pattern(
        EventPattern=json.dumps({"source": ["shop"]}), Event=json.dumps(event))
    assert matched["Result"] is True


def test_custom_buses(events):
    name = unique("bus")
    arn = events.create_event_bus(Name=name)["EventBusArn"]
    assert arn == f"arn:aws:events:us-east-1:123456789012:event-bus/{name}"
    names = [b["Name"] for b in events.list_event_buses()["EventBuses"]]
    assert "default" in names and name in names
    with pytest.raises(ClientError) as excinfo:
        events.create_event_bus(Name=name)
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    events.delete_event_bus(Name=name)
    assert name not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]


def test_a_one_time_schedule_starts_the_workflow(sfn, events):
    sm = machine(sfn)
    rule = unique("at")
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    events.put_rule(Name=rule, ScheduleExpression=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})")
    events.put_targets(Rule=rule, Targets=[{"Id": "t", "Arn": sm}])
    [execution] = wait_for_executions(sfn, sm, 1, timeout=15)
    event = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"]


class Receiver:
    """A local HTTP endpoint that records requests and answers with the status it is told."""

    def __init__(self, status=200, port=0):
        self.status = status
        self.requests = []
        self.got = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with outer.got:
                    outer.requests.append((self.path, dict(self.headers), body.decode()))
                    outer.got.notify_all()
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=30):
        with self.got:
            if not self.got.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"{len(self.requests)} requests after {timeout} s, wanted {count}")
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def api_destination(events, url, name=None):
    connection = events.create_connection(
        Name=unique("conn"), AuthorizationType="API_KEY",
        AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "s3cret"}},
    )["ConnectionArn"]
    return events.create_api_destination(
        Name=name or unique("dest"), ConnectionArn=connection, InvocationEndpoint=url,
        HttpMethod="POST", InvocationRateLimitPerSecond=100,
    )["ApiDestinationArn"]


def dead_letters(server):
    with urllib.request.urlopen(f"{server.url}/v1/dead-letters") as response:
        return json.load(response)["items"]


def test_a_failing_http_target_is_retried_then_dead_lettered(server, events):
    receiver = Receiver(status=500)
    try:
        dest = api_destination(events, f"http://127.0.0.1:{receiver.port}/hook")
        rule = unique("http")
        events.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))
        events.put_targets(Rule=rule, Targets=[{
            "Id": "hook", "Arn": dest, "InputPath": "$.detail",
            "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60},
        }])
        events.put_events(Entries=[{"Source": rule, "DetailType": "x", "Detail": '{"n": 1}'}])
        requests = receiver.wait_for(2)
        path, headers, body = requests[0]
        assert path == "/hook"
        assert headers["x-api-key"] == "s3cret"
        assert json.loads(body) == {"n": 1}
        deadline = time.monotonic() + 10
        while True:
            mine = [d for d in dead_letters(server) if d["target_arn"] == dest]
            if mine or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(mine) == 1, mine
        assert mine[0]["error_code"] == "RETRY_ATTEMPTS_EXHAUSTED"
        assert "HTTP 500" in mine[0]["error_message"]
        assert mine[0]["attempts"] == 2
        assert len(receiver.requests) == 2
    finally:
        receiver.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_deliveries_pending_at_kill_9_are_delivered_after_restart():
    port = free_port()
    srv = Server()
    try:
        events = srv.client("events")
        dest = api_destination(events, f"http://127.0.0.1:{port}/later")
        events.put_rule(Name="pending", EventPattern=json.dumps({"source": ["pending"]}))
        events.put_targets(Rule="pending", Targets=[{"Id": "hook", "Arn": dest, "InputPath": "$.detail"}])
        for i in range(10):
            answer = events.put_events(
                Entries=[{"Source": "pending", "DetailType": "x", "Detail": json.dumps({"i": i})}])
            assert answer["FailedEntryCount"] == 0
        # Nothing listens on the port yet: every delivery is refused and waits to be retried.
        srv.proc.kill()
        srv.proc.wait()
        receiver = Receiver(port=port)
        try:
            again = Server(data_dir=srv.data_dir)
            try:
                requests = receiver.wait_for(10)
                assert sorted(json.loads(body)["i"] for _, _, body in requests) == list(range(10))
            finally:
                again.stop()
        finally:
            receiver.close()
    finally:
        srv.stop()


def test_archive_and_replay(sfn, events):
    source = unique("arch")
    archive = events.create_archive(
        ArchiveName=unique("a"),
        EventSourceArn="arn:aws:events:us-east-1:123456789012:event-bus/default",
        EventPattern=json.dumps({"source": [source]}),
    )["ArchiveArn"]
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    events.put_events(Entries=[{"Source": source, "DetailType": "x", "Detail": json.dumps({"i": i})}
                               for i in range(3)])
    name = archive.rsplit("/", 1)[1]
    assert events.describe_archive(ArchiveName=name)["EventCount"] == 3

    sm = machine(sfn)
    rule = unique("late")
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "t", "Arn": sm}])
    replay = unique("r")
    events.start_replay(
        ReplayName=replay, EventSourceArn=archive, EventStartTime=start,
        EventEndTime=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1),
        Destination={"Arn": "arn:aws:events:us-east-1:123456789012:event-bus/default",
                     "FilterArns": [rule_arn]},
    )
    executions = wait_for_executions(sfn, sm, 3)
    inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
              for e in executions]
    assert sorted(i["detail"]["i"] for i in inputs) == [0, 1, 2]
    assert all(i["replay-name"] == replay for i in inputs)
    deadline = time.monotonic() + 10
    while events.describe_replay(ReplayName=replay)["State"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def rest(server, method, path, body=None):
    request = urllib.request.Request(
        f"{server.url}{path}", data=None if body is None else json.dumps(body).encode(), method=method,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def test_a_rule_publishes_to_a_topic_whose_http_subscriber_gets_the_notification(server, events):
    receiver = Receiver(status=200)
    try:
        topic = unique("topic")
        arn = rest(server, "POST", "/v1/topics", {"name": topic})["arn"]
        rest(server, "POST", f"/v1/topics/{topic}/subscriptions",
             {"protocol": "http", "endpoint": f"http://127.0.0.1:{receiver.port}/sns"})
        rule = unique("to-topic")
        events.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))
        events.put_targets(Rule=rule, Targets=[{"Id": "topic", "Arn": arn, "InputPath": "$.detail"}])
        events.put_events(Entries=[{"Source": rule, "DetailType": "verdict",
                                    "Detail": json.dumps({"findings": 2})}])
        [(path, headers, body)] = receiver.wait_for(1)
        assert path == "/sns"
        assert headers["x-amz-sns-message-type"] == "Notification"
        notification = json.loads(body)
        assert notification["Type"] == "Notification"
        assert notification["TopicArn"] == arn
        assert json.loads(notification["Message"]) == {"findings": 2}
    finally:
        receiver.close()


def test_tags_on_buses_and_rules(events):
    bus = unique("tagged")
    bus_arn = events.create_event_bus(Name=bus, Tags=[{"Key": "team", "Value": "shop"}])["EventBusArn"]
    rule_arn = events.put_rule(
        Name="paid", EventBusName=bus, EventPattern=json.dumps({"source": ["shop"]}),
        Tags=[{"Key": "stage", "Value": "dev"}],
    )["RuleArn"]
    events.tag_resource(ResourceARN=rule_arn, Tags=[{"Key": "owner", "Value": "ops"}])
    events.untag_resource(ResourceARN=rule_arn, TagKeys=["stage"])
    assert events.list_tags_for_resource(ResourceARN=rule_arn)["Tags"] == [{"Key": "owner", "Value": "ops"}]
    assert events.list_tags_for_resource(ResourceARN=bus_arn)["Tags"] == [{"Key": "team", "Value": "shop"}]

    with pytest.raises(ClientError) as excinfo:
        events.list_tags_for_resource(ResourceARN=rule_arn + "-missing")
    assert error_code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        events.tag_resource(ResourceARN=bus_arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert error_code(excinfo) == "LimitExceededException"
