//! Every route through `app(state).oneshot(request)`: no socket, a real engine on sled in a temp dir.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use stepyard_api::config::ServerConfig;
use stepyard_api::{AppState, app};
use tower::ServiceExt;

struct Harness {
    state: AppState,
    _temp: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    async fn with(configure: impl FnOnce(&mut ServerConfig)) -> Harness {
        let temp = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::local(temp.path().join("data"));
        configure(&mut config);
        let state = AppState::open(config).await.expect("open engine");
        Harness { state, _temp: temp }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value, header::HeaderMap) {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, body, headers)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, body, _) = self
            .send(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        (status, body)
    }

    async fn delete(&self, uri: &str) -> (StatusCode, Value) {
        let (status, body, _) = self
            .send(Request::delete(uri).body(Body::empty()).unwrap())
            .await;
        (status, body)
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send_json("POST", uri, body).await
    }

    async fn send_json(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let (status, body, _) = self
            .send(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        (status, body)
    }

    async fn aws(&self, operation: &str, body: Value) -> (StatusCode, Value) {
        let (status, body, headers) = self
            .send(
                Request::post("/")
                    .header("x-amz-target", format!("AWSStepFunctions.{operation}"))
                    .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/x-amz-json-1.0",
            "{operation}"
        );
        (status, body)
    }

    async fn create(&self, name: &str, definition: Value, kind: &str) {
        let (status, body) = self
            .post(
                "/v1/state-machines",
                json!({"name": name, "definition": definition, "type": kind}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn finished(&self, state_machine: &str, execution: &str) -> Value {
        let arn = self.state.execution_arn(state_machine, execution);
        self.state.engine().await_execution(&arn).await.unwrap();
        let (status, body) = self
            .get(&format!(
                "/v1/state-machines/{state_machine}/executions/{execution}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        body
    }
}

fn pass_chain(n: usize) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut state = json!({"Type": "Pass"});
        if i + 1 == n {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": states})
}

fn wait_an_hour() -> Value {
    json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": true}}})
}

#[tokio::test]
async fn state_machine_lifecycle() {
    let h = Harness::new().await;
    h.create("m1", pass_chain(2), "STANDARD").await;
    let (status, body) = h.get("/v1/state-machines/m1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "m1");
    assert_eq!(body["type"], "STANDARD");
    assert_eq!(body["definition"], pass_chain(2));
    let first_revision = body["revision_id"].clone();

    // A definition given as a string is taken as AWS takes it.
    let (status, body) = h
        .send_json(
            "PUT",
            "/v1/state-machines/m1",
            json!({"definition": pass_chain(3).to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["definition"], pass_chain(3));
    assert_ne!(body["revision_id"], first_revision);

    let (status, body) = h
        .post(
            "/v1/state-machines",
            json!({"name": "m1", "definition": pass_chain(1)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "StateMachineAlreadyExists");

    let (status, _) = h.delete("/v1/state-machines/m1").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.get("/v1/state-machines/m1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "StateMachineDoesNotExist");
}

#[tokio::test]
async fn list_is_paged_with_next_token() {
    let h = Harness::new().await;
    for name in ["a", "b", "c"] {
        h.create(name, pass_chain(1), "STANDARD").await;
    }
    let (status, page1) = h.get("/v1/state-machines?max_results=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page1["state_machines"].as_array().unwrap().len(), 2);
    let token = page1["next_token"].as_str().expect("next_token").to_owned();
    let (_, page2) = h
        .get(&format!(
            "/v1/state-machines?max_results=2&next_token={token}"
        ))
        .await;
    let mut names: Vec<String> = page1["state_machines"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["state_machines"].as_array().unwrap())
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(page2.get("next_token").is_none());
    h.post("/v1/state-machines/a/executions", json!({"name": "e"}))
        .await;
    let (status, body) = h
        .get("/v1/state-machines/a/executions?next_token=garbage")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "InvalidNextToken");
}

#[tokio::test]
async fn invalid_definition_lists_every_problem_with_its_pointer() {
    let h = Harness::new().await;
    let (status, body) = h
        .post(
            "/v1/state-machines",
            json!({"name": "bad", "definition": {
                "StartAt": "Missing",
                "States": {
                    "A": {"Type": "Pass", "Next": "Nowhere"},
                    "B": {"Type": "Wait", "Seconds": 1, "Timestamp": "2026-01-01T00:00:00Z", "End": true}
                }
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "InvalidDefinition");
    assert_eq!(body["field"], "/definition");
    let pointers: Vec<&str> = body["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    for expected in ["/StartAt", "/States/A/Next", "/States/B"] {
        assert!(
            pointers.iter().any(|p| p.starts_with(expected)),
            "{expected} missing from {pointers:?}"
        );
    }
}

#[tokio::test]
async fn malformed_requests_get_the_error_body() {
    let h = Harness::new().await;
    let (status, body, _) = h
        .send(
            Request::post("/v1/state-machines")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"name\": "))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "MalformedJson");

    let (status, body, _) = h
        .send(
            Request::post("/v1/state-machines")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "UnsupportedMediaType");

    let (status, body) = h
        .post(
            "/v1/state-machines",
            json!({"name": "x", "definition": pass_chain(1), "colour": "blue"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "InvalidRequestBody");
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );

    let (status, body) = h
        .post("/v1/state-machines", json!({"name": 7, "definition": {}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "/name", "{body}");

    let (status, body) = h
        .post(
            "/v1/state-machines",
            json!({"name": "x", "definition": pass_chain(1), "type": "FAST"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "/type");

    let (status, body) = h
        .post(
            "/v1/state-machines",
            json!({"name": "has space", "definition": pass_chain(1)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "InvalidName");
}

#[tokio::test]
async fn oversize_bodies_are_413_with_the_error_body() {
    let h = Harness::with(|config| config.max_body_bytes = 1024).await;
    let big = "x".repeat(4096);
    let (status, body) = h
        .post(
            "/v1/state-machines",
            json!({"name": "big", "definition": {"Comment": big}}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "PayloadTooLarge");
}

#[tokio::test]
async fn executions_start_run_list_and_tell_their_history() {
    let h = Harness::new().await;
    h.create("chain", pass_chain(3), "STANDARD").await;
    let (status, started) = h
        .post(
            "/v1/state-machines/chain/executions",
            json!({"name": "run-1", "input": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert!(started["arn"].as_str().unwrap().ends_with(":chain:run-1"));
    let done = h.finished("chain", "run-1").await;
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(done["output"], json!({"n": 1}));
    assert_eq!(done["input"], json!({"n": 1}));

    // An empty body starts with `{}` and a generated name.
    let (status, body, _) = h
        .send(
            Request::post("/v1/state-machines/chain/executions")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, list) = h
        .get("/v1/state-machines/chain/executions?status=SUCCEEDED")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list["executions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "run-1")
    );
    let (status, body) = h
        .get("/v1/state-machines/chain/executions?status=SLEEPING")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "status");

    let (status, history) = h
        .get("/v1/state-machines/chain/executions/run-1/history?max_results=3")
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["type"], "ExecutionStarted");
    assert_eq!(events[1]["type"], "PassStateEntered");
    assert_eq!(events[1]["details"]["name"], "S0");
    let token = history["next_token"].as_str().unwrap();
    let (_, rest) = h
        .get(&format!(
            "/v1/state-machines/chain/executions/run-1/history?next_token={token}"
        ))
        .await;
    let rest = rest["events"].as_array().unwrap();
    assert_eq!(rest.first().unwrap()["id"], 4);
    assert_eq!(rest.last().unwrap()["type"], "ExecutionSucceeded");

    let (status, body) = h.get("/v1/state-machines/chain/executions/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ExecutionDoesNotExist");
    let (status, body) = h
        .post("/v1/state-machines/missing/executions", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "StateMachineDoesNotExist");
}

#[tokio::test]
async fn stop_redrive_and_conflicts() {
    let h = Harness::new().await;
    h.create("sleepy", wait_an_hour(), "STANDARD").await;
    let (status, _) = h
        .post(
            "/v1/state-machines/sleepy/executions",
            json!({"name": "s1", "input": {"a": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = h
        .post(
            "/v1/state-machines/sleepy/executions",
            json!({"name": "s1", "input": {"a": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "ExecutionAlreadyExists");

    let (status, body) = h
        .post(
            "/v1/state-machines/sleepy/executions/s1/stop",
            json!({"error": "Ops.Stop", "cause": "maintenance"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = h.finished("sleepy", "s1").await;
    assert_eq!(done["status"], "ABORTED");
    assert_eq!(done["error"], "Ops.Stop");
    assert_eq!(done["cause"], "maintenance");

    h.create("ok", pass_chain(1), "STANDARD").await;
    h.post("/v1/state-machines/ok/executions", json!({"name": "fine"}))
        .await;
    h.finished("ok", "fine").await;
    let (status, body) = h
        .post("/v1/state-machines/ok/executions/fine/redrive", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "ExecutionNotRedrivable");
}

#[tokio::test]
async fn sync_start_of_express_returns_the_output() {
    let h = Harness::new().await;
    h.create(
        "quick",
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"done": true}, "End": true}}}),
        "EXPRESS",
    )
    .await;
    let (status, body) = h
        .post(
            "/v1/state-machines/quick/executions/sync",
            json!({"input": {"x": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "SUCCEEDED");
    assert_eq!(body["output"], json!({"done": true}));
}

#[tokio::test]
async fn activities_and_task_tokens() {
    let h = Harness::new().await;
    let (status, activity) = h.post("/v1/activities", json!({"name": "approve"})).await;
    assert_eq!(status, StatusCode::CREATED, "{activity}");
    let arn = activity["arn"].as_str().unwrap().to_owned();
    let (status, _) = h.get("/v1/activities/approve").await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = h.get("/v1/activities").await;
    assert_eq!(list["activities"][0]["name"], "approve");

    let (status, _) = h
        .post("/v1/activities/approve/poll?wait_seconds=0", json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h
        .post("/v1/activities/approve/poll?wait_seconds=61", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "wait_seconds");

    h.create(
        "needs-approval",
        json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": arn, "HeartbeatSeconds": 600, "End": true}}}),
        "STANDARD",
    )
    .await;
    h.post(
        "/v1/state-machines/needs-approval/executions",
        json!({"name": "e1", "input": {"amount": 5}}),
    )
    .await;
    let (status, task) = h
        .post("/v1/activities/approve/poll?wait_seconds=30", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["input"], json!({"amount": 5}));
    let token = task["task_token"].as_str().unwrap();
    let (status, body) = h
        .post("/v1/task-tokens/heartbeat", json!({"task_token": token}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = h
        .post(
            "/v1/task-tokens/success",
            json!({"task_token": token, "output": {"approved": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let done = h.finished("needs-approval", "e1").await;
    assert_eq!(done["output"], json!({"approved": true}));

    let (status, body) = h
        .post(
            "/v1/task-tokens/failure",
            json!({"task_token": "not-a-token", "error": "X"}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(["InvalidToken", "TaskDoesNotExist"].contains(&body["code"].as_str().unwrap()));

    let (status, _) = h.delete("/v1/activities/approve").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.get("/v1/activities/approve").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ActivityDoesNotExist");
}

#[tokio::test]
async fn aws_protocol_errors_and_shapes() {
    let h = Harness::new().await;
    let (status, body) = h.aws("ListStateMachines", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"stateMachines": []}));

    let (status, body) = h
        .aws(
            "CreateStateMachine",
            json!({"name": "aws1", "definition": pass_chain(2).to_string(), "roleArn": "arn:aws:iam::123456789012:role/r"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let arn = body["stateMachineArn"].as_str().unwrap().to_owned();
    assert!(body["creationDate"].is_f64() || body["creationDate"].is_u64());

    let (status, body) = h
        .aws(
            "StartExecution",
            json!({"stateMachineArn": arn, "name": "x1", "input": "{\"k\": 1}"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let execution = body["executionArn"].as_str().unwrap().to_owned();
    h.state.engine().await_execution(&execution).await.unwrap();
    let (_, described) = h
        .aws("DescribeExecution", json!({"executionArn": execution}))
        .await;
    assert_eq!(described["status"], "SUCCEEDED");
    assert_eq!(described["output"], "{\"k\":1}");

    let (status, body) = h
        .aws("DescribeStateMachine", json!({"stateMachineArn": "nope"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "InvalidArn");

    let (status, body) = h
        .aws(
            "CreateStateMachine",
            json!({"name": "bad", "definition": "{\"StartAt\": \"X\", \"States\": {}}", "roleArn": "r"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "InvalidDefinition");

    let (status, body) = h.aws("NoSuchThing", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "UnknownOperationException");

    let (status, body) = h.aws("StartExecution", json!({"stateMachineArn": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "ValidationException");

    let (status, body, _) = h
        .send(
            Request::post("/")
                .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "SerializationException");

    let (status, body, _) = h
        .send(Request::post("/").body(Body::from("{}")).unwrap())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "MissingTargetException");
}

#[tokio::test]
async fn test_state_evaluates_one_state() {
    let h = Harness::new().await;
    let (status, body) = h
        .aws(
            "TestState",
            json!({
                "definition": json!({"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "Next": "After"}).to_string(),
                "input": "{\"a\": 2, \"b\": 3}",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "SUCCEEDED");
    assert_eq!(body["nextState"], "After");
    assert_eq!(body["output"], "{\"sum\":5}");

    let (_, body) = h
        .aws(
            "TestState",
            json!({
                "definition": json!({"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}], "Default": "Small"}).to_string(),
                "input": "{\"n\": 11}",
            }),
        )
        .await;
    assert_eq!(body["nextState"], "Big");

    let (_, body) = h
        .aws(
            "TestState",
            json!({"definition": json!({"Type": "Fail", "Error": "E", "Cause": "C"}).to_string()}),
        )
        .await;
    assert_eq!(body["status"], "FAILED");
    assert_eq!(body["error"], "E");
}

#[tokio::test]
async fn bearer_tokens_guard_the_native_api() {
    let h = Harness::with(|config| config.auth_tokens = vec!["sekrit".into()]).await;
    let (status, body) = h.get("/v1/state-machines").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "Unauthorized");
    let (status, _, _) = h
        .send(
            Request::get("/v1/state-machines")
                .header(header::AUTHORIZATION, "Bearer sekrit")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Health stays open for probes.
    let (status, _) = h.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_answers_429_with_the_error_body() {
    let h = Harness::with(|config| config.rate_limit_per_second = 2).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(h.get("/v1/state-machines").await);
    }
    assert_eq!(statuses[0].0, StatusCode::OK);
    assert_eq!(statuses[1].0, StatusCode::OK);
    assert_eq!(statuses[2].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(statuses[2].1["code"], "TooManyRequests");
}

#[tokio::test]
async fn request_id_is_echoed_and_metrics_count_requests() {
    let h = Harness::new().await;
    let (_, _, headers) = h
        .send(
            Request::get("/healthz")
                .header("x-request-id", "my-id-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(headers["x-request-id"], "my-id-1");
    let (_, _, headers) = h
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert!(!headers["x-request-id"].is_empty());
    let (status, body) = h.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(
        text.contains(
            "stepyard_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_executions_transitions_tasks_and_flushes() {
    let h = Harness::new().await;
    h.state
        .engine()
        .register_function("metrics-echo", |input: Value| async move { Ok(input) });
    let definition = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:metrics-echo", "Next": "F"},
        "F": {"Type": "Fail", "Error": "Nope"}}});
    h.create("metered", definition, "STANDARD").await;
    for name in ["m1", "m2"] {
        let (status, body) = h
            .post(
                "/v1/state-machines/metered/executions",
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        h.finished("metered", name).await;
    }
    // EXPRESS executions keep no history; their states still count.
    h.create(
        "metered-express",
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Pass", "End": true}}}),
        "EXPRESS",
    )
    .await;
    let (status, body) = h
        .post(
            "/v1/state-machines/metered-express/executions/sync",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = h.get("/metrics").await;
    let text = body.as_str().unwrap();
    for line in [
        "stepyard_executions_started_total{state_machine=\"metered\"} 2",
        "stepyard_executions_finished_total{state_machine=\"metered\",status=\"FAILED\"} 2",
        // Pass, Task and Fail entered, twice.
        "stepyard_state_transitions_total{state_machine=\"metered\"} 6",
        "stepyard_executions_started_total{state_machine=\"metered-express\"} 1",
        "stepyard_executions_finished_total{state_machine=\"metered-express\",status=\"SUCCEEDED\"} 1",
        "stepyard_state_transitions_total{state_machine=\"metered-express\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in {text}"
        );
    }
    assert!(
        text.contains(
            "stepyard_task_duration_seconds_count{resource=\"lambda\",outcome=\"succeeded\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("stepyard_store_flush_seconds_count"),
        "{text}"
    );
}

#[tokio::test]
async fn sync_start_of_a_standard_machine_is_refused() {
    let h = Harness::new().await;
    h.create("durable", pass_chain(1), "STANDARD").await;
    let (status, body) = h
        .post("/v1/state-machines/durable/executions/sync", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "StateMachineTypeNotSupported");
    let arn = h.state.state_machine_arn("durable");
    let (status, body) = h
        .aws("StartSyncExecution", json!({"stateMachineArn": arn}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "StateMachineTypeNotSupported");
}

#[tokio::test]
async fn versions_list_every_revision_newest_first_with_its_definition() {
    let h = Harness::new().await;
    h.create("versioned", pass_chain(1), "STANDARD").await;
    for n in 2..=3 {
        let (status, body) = h
            .send_json(
                "PUT",
                "/v1/state-machines/versioned",
                json!({"definition": pass_chain(n)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // An update with the same definition makes no revision.
    h.send_json(
        "PUT",
        "/v1/state-machines/versioned",
        json!({"definition": pass_chain(3)}),
    )
    .await;
    let (_, current) = h.get("/v1/state-machines/versioned").await;

    let (status, page) = h.get("/v1/state-machines/versioned/versions").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let versions = page["versions"].as_array().unwrap();
    let definitions: Vec<&Value> = versions.iter().map(|v| &v["definition"]).collect();
    assert_eq!(
        definitions,
        [&pass_chain(3), &pass_chain(2), &pass_chain(1)],
        "newest first"
    );
    assert_eq!(versions[0]["revision_id"], current["revision_id"]);
    assert_eq!(versions[0]["current"], true);
    assert_eq!(versions[1]["current"], false);
    assert!(page.get("next_token").is_none(), "{page}");
    let oldest = versions[2]["revision_id"].as_str().unwrap().to_owned();
    assert_eq!(
        versions[2]["version_arn"],
        format!("{}:{oldest}", current["arn"].as_str().unwrap())
    );

    // Paged: one per page, in the same order, until no next_token.
    let mut seen = Vec::new();
    let mut uri = "/v1/state-machines/versioned/versions?max_results=1".to_owned();
    loop {
        let (status, page) = h.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["versions"].as_array().unwrap().len(), 1);
        seen.push(page["versions"][0]["revision_id"].clone());
        match page["next_token"].as_str() {
            Some(token) => {
                uri = format!(
                    "/v1/state-machines/versioned/versions?max_results=1&next_token={token}"
                )
            }
            None => break,
        }
    }
    let all: Vec<Value> = versions.iter().map(|v| v["revision_id"].clone()).collect();
    assert_eq!(seen, all);

    // An old revision keeps its own definition.
    let (status, version) = h
        .get(&format!("/v1/state-machines/versioned/versions/{oldest}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert_eq!(version["definition"], pass_chain(1));
    assert_eq!(version["type"], "STANDARD");

    // The AWS side: ListStateMachineVersions and DescribeStateMachine with a version ARN.
    let sm_arn = current["arn"].as_str().unwrap();
    let (status, listed) = h
        .aws(
            "ListStateMachineVersions",
            json!({"stateMachineArn": sm_arn}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let arns: Vec<&str> = listed["stateMachineVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["stateMachineVersionArn"].as_str().unwrap())
        .collect();
    assert_eq!(arns.len(), 3);
    assert_eq!(arns[2], format!("{sm_arn}:{oldest}"));
    let (status, described) = h
        .aws("DescribeStateMachine", json!({"stateMachineArn": arns[2]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{described}");
    let definition: Value =
        serde_json::from_str(described["definition"].as_str().unwrap()).unwrap();
    assert_eq!(definition, pass_chain(1));
    assert_eq!(described["revisionId"], oldest.as_str());
    let (status, missing) = h
        .aws(
            "DescribeStateMachine",
            json!({"stateMachineArn": format!("{sm_arn}:no-such-revision")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(missing["__type"], "StateMachineDoesNotExist", "{missing}");

    // Starting a version: the current one runs; an older one is refused, never run as the current.
    let (status, started) = h
        .aws(
            "StartExecution",
            json!({"stateMachineArn": arns[0], "name": "on-current"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(
        h.finished("versioned", "on-current").await["status"],
        "SUCCEEDED"
    );
    let (status, refused) = h
        .aws("StartExecution", json!({"stateMachineArn": arns[2]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["__type"], "ValidationException", "{refused}");

    // Unknown revisions, unknown machines, bad tokens.
    let (status, body) = h
        .get("/v1/state-machines/versioned/versions/no-such-revision")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("StateMachineDoesNotExist"))
    );
    let (status, body) = h
        .get("/v1/state-machines/versioned/versions?next_token=bogus")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidNextToken"))
    );

    // A state machine deleted and made again starts a new list of versions.
    h.delete("/v1/state-machines/versioned").await;
    let (status, body) = h.get("/v1/state-machines/versioned/versions").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("StateMachineDoesNotExist"))
    );
    h.create("versioned", pass_chain(4), "STANDARD").await;
    let (_, page) = h.get("/v1/state-machines/versioned/versions").await;
    assert_eq!(page["versions"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["versions"][0]["definition"], pass_chain(4));
}

/// One request a user can get wrong, and the answer they must see.
struct BadInput {
    what: String,
    method: &'static str,
    uri: String,
    content_type: Option<&'static str>,
    body: String,
    status: StatusCode,
    code: &'static str,
    /// The `field` of the error body, when the fault is one field.
    field: Option<&'static str>,
}

/// A body with one field of the wrong type, and that field's name as the error names it.
type WrongType = Option<(Value, &'static str)>;

/// Every route that takes a JSON body, with a body whose `field` has the wrong type.
fn body_routes() -> Vec<(&'static str, &'static str, WrongType)> {
    vec![
        (
            "POST",
            "/v1/state-machines",
            Some((json!({"name": 7}), "/name")),
        ),
        (
            "PUT",
            "/v1/state-machines/sm",
            Some((json!({"definition": 7}), "/definition")),
        ),
        (
            "POST",
            "/v1/state-machines/sm/executions",
            Some((json!({"name": 7}), "/name")),
        ),
        (
            "POST",
            "/v1/state-machines/sm/executions/sync",
            Some((json!({"name": 7}), "/name")),
        ),
        (
            "POST",
            "/v1/state-machines/sm/executions/e/stop",
            Some((json!({"error": 7}), "/error")),
        ),
        (
            "POST",
            "/v1/task-tokens/success",
            Some((json!({"task_token": 7}), "/task_token")),
        ),
        (
            "POST",
            "/v1/task-tokens/failure",
            Some((json!({"task_token": 7}), "/task_token")),
        ),
        (
            "POST",
            "/v1/task-tokens/heartbeat",
            Some((json!({"task_token": 7}), "/task_token")),
        ),
        (
            "POST",
            "/v1/activities",
            Some((json!({"name": 7}), "/name")),
        ),
        (
            "POST",
            "/v1/functions",
            Some((json!({"runtime": 7}), "/runtime")),
        ),
        (
            "PUT",
            "/v1/functions/f",
            Some((json!({"runtime": 7}), "/runtime")),
        ),
        (
            "POST",
            "/v1/functions/f/invoke",
            Some((json!({"invocation_type": 7}), "/invocation_type")),
        ),
        (
            "POST",
            "/v1/task-definitions",
            Some((json!({"family": 7}), "/family")),
        ),
        (
            "POST",
            "/v1/tasks",
            Some((json!({"task_definition": 7}), "/task_definition")),
        ),
        (
            "POST",
            "/v1/event-buses",
            Some((json!({"name": 7}), "/name")),
        ),
        (
            "POST",
            "/v1/event-buses/default/events",
            Some((json!({"entries": "x"}), "/entries")),
        ),
        (
            "PUT",
            "/v1/event-buses/default/rules/r",
            Some((json!({"state": 7}), "/state")),
        ),
        (
            "PUT",
            "/v1/event-buses/default/rules/r/targets",
            Some((json!({"targets": "x"}), "/targets")),
        ),
        ("POST", "/v1/event-patterns/test", None),
        ("POST", "/v1/archives", Some((json!({"name": 7}), "/name"))),
        ("POST", "/v1/replays", Some((json!({"name": 7}), "/name"))),
        ("POST", "/v1/topics", Some((json!({"name": 7}), "/name"))),
        (
            "POST",
            "/v1/topics/t/subscriptions",
            Some((json!({"protocol": 7}), "/protocol")),
        ),
        (
            "POST",
            "/v1/topics/t/messages",
            Some((json!({"subject": 7}), "/subject")),
        ),
        (
            "POST",
            "/v1/topics/t/dead-letters/redrive",
            Some((json!({"ids": "x"}), "/ids")),
        ),
    ]
}

/// Routes whose JSON body may be left out.
const OPTIONAL_BODY: &[&str] = &[
    "/v1/state-machines/sm/executions",
    "/v1/state-machines/sm/executions/sync",
    "/v1/state-machines/sm/executions/e/stop",
    "/v1/functions/f/invoke",
    "/v1/topics/t/dead-letters/redrive",
];

fn body_cases() -> Vec<BadInput> {
    let mut cases = Vec::new();
    for (method, uri, wrong_type) in body_routes() {
        let case = |what: &str, content_type, body: &str, status, code, field| BadInput {
            what: format!("{method} {uri}: {what}"),
            method,
            uri: uri.to_owned(),
            content_type,
            body: body.to_owned(),
            status,
            code,
            field,
        };
        let json = Some("application/json");
        cases.push(case(
            "malformed JSON",
            json,
            "{\"name\": ",
            StatusCode::BAD_REQUEST,
            "MalformedJson",
            None,
        ));
        cases.push(case(
            "trailing garbage",
            json,
            "{} {}",
            StatusCode::BAD_REQUEST,
            "MalformedJson",
            None,
        ));
        cases.push(case(
            "cut off",
            json,
            "{\"name\": \"x",
            StatusCode::BAD_REQUEST,
            "MalformedJson",
            None,
        ));
        // Where the body is optional, an empty one is no body at all.
        if !OPTIONAL_BODY.contains(&uri) {
            cases.push(case(
                "empty",
                json,
                "",
                StatusCode::BAD_REQUEST,
                "MalformedJson",
                None,
            ));
        }
        cases.push(case(
            "not an object",
            json,
            "\"text\"",
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidRequestBody",
            None,
        ));
        cases.push(case(
            "unknown field",
            json,
            "{\"colour\": \"red\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidRequestBody",
            None,
        ));
        cases.push(case(
            "text/plain",
            Some("text/plain"),
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            None,
        ));
        cases.push(case(
            "form",
            Some("application/x-www-form-urlencoded"),
            "a=b",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            None,
        ));
        if let Some((body, field)) = wrong_type {
            cases.push(case(
                "wrong type",
                json,
                &body.to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "InvalidRequestBody",
                Some(field),
            ));
        }
    }
    cases
}

/// Resources that do not exist, each family's own `code`; `sm` exists, nothing else does.
fn unknown_resource_cases() -> Vec<BadInput> {
    let not_found =
        |method: &'static str, uri: &str, body: Option<Value>, code: &'static str| BadInput {
            what: format!("{method} {uri}: unknown resource"),
            method,
            uri: uri.to_owned(),
            content_type: body.as_ref().map(|_| "application/json"),
            body: body.map(|b| b.to_string()).unwrap_or_default(),
            status: StatusCode::NOT_FOUND,
            code,
            field: None,
        };
    vec![
        not_found(
            "GET",
            "/v1/state-machines/nope",
            None,
            "StateMachineDoesNotExist",
        ),
        not_found(
            "PUT",
            "/v1/state-machines/nope",
            Some(json!({"definition": pass_chain(1)})),
            "StateMachineDoesNotExist",
        ),
        not_found(
            "GET",
            "/v1/state-machines/nope/versions",
            None,
            "StateMachineDoesNotExist",
        ),
        not_found(
            "GET",
            "/v1/state-machines/sm/versions/nope",
            None,
            "StateMachineDoesNotExist",
        ),
        not_found(
            "POST",
            "/v1/state-machines/nope/executions",
            Some(json!({})),
            "StateMachineDoesNotExist",
        ),
        not_found(
            "GET",
            "/v1/state-machines/nope/executions",
            None,
            "StateMachineDoesNotExist",
        ),
        not_found(
            "GET",
            "/v1/state-machines/sm/executions/nope",
            None,
            "ExecutionDoesNotExist",
        ),
        not_found(
            "GET",
            "/v1/state-machines/sm/executions/nope/history",
            None,
            "ExecutionDoesNotExist",
        ),
        not_found(
            "POST",
            "/v1/state-machines/sm/executions/nope/stop",
            Some(json!({})),
            "ExecutionDoesNotExist",
        ),
        not_found(
            "POST",
            "/v1/state-machines/sm/executions/nope/redrive",
            None,
            "ExecutionDoesNotExist",
        ),
        not_found("GET", "/v1/activities/nope", None, "ActivityDoesNotExist"),
        not_found(
            "POST",
            "/v1/activities/nope/poll?wait_seconds=0",
            Some(json!({})),
            "ActivityDoesNotExist",
        ),
        not_found("GET", "/v1/functions/nope", None, "FunctionNotFound"),
        not_found("DELETE", "/v1/functions/nope", None, "FunctionNotFound"),
        not_found(
            "POST",
            "/v1/functions/nope/invoke",
            Some(json!({})),
            "FunctionNotFound",
        ),
        not_found(
            "GET",
            "/v1/functions/nope/invocations/nope/logs",
            None,
            "InvocationNotFound",
        ),
        not_found(
            "GET",
            "/v1/task-definitions/nope",
            None,
            "TaskDefinitionDoesNotExist",
        ),
        not_found(
            "GET",
            "/v1/task-definitions/nope/1",
            None,
            "TaskDefinitionDoesNotExist",
        ),
        not_found(
            "POST",
            "/v1/tasks",
            Some(json!({"task_definition": "nope"})),
            "TaskDefinitionDoesNotExist",
        ),
        not_found("GET", "/v1/tasks/nope", None, "ContainerTaskDoesNotExist"),
        not_found(
            "GET",
            "/v1/tasks/nope/logs",
            None,
            "ContainerTaskDoesNotExist",
        ),
        not_found(
            "POST",
            "/v1/tasks/nope/stop",
            None,
            "ContainerTaskDoesNotExist",
        ),
        not_found("GET", "/v1/event-buses/nope", None, "ResourceNotFound"),
        not_found(
            "GET",
            "/v1/event-buses/nope/rules",
            None,
            "ResourceNotFound",
        ),
        not_found(
            "GET",
            "/v1/event-buses/default/rules/nope",
            None,
            "ResourceNotFound",
        ),
        not_found(
            "GET",
            "/v1/event-buses/default/rules/nope/targets",
            None,
            "ResourceNotFound",
        ),
        not_found(
            "POST",
            "/v1/event-buses/default/rules/nope/enable",
            None,
            "ResourceNotFound",
        ),
        not_found("GET", "/v1/archives/nope", None, "ResourceNotFound"),
        not_found("GET", "/v1/replays/nope", None, "ResourceNotFound"),
        not_found(
            "POST",
            "/v1/dead-letters/nope/redrive",
            None,
            "ResourceNotFound",
        ),
        not_found("GET", "/v1/topics/nope", None, "ResourceNotFound"),
        not_found(
            "POST",
            "/v1/topics/nope/messages",
            Some(json!({"message": "hi"})),
            "ResourceNotFound",
        ),
        not_found(
            "GET",
            "/v1/topics/nope/subscriptions",
            None,
            "ResourceNotFound",
        ),
        not_found("GET", "/v1/subscriptions/nope", None, "ResourceNotFound"),
        not_found(
            "POST",
            "/v1/task-tokens/heartbeat",
            Some(json!({"task_token": "nope"})),
            "TaskDoesNotExist",
        ),
        not_found("GET", "/v1/no-such-route", None, "RouteNotFound"),
    ]
}

/// Query and path parameters of the wrong type, and a wrong method, answer the same error body as a
/// bad JSON body.
fn parameter_cases() -> Vec<BadInput> {
    let bad = |method: &'static str, uri: &str, field: Option<&'static str>| BadInput {
        what: format!("{method} {uri}: bad parameter"),
        method,
        uri: uri.to_owned(),
        content_type: None,
        body: String::new(),
        status: StatusCode::BAD_REQUEST,
        code: "InvalidParameter",
        field,
    };
    vec![
        bad(
            "GET",
            "/v1/state-machines?max_results=lots",
            Some("max_results"),
        ),
        bad(
            "GET",
            "/v1/state-machines/sm/versions?max_results=-1",
            Some("max_results"),
        ),
        bad(
            "GET",
            "/v1/state-machines/sm/executions?max_results=x",
            Some("max_results"),
        ),
        bad("GET", "/v1/activities?max_results=x", Some("max_results")),
        bad("GET", "/v1/event-buses?max_results=x", Some("max_results")),
        bad("GET", "/v1/topics?max_results=x", Some("max_results")),
        bad("GET", "/v1/task-definitions/report/not-a-number", None),
        BadInput {
            what: "DELETE /v1/state-machines: wrong method".into(),
            method: "DELETE",
            uri: "/v1/state-machines".into(),
            content_type: None,
            body: String::new(),
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "MethodNotAllowed",
            field: None,
        },
    ]
}

/// What a 4xx body must not show: anything beyond the documented keys, the server's paths, source
/// locations, panics, store or OS errors. `None` when the body is clean.
fn leaked_internals(body: &Value, data_dir: &std::path::Path) -> Option<String> {
    const KEYS: &[&str] = &["code", "message", "field", "details", "request_id"];
    let Some(object) = body.as_object() else {
        return Some("a body that is not the error object".into());
    };
    if let Some(key) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Some(format!("undocumented key {key}"));
    }
    let text = body.to_string();
    let data_dir = data_dir.to_string_lossy();
    let tells = [
        data_dir.as_ref(),
        "src/",
        ".rs:",
        "panicked",
        "backtrace",
        "sled",
        "os error",
        "Corrupt",
    ];
    tells
        .iter()
        .find(|tell| text.contains(**tell))
        .map(|tell| tell.to_string())
}

async fn check_cases(h: &Harness, cases: Vec<BadInput>) {
    let mut failures = Vec::new();
    let total = cases.len();
    for case in cases {
        let mut request = Request::builder().method(case.method).uri(&case.uri);
        if let Some(content_type) = case.content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let (status, body, headers) = h
            .send(request.body(Body::from(case.body.clone())).unwrap())
            .await;
        let is_json = headers.get(header::CONTENT_TYPE).is_some_and(|v| {
            v.to_str()
                .unwrap_or_default()
                .starts_with("application/json")
        });
        if let Some(leak) = leaked_internals(&body, h._temp.path()) {
            failures.push(format!("{}: leaks {leak:?}: {body}", case.what));
        }
        let field_ok = case.field.is_none_or(|field| body["field"] == field);
        let message_ok = body["message"].as_str().is_some_and(|m| !m.is_empty());
        if status != case.status
            || body["code"] != case.code
            || !field_ok
            || !message_ok
            || !is_json
        {
            failures.push(format!(
                "{}: expected {} {} field {:?}, got {status} {body}",
                case.what, case.status, case.code, case.field
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases answered wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn bad_bodies_on_every_route_get_the_error_body() {
    let h = Harness::new().await;
    h.create("sm", pass_chain(1), "STANDARD").await;
    check_cases(&h, body_cases()).await;
}

#[tokio::test]
async fn unknown_resources_of_every_family_are_404_with_their_code() {
    let h = Harness::new().await;
    h.create("sm", pass_chain(1), "STANDARD").await;
    check_cases(&h, unknown_resource_cases()).await;
}

#[tokio::test]
async fn bad_query_and_path_parameters_get_the_error_body() {
    let h = Harness::new().await;
    h.create("sm", pass_chain(1), "STANDARD").await;
    check_cases(&h, parameter_cases()).await;
}

#[tokio::test]
async fn oversize_bodies_on_every_route_are_413_with_the_error_body() {
    let h = Harness::with(|config| config.max_body_bytes = 1024).await;
    let big = json!({"name": "x".repeat(4096)}).to_string();
    let cases = body_routes()
        .into_iter()
        .map(|(method, uri, _)| BadInput {
            what: format!("{method} {uri}: oversize"),
            method,
            uri: uri.to_owned(),
            content_type: Some("application/json"),
            body: big.clone(),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "PayloadTooLarge",
            field: None,
        })
        .collect();
    check_cases(&h, cases).await;
}

#[tokio::test]
async fn limits_answer_413_415_429_and_503_with_the_documented_body() {
    let h = Harness::with(|config| {
        config.max_body_bytes = 1024;
        config.rate_limit_per_second = 10;
        config.request_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let big = json!({"name": "x".repeat(4096)}).to_string();
    let native = |uri: &str, content_type: &str, body: String| {
        Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let expectations = [
        (
            native("/v1/activities", "application/json", big.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
        ),
        (
            native("/v1/activities", "text/xml", "<name/>".into()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
        ),
    ];
    for (request, status, code) in expectations {
        let (got, body, headers) = h.send(request).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert!(headers.contains_key("x-request-id"));
        assert_eq!(leaked_internals(&body, h._temp.path()), None, "{body}");
    }

    // The AWS endpoint answers its own shape for the same limits.
    let (status, body, _) = h
        .send(
            Request::post("/")
                .header("x-amz-target", "AWSStepFunctions.CreateActivity")
                .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
                .body(Body::from(big.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["__type"], "RequestEntityTooLargeException", "{body}");

    // A request that outlives the timeout: a sync start of an EXPRESS machine that waits.
    h.create(
        "slow",
        json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": true}}}),
        "EXPRESS",
    )
    .await;
    let (status, body) = h
        .post("/v1/state-machines/slow/executions/sync", json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("RequestTimeout")),
        "{body}"
    );
    assert_eq!(leaked_internals(&body, h._temp.path()), None, "{body}");

    // Past the rate: the native API's body, and AWS's ThrottlingException. Requests alternate
    // until each side has been refused once, so a second boundary between them does not matter.
    let (mut native_refused, mut aws_refused) = (None, None);
    for _ in 0..40 {
        if native_refused.is_none() {
            let (status, body) = h.get("/v1/activities").await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                native_refused = Some(body);
            }
        }
        if aws_refused.is_none() {
            let (status, body) = h.aws("ListActivities", json!({})).await;
            if status != StatusCode::OK {
                aws_refused = Some((status, body));
            }
        }
        if native_refused.is_some() && aws_refused.is_some() {
            break;
        }
    }
    let body = native_refused.expect("the native API was never rate limited");
    assert_eq!(body["code"], "TooManyRequests", "{body}");
    assert_eq!(leaked_internals(&body, h._temp.path()), None);
    let (status, body) = aws_refused.expect("the AWS endpoint was never rate limited");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "ThrottlingException", "{body}");
}

#[tokio::test]
async fn tags_through_the_native_api() {
    let h = Harness::new().await;
    let (status, body) = h
        .post(
            "/v1/state-machines",
            json!({"name": "tagged", "definition": pass_chain(1), "tags": {"team": "platform"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = h.get("/v1/state-machines/tagged/tags").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"tags": {"team": "platform"}}));

    let (status, body) = h
        .post(
            "/v1/state-machines/tagged/tags",
            json!({"tags": {"team": "payments", "cost-center": "1234"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"tags": {"cost-center": "1234", "team": "payments"}})
    );
    let (status, _) = h.delete("/v1/state-machines/tagged/tags/team").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = h.get("/v1/state-machines/tagged/tags").await;
    assert_eq!(body, json!({"tags": {"cost-center": "1234"}}));

    // Mistakes: each with its code, and nothing changed.
    let (status, body) = h
        .post(
            "/v1/state-machines/tagged/tags",
            json!({"tags": {"aws:reserved": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "ValidationError");
    assert!(body["message"].as_str().unwrap().contains("aws:"), "{body}");
    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, body) = h
        .post("/v1/state-machines/tagged/tags", json!({"tags": many}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "LimitExceeded");
    let (status, body) = h
        .post("/v1/state-machines/tagged/tags", json!({"tags": {"n": 1}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "InvalidRequestBody");
    let (status, body) = h
        .post("/v1/state-machines/tagged/tags", json!({"tag": {}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, body) = h.get("/v1/state-machines/tagged/tags").await;
    assert_eq!(body, json!({"tags": {"cost-center": "1234"}}));

    let (status, body) = h.get("/v1/state-machines/missing/tags").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "StateMachineDoesNotExist");
    let (status, body) = h
        .post("/v1/activities/missing/tags", json!({"tags": {"a": "b"}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ActivityDoesNotExist");

    let (status, _) = h
        .post(
            "/v1/activities",
            json!({"name": "approve", "tags": {"owner": "ops"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = h.get("/v1/activities/approve/tags").await;
    assert_eq!(body, json!({"tags": {"owner": "ops"}}));
    let (status, _) = h.delete("/v1/activities/approve/tags/owner").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = h.get("/v1/activities/approve/tags").await;
    assert_eq!(body, json!({"tags": {}}));
}

#[tokio::test]
async fn tags_through_the_aws_protocol() {
    let h = Harness::new().await;
    let (status, body) = h
        .aws(
            "CreateStateMachine",
            json!({"name": "t", "definition": pass_chain(1).to_string(), "roleArn": "arn:aws:iam::123456789012:role/r",
                   "tags": [{"key": "team", "value": "platform"}, {"key": "empty"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sm = body["stateMachineArn"].as_str().unwrap().to_owned();
    let (status, body) = h
        .aws("ListTagsForResource", json!({"resourceArn": sm}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"tags": [{"key": "empty", "value": ""}, {"key": "team", "value": "platform"}]})
    );

    let (status, body) = h
        .aws(
            "TagResource",
            json!({"resourceArn": sm, "tags": [{"key": "team", "value": "payments"}]}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, body) = h
        .aws(
            "UntagResource",
            json!({"resourceArn": sm, "tagKeys": ["empty"]}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (_, body) = h
        .aws("ListTagsForResource", json!({"resourceArn": sm}))
        .await;
    assert_eq!(
        body,
        json!({"tags": [{"key": "team", "value": "payments"}]})
    );

    let (_, body) = h
        .aws(
            "CreateActivity",
            json!({"name": "approve", "tags": [{"key": "owner", "value": "ops"}]}),
        )
        .await;
    let activity = body["activityArn"].as_str().unwrap().to_owned();
    let (_, body) = h
        .aws("ListTagsForResource", json!({"resourceArn": activity}))
        .await;
    assert_eq!(body, json!({"tags": [{"key": "owner", "value": "ops"}]}));

    // AWS's error names for the tag calls.
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    let (status, body) = h
        .aws("TagResource", json!({"resourceArn": sm, "tags": many}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "TooManyTags", "{body}");
    let missing = sm.replace(":t", ":missing");
    let (status, body) = h
        .aws("ListTagsForResource", json!({"resourceArn": missing}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "ResourceNotFound", "{body}");
    let (_, body) = h
        .aws(
            "UntagResource",
            json!({"resourceArn": "nope", "tagKeys": []}),
        )
        .await;
    assert_eq!(body["__type"], "InvalidArn", "{body}");
    let (_, body) = h
        .aws(
            "TagResource",
            json!({"resourceArn": sm, "tags": [{"key": "", "value": "v"}]}),
        )
        .await;
    assert_eq!(body["__type"], "ValidationException", "{body}");
    let (_, body) = h
        .aws(
            "CreateActivity",
            json!({"name": "over", "tags": (0..51).map(|i| json!({"key": format!("k{i}")})).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(body["__type"], "TooManyTags", "{body}");
}

#[tokio::test]
async fn bus_and_rule_tags_through_the_native_api() {
    let h = Harness::new().await;
    let (status, body) = h
        .post(
            "/v1/event-buses",
            json!({"name": "orders", "tags": {"team": "shop"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = h
        .send_json(
            "PUT",
            "/v1/event-buses/orders/rules/paid",
            json!({"event_pattern": {"source": ["shop"]}, "tags": {"stage": "dev"}}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");

    let (_, body) = h.get("/v1/event-buses/orders/tags").await;
    assert_eq!(body, json!({"tags": {"team": "shop"}}));
    let (status, body) = h
        .post(
            "/v1/event-buses/orders/rules/paid/tags",
            json!({"tags": {"owner": "ops"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"tags": {"owner": "ops", "stage": "dev"}}));
    let (status, _) = h
        .delete("/v1/event-buses/orders/rules/paid/tags/stage")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = h.get("/v1/event-buses/orders/rules/paid/tags").await;
    assert_eq!(body, json!({"tags": {"owner": "ops"}}));
    let (_, body) = h.get("/v1/event-buses/default/tags").await;
    assert_eq!(body, json!({"tags": {}}));

    let (status, body) = h.get("/v1/event-buses/orders/rules/missing/tags").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "ResourceNotFound");
    let (status, body) = h
        .post("/v1/event-buses/missing/tags", json!({"tags": {"a": "b"}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn tag_mistakes_on_create_name_the_tags_field() {
    let h = Harness::new().await;
    let (status, body) = h
        .send_json(
            "PUT",
            "/v1/event-buses/default/rules/r",
            json!({"event_pattern": {"source": ["x"]}, "tags": {"Schedule": "a\tb"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "/tags", "{body}");
    let (status, body) = h.get("/v1/event-buses/default/rules/r").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused PutRule made no rule: {body}"
    );
    // A name no ARN can hold is simply not there.
    let (status, body) = h.get("/v1/activities/a:b/tags").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "ActivityDoesNotExist");
}

#[tokio::test]
async fn update_state_machine_can_change_only_the_role() {
    let h = Harness::new().await;
    let (_, body) = h
        .aws(
            "CreateStateMachine",
            json!({"name": "roles", "definition": pass_chain(1).to_string(), "roleArn": "arn:aws:iam::123456789012:role/first"}),
        )
        .await;
    let arn = body["stateMachineArn"].as_str().unwrap().to_owned();
    let (_, before) = h
        .aws("DescribeStateMachine", json!({"stateMachineArn": arn}))
        .await;

    let (status, body) = h
        .aws(
            "UpdateStateMachine",
            json!({"stateMachineArn": arn, "roleArn": "arn:aws:iam::123456789012:role/second"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, after) = h
        .aws("DescribeStateMachine", json!({"stateMachineArn": arn}))
        .await;
    assert_eq!(after["roleArn"], "arn:aws:iam::123456789012:role/second");
    assert_eq!(after["definition"], before["definition"]);
    assert_ne!(after["revisionId"], before["revisionId"]);
    assert_eq!(after["revisionId"], body["revisionId"]);

    let (status, body) = h
        .aws("UpdateStateMachine", json!({"stateMachineArn": arn}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "ValidationException", "{body}");

    let (status, body) = h
        .aws(
            "UpdateStateMachine",
            json!({"stateMachineArn": arn, "roleArn": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "ValidationException", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at 'roleArn' failed to satisfy constraint"),
        "{body}"
    );
    let (_, unchanged) = h
        .aws("DescribeStateMachine", json!({"stateMachineArn": arn}))
        .await;
    assert_eq!(unchanged["revisionId"], after["revisionId"]);
}

#[tokio::test]
async fn native_update_changes_the_role_the_definition_or_both() {
    let h = Harness::new().await;
    h.create("roles", pass_chain(1), "STANDARD").await;
    let (_, before) = h.get("/v1/state-machines/roles").await;

    let (status, body) = h
        .send_json(
            "PUT",
            "/v1/state-machines/roles",
            json!({"role_arn": "arn:aws:iam::123456789012:role/second"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_arn"], "arn:aws:iam::123456789012:role/second");
    assert_eq!(body["definition"], before["definition"]);
    assert_ne!(body["revision_id"], before["revision_id"]);
    let (_, got) = h.get("/v1/state-machines/roles").await;
    assert_eq!(got, body);

    let (status, body) = h
        .send_json(
            "PUT",
            "/v1/state-machines/roles",
            json!({"definition": pass_chain(2), "role_arn": "arn:aws:iam::123456789012:role/third"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_arn"], "arn:aws:iam::123456789012:role/third");
    assert_eq!(body["definition"], pass_chain(2));
    // Both revisions are listed as versions, newest first, each with its own role.
    let (_, versions) = h.get("/v1/state-machines/roles/versions").await;
    let roles: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["role_arn"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles[..2],
        [
            "arn:aws:iam::123456789012:role/third",
            "arn:aws:iam::123456789012:role/second"
        ],
        "{versions}"
    );

    let revision = body["revision_id"].clone();
    for (bad, field) in [
        (json!({}), "/definition"),
        (json!({"role_arn": ""}), "/role_arn"),
        (json!({"role_arn": "r".repeat(257)}), "/role_arn"),
        (json!({"definition": 7}), "/definition"),
    ] {
        let (status, body) = h
            .send_json("PUT", "/v1/state-machines/roles", bad.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["code"], "InvalidRequestBody", "{bad}: {body}");
        assert_eq!(body["field"], field, "{bad}: {body}");
    }
    let (_, got) = h.get("/v1/state-machines/roles").await;
    assert_eq!(got["revision_id"], revision);

    let (status, body) = h
        .send_json(
            "PUT",
            "/v1/state-machines/nobody",
            json!({"role_arn": "arn:aws:iam::123456789012:role/x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "StateMachineDoesNotExist");
}
