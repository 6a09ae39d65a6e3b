//! The event bus's REST routes and GitHub webhooks through `app(state).oneshot(request)`: a real
//! engine and bus on sled in a temp dir.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use stepyard_api::config::ServerConfig;
use stepyard_api::{AppState, app};
use tower::ServiceExt;

const SECRET: &str = "it's a secret to everybody";

struct Harness {
    state: AppState,
    _temp: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let temp = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::local(temp.path().join("data"));
        config.github_webhook_secret = Some(SECRET.into());
        let state = AppState::open(config).await.expect("open");
        Harness { state, _temp: temp }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    async fn json(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn webhook(
        &self,
        bus: &str,
        event: &str,
        body: &str,
        signature: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = Request::post(format!("/v1/webhooks/github/{bus}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-github-event", event);
        if let Some(sig) = signature {
            request = request.header("x-hub-signature-256", sig);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn machine(&self, name: &str) -> String {
        let (status, body) = self
            .json(
                "POST",
                "/v1/state-machines",
                json!({"name": name, "definition":
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["arn"].as_str().unwrap().to_string()
    }

    async fn executions(&self, sm: &str) -> Vec<Value> {
        self.state.bus().settled().await.unwrap();
        let (status, body) = self
            .get(&format!("/v1/state-machines/{sm}/executions"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["executions"].as_array().cloned().unwrap_or_default()
    }
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn rules_targets_and_events_over_rest() {
    let h = Harness::new().await;
    let sm = h.machine("on-order").await;
    let (status, bus) = h
        .json("POST", "/v1/event-buses", json!({"name": "orders"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bus}");
    assert_eq!(
        bus["arn"],
        "arn:aws:events:us-east-1:123456789012:event-bus/orders"
    );
    let (status, again) = h
        .json("POST", "/v1/event-buses", json!({"name": "orders"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["code"], "ResourceAlreadyExists");

    let (status, rule) = h
        .json(
            "PUT",
            "/v1/event-buses/orders/rules/big",
            json!({"event_pattern": {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rule}");
    assert_eq!(
        rule["arn"],
        "arn:aws:events:us-east-1:123456789012:rule/orders/big"
    );
    assert_eq!(rule["state"], "ENABLED");
    let (status, put) = h
        .json(
            "PUT",
            "/v1/event-buses/orders/rules/big/targets",
            json!({"targets": [{"id": "sfn", "arn": sm, "input_path": "$.detail"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["failed"], json!([]));
    let (_, targets) = h.get("/v1/event-buses/orders/rules/big/targets").await;
    assert_eq!(targets["targets"][0]["input_path"], "$.detail");

    let (status, result) = h
        .json(
            "POST",
            "/v1/event-buses/orders/events",
            json!({"entries": [
                {"source": "shop", "detail_type": "order", "detail": {"total": 250}},
                {"source": "shop", "detail_type": "order", "detail": {"total": 5}},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["failed_entry_count"], 0);
    let runs = h.executions("on-order").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["input"], json!({"total": 250}));

    // Disabled, the rule lets the next event pass by.
    let (status, _) = h
        .json(
            "POST",
            "/v1/event-buses/orders/rules/big/disable",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    h.json(
        "POST",
        "/v1/event-buses/orders/events",
        json!({"entries": [{"source": "shop", "detail_type": "order", "detail": {"total": 900}}]}),
    )
    .await;
    assert_eq!(h.executions("on-order").await.len(), 1);

    let (status, body) = h
        .send(
            Request::delete("/v1/event-buses/orders/rules/big")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a rule with targets needs force: {body}"
    );
    let (status, _) = h
        .send(
            Request::delete("/v1/event-buses/orders/rules/big?force=true")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.get("/v1/event-buses/orders/rules/big").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "ResourceNotFound");
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let h = Harness::new().await;
    let (status, body) = h
        .json(
            "PUT",
            "/v1/event-buses/default/rules/r",
            json!({"event_pattern": {"source": "not-an-array"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "InvalidEventPattern");
    assert_eq!(body["field"], "/event_pattern");
    let (status, body) = h
        .json(
            "PUT",
            "/v1/event-buses/default/rules/r",
            json!({"schedule_expression": "every day"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "/schedule_expression");
    let (status, body) = h
        .json(
            "PUT",
            "/v1/event-buses/default/rules/r",
            json!({"event_pattern": {}, "colour": "red"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused: {body}"
    );
    assert_eq!(body["field"], "/colour");
    let (status, body) = h
        .json(
            "POST",
            "/v1/event-buses/default/events",
            json!({"entries": []}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = h
        .json(
            "POST",
            "/v1/event-buses/nope/events",
            json!({"entries": [{"source": "a", "detail_type": "b", "detail": {}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["entries"][0]["error_code"],
        "ResourceNotFoundException"
    );
    let (status, body) = h.get("/v1/event-buses/nope/rules").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let event = json!({"id": "1", "account": "1", "source": "a", "time": "2026-01-01T00:00:00Z",
                       "region": "r", "detail-type": "t", "detail": {}});
    let (status, body) = h
        .json(
            "POST",
            "/v1/event-patterns/test",
            json!({"event_pattern": {"source": ["a"]}, "event": event}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["matches"], true);
}

#[tokio::test]
async fn a_signed_github_webhook_becomes_an_event_and_a_bad_signature_publishes_nothing() {
    let h = Harness::new().await;
    let sm = h.machine("on-pr").await;
    h.json(
        "PUT",
        "/v1/event-buses/default/rules/prs",
        json!({"event_pattern": {"source": ["github"], "detail-type": ["pull_request"]}}),
    )
    .await;
    h.json(
        "PUT",
        "/v1/event-buses/default/rules/prs/targets",
        json!({"targets": [{"id": "scan", "arn": sm}]}),
    )
    .await;
    let payload = json!({"action": "opened", "number": 3}).to_string();

    let (status, body) = h.webhook("default", "pull_request", &payload, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let forged = sign(&payload.replace("opened", "closed"));
    let (status, _) = h
        .webhook("default", "pull_request", &payload, Some(forged))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.executions("on-pr").await.is_empty(), "nothing published");

    let (status, body) = h
        .webhook("default", "pull_request", &payload, Some(sign(&payload)))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let runs = h.executions("on-pr").await;
    assert_eq!(runs.len(), 1);
    let input = &runs[0]["input"];
    assert_eq!(input["source"], "github");
    assert_eq!(input["detail-type"], "pull_request");
    assert_eq!(input["detail"], json!({"action": "opened", "number": 3}));
    assert_eq!(input["id"], body["event_id"]);
}

#[tokio::test]
async fn archives_replays_and_dead_letters_over_rest() {
    let h = Harness::new().await;
    let (status, archive) = h
        .json(
            "POST",
            "/v1/archives",
            json!({"name": "all", "event_bus": "default"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{archive}");
    h.json(
        "POST",
        "/v1/event-buses/default/events",
        json!({"entries": [{"source": "s", "detail_type": "t", "detail": {"k": 1}}]}),
    )
    .await;
    let (_, archive) = h.get("/v1/archives/all").await;
    assert_eq!(archive["event_count"], 1);

    // A rule whose target does not exist: its delivery fails for good.
    h.json(
        "PUT",
        "/v1/event-buses/default/rules/r",
        json!({"event_pattern": {"source": ["s"]}}),
    )
    .await;
    let missing = "arn:aws:states:us-east-1:123456789012:stateMachine:missing";
    h.json(
        "PUT",
        "/v1/event-buses/default/rules/r/targets",
        json!({"targets": [{"id": "gone", "arn": missing}]}),
    )
    .await;
    let (status, replay) = h
        .json(
            "POST",
            "/v1/replays",
            json!({"name": "again", "archive": "all", "start_time": "2000-01-01T00:00:00Z",
                   "end_time": "2100-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{replay}");
    let done = h.state.bus().await_replay("again").await.unwrap();
    assert_eq!(done.events_replayed, 1);
    h.state.bus().settled().await.unwrap();
    let (_, dead) = h.get("/v1/dead-letters").await;
    let items = dead["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{dead}");
    assert_eq!(items[0]["target_arn"], missing);
    assert_eq!(items[0]["event"]["replay-name"], "again");
    let id = items[0]["id"].as_str().unwrap();
    let (status, _) = h
        .json("POST", &format!("/v1/dead-letters/{id}/redrive"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = h
        .json("POST", "/v1/dead-letters/999999/redrive", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = h.json("POST", "/v1/replays/again/cancel", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}
