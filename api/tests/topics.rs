//! Topics end to end on real parts: sled in a temp dir with a manual clock, the real
//! `Notifier` (reqwest, lettre), an HTTP subscriber (axum on 127.0.0.1:0) and an SMTP sink
//! written here (a TcpListener speaking just enough SMTP); REST through `app().oneshot`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use stepyard_api::config::ServerConfig;
use stepyard_api::{AppState, app};
use stepyard_engine::topics::*;
use stepyard_engine::*;
use stepyard_workers::notify::{Notifier, NotifierConfig, SmtpSettings};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(20);

// ---- an HTTP subscriber ------------------------------------------------------------------------

struct Received {
    headers: HeaderMap,
    body: String,
}

struct Hook {
    url: String,
    port: u16,
    rx: mpsc::UnboundedReceiver<Received>,
    /// The status the hook answers with.
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Hook {
    async fn start() -> Hook {
        Hook::on(TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    async fn on(listener: TcpListener) -> Hook {
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let tx = tx.clone();
                let answer = answer.clone();
                async move {
                    let _ = tx.send(Received { headers, body });
                    StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Hook {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            rx,
            status,
            task,
        }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a notification arrives in time")
            .expect("hook is up")
    }

    fn fail_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

// ---- an SMTP sink ------------------------------------------------------------------------------

#[path = "common/smtp.rs"]
mod smtp;

use smtp::SmtpSink;

fn smtp_settings(sink: &SmtpSink) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port,
        from: "Stepyard <stepyard@localhost>".into(),
        username: None,
        password: None,
        timeout: Duration::from_secs(10),
    }
}

// ---- the harness -------------------------------------------------------------------------------

struct World {
    engine: Engine,
    topics: Topics,
    clock: ManualClock,
    dir: tempfile::TempDir,
    smtp: Option<SmtpSettings>,
}

fn engine_config(dir: &std::path::Path, clock: &ManualClock) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.clock = Arc::new(clock.clone());
    config
}

async fn open_topics(engine: &Engine, smtp: Option<SmtpSettings>) -> Topics {
    let notifier = Notifier::new(NotifierConfig {
        http_timeout: Duration::from_secs(5),
        smtp,
    })
    .expect("notifier");
    let topics = Topics::open(engine, TopicsConfig::default(), Arc::new(notifier))
        .await
        .expect("topics open");
    engine.register_worker(SNS_PUBLISH, topics.task_worker());
    topics
}

impl World {
    async fn new(smtp: Option<SmtpSettings>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::default();
        let engine = Engine::open(engine_config(dir.path(), &clock))
            .await
            .unwrap();
        let topics = open_topics(&engine, smtp.clone()).await;
        World {
            engine,
            topics,
            clock,
            dir,
            smtp,
        }
    }

    /// Shuts topics and the engine down, then opens both again on the same folder and clock.
    async fn restart(self) -> World {
        let World {
            engine,
            topics,
            clock,
            dir,
            smtp,
        } = self;
        topics.shutdown().await;
        drop(topics);
        engine.shutdown().await.unwrap();
        let engine = Engine::open(engine_config(dir.path(), &clock))
            .await
            .unwrap();
        let topics = open_topics(&engine, smtp.clone()).await;
        World {
            engine,
            topics,
            clock,
            dir,
            smtp,
        }
    }

    async fn topic(&self, name: &str) -> String {
        let (info, created) = self
            .topics
            .create_topic(CreateTopic {
                name: name.into(),
                display_name: None,
            })
            .await
            .unwrap();
        assert!(created);
        info.arn
    }

    async fn subscribe(
        &self,
        topic: &str,
        protocol: Protocol,
        endpoint: &str,
        filter_policy: Option<Value>,
        delivery_policy: Option<DeliveryPolicy>,
    ) -> SubscriptionInfo {
        self.topics
            .subscribe(Subscribe {
                topic: topic.into(),
                protocol,
                endpoint: endpoint.into(),
                filter_policy,
                delivery_policy,
                raw_message_delivery: false,
            })
            .await
            .expect("subscribes")
            .0
    }

    async fn publish(
        &self,
        topic_arn: &str,
        message: &str,
        subject: Option<&str>,
        attributes: &[(&str, MessageAttribute)],
    ) -> String {
        self.topics
            .publish(PublishRequest {
                topic_arn: topic_arn.into(),
                message: message.into(),
                subject: subject.map(str::to_string),
                message_attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            })
            .await
            .expect("publishes")
    }

    /// Waits (on delivery outcomes, not on time) until `check` holds.
    async fn until(&self, what: &str, check: impl Fn(&Topics) -> bool) {
        let mut progress = self.topics.progress();
        let deadline = Instant::now() + WAIT;
        loop {
            progress.borrow_and_update();
            if check(&self.topics) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, progress.changed()).await {
                Ok(Ok(())) => {}
                _ => panic!("timed out waiting until {what}"),
            }
        }
    }

    async fn until_attempts(&self, subscription: &str, attempts: u32) -> PendingDelivery {
        self.until(&format!("{attempts} attempts were made"), |t| {
            t.pending_deliveries()
                .unwrap()
                .iter()
                .any(|d| d.subscription_id == subscription && d.attempts == attempts)
        })
        .await;
        self.topics
            .pending_deliveries()
            .unwrap()
            .into_iter()
            .find(|d| d.subscription_id == subscription)
            .unwrap()
    }

    async fn until_settled(&self) {
        self.until("no delivery is pending", |t| {
            t.pending_deliveries().unwrap().is_empty()
        })
        .await;
    }

    fn dead_letters(&self) -> Vec<DeadLetter> {
        self.topics
            .list_dead_letters(None, PageRequest::default())
            .unwrap()
            .items
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

// ---- engine-level tests --------------------------------------------------------------------------

#[tokio::test]
async fn an_http_subscriber_gets_sns_notification_json_and_headers() {
    let w = World::new(None).await;
    let mut hook = Hook::start().await;
    let topic = w.topic("scan-results").await;
    let sub = w
        .subscribe("scan-results", Protocol::Http, &hook.url, None, None)
        .await;
    let started = Instant::now();
    let id = w
        .publish(
            &topic,
            "2 secrets found",
            Some("Scan finished"),
            &[
                ("severity", MessageAttribute::string("high")),
                ("findings", MessageAttribute::number(2)),
            ],
        )
        .await;
    let got = hook.next().await;
    let latency = started.elapsed();
    eprintln!("publish -> delivered over loopback HTTP: {latency:?}");
    assert_eq!(got.headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(got.headers["x-amz-sns-message-id"], id.as_str());
    assert_eq!(got.headers["x-amz-sns-topic-arn"], topic.as_str());
    assert_eq!(got.headers["x-amz-sns-subscription-arn"], sub.arn.as_str());
    assert_eq!(got.headers["content-type"], "text/plain; charset=UTF-8");
    let body = json_of(&got.body);
    assert_eq!(
        body,
        json!({
            "Type": "Notification",
            "MessageId": id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:scan-results",
            "Subject": "Scan finished",
            "Message": "2 secrets found",
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "1",
            "MessageAttributes": {
                "findings": {"Type": "Number", "Value": "2"},
                "severity": {"Type": "String", "Value": "high"},
            },
        })
    );
    // Keys in SNS's order, Subject left out when there is none.
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys[..3], ["Type", "MessageId", "TopicArn"]);
    w.publish(&topic, "no subject", None, &[]).await;
    let body = json_of(&hook.next().await.body);
    assert!(body.get("Subject").is_none() && body.get("MessageAttributes").is_none());
    w.until_settled().await;
}

#[tokio::test]
async fn an_email_subscriber_gets_subject_and_body_and_a_rejected_recipient_is_dead_lettered() {
    let mut sink = SmtpSink::start(&["nobody@example.com"], WAIT).await;
    let w = World::new(Some(smtp_settings(&sink))).await;
    let topic = w.topic("orders").await;
    w.subscribe("orders", Protocol::Email, "ops@example.com", None, None)
        .await;
    let bounced = w
        .subscribe("orders", Protocol::Email, "nobody@example.com", None, None)
        .await;
    let id = w
        .publish(&topic, "Order 42 shipped", Some("Shipped"), &[])
        .await;
    let mail = sink.next().await;
    assert_eq!(mail.to, ["ops@example.com"]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Shipped"));
    assert_eq!(mail.header("To").as_deref(), Some("ops@example.com"));
    assert!(mail.header("From").unwrap().contains("stepyard@localhost"));
    let body = mail.body();
    assert!(body.starts_with("Order 42 shipped"), "{body}");
    assert!(body.contains(&id), "{body}");
    // The 550 is final: a dead letter at once, without retries.
    w.until("the rejected recipient is dead-lettered", |t| {
        !t.list_dead_letters(None, PageRequest::default())
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    let dead = w.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subscription_id, bounced.id);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].message, "Order 42 shipped");
    assert!(dead[0].reason.contains("550"), "{}", dead[0].reason);
    // A message without a subject gets SNS's default one.
    w.publish(&topic, "no subject", None, &[]).await;
    let mail = sink.next().await;
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some(DEFAULT_EMAIL_SUBJECT)
    );
}

#[tokio::test]
async fn a_relay_that_is_down_is_retried_per_delivery_and_others_are_not_held_back() {
    // Nothing listens on this port: every SMTP attempt is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = World::new(Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        from: "stepyard@localhost".into(),
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
    }))
    .await;
    let mut hook = Hook::start().await;
    let topic = w.topic("alerts").await;
    let mail = w
        .subscribe("alerts", Protocol::Email, "ops@example.com", None, None)
        .await;
    w.subscribe("alerts", Protocol::Http, &hook.url, None, None)
        .await;
    w.publish(&topic, "disk full", None, &[]).await;
    hook.next().await;
    let pending = w.until_attempts(&mail.id, 1).await;
    assert!(pending.last_error.unwrap().contains("SMTP"));
    // Email's default policy: the first retry 10 s later.
    assert_eq!(pending.due_ms, w.clock.now_ms() + 10_000);
}

#[tokio::test]
async fn a_failing_subscriber_is_retried_with_back_off_dead_lettered_and_redriven() {
    let w = World::new(None).await;
    let mut good = Hook::start().await;
    let mut bad = Hook::start().await;
    bad.fail_with(500);
    let topic = w.topic("builds").await;
    w.subscribe("builds", Protocol::Http, &good.url, None, None)
        .await;
    let policy = DeliveryPolicy {
        num_retries: 2,
        min_delay_seconds: 5,
        max_delay_seconds: 10,
    };
    let failing = w
        .subscribe("builds", Protocol::Http, &bad.url, None, Some(policy))
        .await;
    let id = w.publish(&topic, "build 7 is green", None, &[]).await;
    // The healthy subscriber gets it at once, whatever the other does.
    assert_eq!(json_of(&good.next().await.body)["MessageId"], id.as_str());
    bad.next().await;
    let first = w.until_attempts(&failing.id, 1).await;
    assert_eq!(
        first.due_ms,
        w.clock.now_ms() + 5_000,
        "first retry after min_delay"
    );
    assert!(first.last_error.unwrap().contains("HTTP 500"));
    w.clock.advance(Duration::from_secs(5));
    let retry = bad.next().await;
    assert_eq!(
        retry.headers["x-amz-sns-message-id"],
        id.as_str(),
        "same MessageId on retries"
    );
    let second = w.until_attempts(&failing.id, 2).await;
    let wait = second.due_ms - w.clock.now_ms();
    assert!(
        (5_000..=10_000).contains(&wait),
        "second retry waits {wait} ms"
    );
    w.clock.advance(Duration::from_millis(wait));
    bad.next().await;
    w.until("the failing delivery is dead-lettered", |t| {
        !t.list_dead_letters(None, PageRequest::default())
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    assert!(w.topics.pending_deliveries().unwrap().is_empty());
    let dead = w.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].attempts, dead[0].message_id.as_str()),
        (3, id.as_str())
    );
    assert!(
        dead[0]
            .reason
            .contains("retries exhausted after 3 attempts"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].endpoint, bad.url);
    // The good subscriber got it exactly once.
    assert!(good.rx.try_recv().is_err());
    // Once the endpoint works, a redrive delivers it.
    bad.fail_with(204);
    let n = w
        .topics
        .redrive_dead_letters(Some("builds"), None)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let redriven = bad.next().await;
    assert_eq!(json_of(&redriven.body)["Message"], "build 7 is green");
    w.until_settled().await;
    assert!(w.dead_letters().is_empty());
}

#[tokio::test]
async fn a_4xx_answer_is_dead_lettered_without_retries() {
    let w = World::new(None).await;
    let mut hook = Hook::start().await;
    hook.fail_with(404);
    let topic = w.topic("gone").await;
    w.subscribe("gone", Protocol::Http, &hook.url, None, None)
        .await;
    w.publish(&topic, "hello", None, &[]).await;
    hook.next().await;
    w.until("dead-lettered", |t| {
        !t.list_dead_letters(None, PageRequest::default())
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    let dead = w.dead_letters();
    assert_eq!(dead[0].attempts, 1);
    assert!(dead[0].reason.contains("HTTP 404"), "{}", dead[0].reason);
}

#[tokio::test]
async fn a_filter_policy_lets_only_matching_messages_through() {
    let w = World::new(None).await;
    let mut all = Hook::start().await;
    let mut urgent = Hook::start().await;
    let topic = w.topic("findings").await;
    w.subscribe("findings", Protocol::Http, &all.url, None, None)
        .await;
    w.subscribe(
        "findings",
        Protocol::Http,
        &urgent.url,
        Some(json!({
            "severity": ["high", "critical"],
            "score": [{"numeric": [">=", 7]}],
        })),
        None,
    )
    .await;
    let publish = |severity: &'static str, score: i64, text: &'static str| {
        let w = &w;
        let topic = topic.clone();
        async move {
            w.publish(
                &topic,
                text,
                None,
                &[
                    ("severity", MessageAttribute::string(severity)),
                    ("score", MessageAttribute::number(score)),
                ],
            )
            .await
        }
    };
    publish("low", 9, "low but high score").await;
    publish("high", 3, "high but low score").await;
    publish("critical", 8, "critical and high score").await;
    w.publish(&topic, "no attributes at all", None, &[]).await;
    for _ in 0..4 {
        all.next().await;
    }
    assert_eq!(
        json_of(&urgent.next().await.body)["Message"],
        "critical and high score"
    );
    w.until_settled().await;
    assert!(
        urgent.rx.try_recv().is_err(),
        "only the matching message passes"
    );
    // An invalid policy is refused at subscribe time, naming the field.
    let err = w
        .topics
        .subscribe(Subscribe {
            topic: "findings".into(),
            protocol: Protocol::Http,
            endpoint: format!("{}?x", all.url),
            filter_policy: Some(json!({"severity": "high"})),
            delivery_policy: None,
            raw_message_delivery: false,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidParameter { field, .. } if field == "filter_policy"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_restart_resumes_a_pending_delivery() {
    let w = World::new(None).await;
    // The subscriber is down: its port is free, so connections are refused.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/hook");
    let topic = w.topic("deploys").await;
    let sub = w
        .subscribe("deploys", Protocol::Http, &url, None, None)
        .await;
    let id = w.publish(&topic, "deployed v2", None, &[]).await;
    let pending = w.until_attempts(&sub.id, 1).await;
    assert!(pending.last_error.unwrap().contains("connect"));
    let w = w.restart().await;
    let pending = w.topics.pending_deliveries().unwrap();
    assert_eq!(pending.len(), 1, "the delivery survived the restart");
    // The subscriber comes up on its port; at the retry time it gets the message.
    let mut hook = Hook::on(TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    assert_eq!(hook.url, url);
    w.clock.advance(Duration::from_secs(20));
    let got = hook.next().await;
    assert_eq!(json_of(&got.body)["MessageId"], id.as_str());
    assert_eq!(json_of(&got.body)["Message"], "deployed v2");
    w.until_settled().await;
    hook.task.abort();
    let _ = hook.port;
}

#[tokio::test]
async fn a_workflow_publishes_and_both_the_http_and_the_email_subscriber_receive_it() {
    let mut sink = SmtpSink::start(&[], WAIT).await;
    let w = World::new(Some(smtp_settings(&sink))).await;
    let mut hook = Hook::start().await;
    let topic = w.topic("verdicts").await;
    w.subscribe("verdicts", Protocol::Http, &hook.url, None, None)
        .await;
    w.subscribe(
        "verdicts",
        Protocol::Email,
        "security@example.com",
        None,
        None,
    )
    .await;
    let sm = w
        .engine
        .create_state_machine(CreateStateMachine {
            name: "scan".into(),
            definition: json!({
                "StartAt": "Notify",
                "States": {"Notify": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {
                        "TopicArn": topic,
                        "Subject": "Scan verdict",
                        "Message.$": "$.verdict",
                        "MessageAttributes": {
                            "repo": {"DataType": "String", "StringValue.$": "$.repo"}
                        }
                    },
                    "End": true
                }}
            })
            .to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = w
        .engine
        .start_execution(StartExecution {
            state_machine_arn: sm.arn,
            input: Some(
                json!({"repo": "acme/web", "verdict": {"secrets": 2, "todos": 5}}).to_string(),
            ),
            ..Default::default()
        })
        .await
        .unwrap();
    let done = w
        .engine
        .await_execution(&started.execution_arn)
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    let id = output["MessageId"].as_str().unwrap().to_string();
    let got = json_of(&hook.next().await.body);
    assert_eq!(got["MessageId"], id.as_str());
    // A JSON message is sent as its JSON text, as SNS does.
    assert_eq!(
        json_of(got["Message"].as_str().unwrap()),
        json!({"secrets": 2, "todos": 5})
    );
    assert_eq!(
        got["MessageAttributes"]["repo"],
        json!({"Type": "String", "Value": "acme/web"})
    );
    let mail = sink.next().await;
    assert_eq!(mail.to, ["security@example.com"]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Scan verdict"));
    assert!(
        mail.body().contains(r#"{"secrets":2,"todos":5}"#),
        "{}",
        mail.body()
    );
}

#[tokio::test]
async fn wait_for_task_token_publishes_the_token_and_waits_for_the_answer() {
    let w = World::new(None).await;
    let mut hook = Hook::start().await;
    let topic = w.topic("approvals").await;
    w.subscribe("approvals", Protocol::Http, &hook.url, None, None)
        .await;
    let sm = w
        .engine
        .create_state_machine(CreateStateMachine {
            name: "approve".into(),
            definition: json!({
                "StartAt": "Ask",
                "States": {"Ask": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                    "Parameters": {"TopicArn": topic, "Message.$": "$$.Task.Token"},
                    "End": true
                }}
            })
            .to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = w
        .engine
        .start_execution(StartExecution {
            state_machine_arn: sm.arn,
            ..Default::default()
        })
        .await
        .unwrap();
    let token = json_of(&hook.next().await.body)["Message"]
        .as_str()
        .unwrap()
        .to_string();
    w.engine
        .send_task_success(&token, r#"{"approved":true}"#)
        .await
        .unwrap();
    let done = w
        .engine
        .await_execution(&started.execution_arn)
        .await
        .unwrap();
    assert_eq!(done.output.as_deref(), Some(r#"{"approved":true}"#));
}

#[tokio::test]
async fn a_function_subscriber_gets_the_sns_lambda_event() {
    let w = World::new(None).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    w.engine
        .register_function("on-message", move |event: Value| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
                Ok(json!(null))
            }
        });
    let topic = w.topic("events").await;
    let sub = w
        .subscribe(
            "events",
            Protocol::Function,
            "arn:aws:lambda:us-east-1:123456789012:function:on-message",
            None,
            None,
        )
        .await;
    let id = w.publish(&topic, "hi", Some("S"), &[]).await;
    let event = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let record = &event["Records"][0];
    assert_eq!(record["EventSource"], "aws:sns");
    assert_eq!(record["EventSubscriptionArn"], sub.arn.as_str());
    assert_eq!(record["Sns"]["MessageId"], id.as_str());
    assert_eq!(record["Sns"]["Message"], "hi");
    assert_eq!(record["Sns"]["Subject"], "S");
    w.until_settled().await;
}

// ---- REST ----------------------------------------------------------------------------------------

struct Rest {
    state: AppState,
    _temp: tempfile::TempDir,
}

impl Rest {
    async fn new(configure: impl FnOnce(&mut ServerConfig)) -> Rest {
        let temp = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::local(temp.path().join("data"));
        configure(&mut config);
        let state = AppState::open(config).await.expect("open");
        Rest { state, _temp: temp }
    }

    async fn send(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder().method(method).uri(uri);
        let request = match body {
            Some(b) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
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
}

#[tokio::test]
async fn topics_over_rest_create_list_get_delete() {
    let r = Rest::new(|_| {}).await;
    let (status, body) = r
        .send("POST", "/v1/topics", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["arn"], "arn:aws:sns:us-east-1:123456789012:alpha");
    // Creating it again is idempotent, as SNS's CreateTopic.
    let (status, _) = r
        .send("POST", "/v1/topics", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    for name in ["beta", "gamma"] {
        r.send("POST", "/v1/topics", Some(json!({"name": name})))
            .await;
    }
    let (status, body) = r.send("GET", "/v1/topics?max_results=2", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(body["next_token"], "beta");
    let (_, body) = r.send("GET", "/v1/topics?next_token=beta", None).await;
    assert_eq!(body["topics"][0]["name"], "gamma");
    assert!(body.get("next_token").is_none());

    let (status, body) = r.send("GET", "/v1/topics/alpha", None).await;
    assert_eq!(
        (status, body["subscriptions"].clone()),
        (StatusCode::OK, json!(0))
    );
    let (status, _) = r.send("DELETE", "/v1/topics/alpha", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = r.send("GET", "/v1/topics/alpha", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ResourceNotFound");
    let (status, _) = r.send("DELETE", "/v1/topics/alpha", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn subscriptions_and_publishing_over_rest() {
    let r = Rest::new(|_| {}).await;
    let mut hook = Hook::start().await;
    r.send("POST", "/v1/topics", Some(json!({"name": "t"})))
        .await;
    let (status, sub) = r
        .send(
            "POST",
            "/v1/topics/t/subscriptions",
            Some(
                json!({"protocol": "http", "endpoint": hook.url, "filter_policy": {"kind": ["a"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    assert_eq!(
        sub["delivery_policy"],
        json!({"num_retries": 3, "min_delay_seconds": 20, "max_delay_seconds": 20})
    );
    let id = sub["id"].as_str().unwrap();
    let (status, same) = r
        .send(
            "POST",
            "/v1/topics/t/subscriptions",
            Some(
                json!({"protocol": "http", "endpoint": hook.url, "filter_policy": {"kind": ["a"]}}),
            ),
        )
        .await;
    assert_eq!((status, same["id"].as_str()), (StatusCode::OK, Some(id)));
    let (_, list) = r.send("GET", "/v1/topics/t/subscriptions", None).await;
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);
    let (status, got) = r
        .send("GET", &format!("/v1/subscriptions/{id}"), None)
        .await;
    assert_eq!(
        (status, got["endpoint"].as_str()),
        (StatusCode::OK, Some(hook.url.as_str()))
    );

    let (status, published) = r
        .send(
            "POST",
            "/v1/topics/t/messages",
            Some(json!({
                "message": {"ok": true},
                "subject": "Hi",
                "message_attributes": {"kind": {"type": "String", "value": "a"}}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    let got = json_of(&hook.next().await.body);
    assert_eq!(got["MessageId"], published["message_id"]);
    assert_eq!(got["Message"], r#"{"ok":true}"#);

    let (status, dead) = r.send("GET", "/v1/topics/t/dead-letters", None).await;
    assert_eq!(
        (status, dead["dead_letters"].clone()),
        (StatusCode::OK, json!([]))
    );
    let (status, redriven) = r
        .send("POST", "/v1/topics/t/dead-letters/redrive", None)
        .await;
    assert_eq!(
        (status, redriven["redriven"].clone()),
        (StatusCode::ACCEPTED, json!(0))
    );

    let (status, _) = r
        .send("DELETE", &format!("/v1/subscriptions/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = r
        .send("GET", &format!("/v1/subscriptions/{id}"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ResourceNotFound"))
    );
}

#[tokio::test]
async fn bad_topic_input_is_a_4xx_naming_the_field() {
    let r =
        Rest::new(|c| c.notifications.allowed_http_hosts = vec!["hooks.example.com".into()]).await;
    let (status, body) = r
        .send("POST", "/v1/topics", Some(json!({"name": "no spaces"})))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("/name")),
        "{body}"
    );
    let (status, body) = r.send("POST", "/v1/topics", Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("name"), "{body}");

    // Unknown topics are 404 everywhere.
    for (method, uri, payload) in [
        ("GET", "/v1/topics/nope", None),
        ("GET", "/v1/topics/nope/subscriptions", None),
        (
            "POST",
            "/v1/topics/nope/subscriptions",
            Some(json!({"protocol": "email", "endpoint": "a@example.com"})),
        ),
        (
            "POST",
            "/v1/topics/nope/messages",
            Some(json!({"message": "x"})),
        ),
        ("GET", "/v1/topics/nope/dead-letters", None),
        ("POST", "/v1/topics/nope/dead-letters/redrive", None),
    ] {
        let (status, body) = r.send(method, uri, payload).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {body}");
        assert_eq!(body["code"], "ResourceNotFound");
    }

    r.send("POST", "/v1/topics", Some(json!({"name": "t"})))
        .await;
    // Server-side request safety: a host that is neither loopback nor allowed is refused.
    let (status, body) = r
        .send(
            "POST",
            "/v1/topics/t/subscriptions",
            Some(json!({"protocol": "https", "endpoint": "https://169.254.169.254/latest/meta-data"})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("/endpoint")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("allowed_http_hosts"),
        "{body}"
    );
    let (status, body) = r
        .send(
            "POST",
            "/v1/topics/t/subscriptions",
            Some(json!({"protocol": "https", "endpoint": "https://Hooks.Example.com:8443/in"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an allowed host is taken: {body}"
    );
    for (payload, field) in [
        (
            json!({"protocol": "http", "endpoint": "https://127.0.0.1/x"}),
            "/endpoint",
        ),
        (
            json!({"protocol": "email", "endpoint": "not-an-address"}),
            "/endpoint",
        ),
        (
            json!({"protocol": "function", "endpoint": "bad name!"}),
            "/endpoint",
        ),
        (
            json!({"protocol": "http", "endpoint": "http://127.0.0.1/x", "filter_policy": {"a": 1}}),
            "/filter_policy",
        ),
        (
            json!({"protocol": "http", "endpoint": "http://127.0.0.1/x",
                "delivery_policy": {"num_retries": 1, "min_delay_seconds": 30, "max_delay_seconds": 10}}),
            "/delivery_policy",
        ),
        (
            json!({"protocol": "email", "endpoint": "a@example.com", "raw_message_delivery": true}),
            "/raw_message_delivery",
        ),
    ] {
        let (status, body) = r
            .send("POST", "/v1/topics/t/subscriptions", Some(payload.clone()))
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{payload}: {body}"
        );
    }
    let (status, body) = r
        .send(
            "POST",
            "/v1/topics/t/subscriptions",
            Some(json!({"protocol": "sms", "endpoint": "+1"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    for (payload, field) in [
        (json!({"message": ""}), "/message"),
        (
            json!({"message": "x", "subject": "line\nbreak"}),
            "/subject",
        ),
        (
            json!({"message": "x", "message_attributes": {"n": {"type": "Number", "value": "abc"}}}),
            "/message_attributes/n",
        ),
        (
            json!({"message": "x", "message_attributes": {"n": {"type": "Blob", "value": "1"}}}),
            "/message_attributes/n",
        ),
        (
            json!({"message": "x", "message_attributes": {"AWS.x": {"type": "String", "value": "1"}}}),
            "/message_attributes/AWS.x",
        ),
    ] {
        let (status, body) = r
            .send("POST", "/v1/topics/t/messages", Some(payload.clone()))
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{payload}: {body}"
        );
    }
}

#[tokio::test]
async fn an_eventbus_subscription_puts_the_notification_on_the_bus() {
    let r = Rest::new(|_| {}).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    r.state
        .engine()
        .register_function("bus-sink", move |event: Value| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
                Ok(json!(null))
            }
        });
    let (status, body) = r
        .send(
            "PUT",
            "/v1/event-buses/default/rules/from-topics",
            Some(json!({"event_pattern": {"source": [BUS_EVENT_SOURCE]}})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = r
        .send(
            "PUT",
            "/v1/event-buses/default/rules/from-topics/targets",
            Some(json!({"targets": [{"id": "sink", "arn": "arn:aws:lambda:us-east-1:123456789012:function:bus-sink"}]})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    r.send("POST", "/v1/topics", Some(json!({"name": "t"})))
        .await;
    let (status, body) = r
        .send(
            "POST",
            "/v1/topics/t/subscriptions",
            Some(json!({"protocol": "eventbus", "endpoint": "default"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, published) = r
        .send(
            "POST",
            "/v1/topics/t/messages",
            Some(json!({"message": "to the bus"})),
        )
        .await;
    let event = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event["source"], BUS_EVENT_SOURCE);
    assert_eq!(event["detail-type"], BUS_EVENT_DETAIL_TYPE);
    assert_eq!(event["detail"]["MessageId"], published["message_id"]);
    assert_eq!(event["detail"]["Message"], "to the bus");
}

#[tokio::test]
async fn a_topic_as_an_event_bus_target_publishes_the_event() {
    let r = Rest::new(|_| {}).await;
    let mut hook = Hook::start().await;
    r.send("POST", "/v1/topics", Some(json!({"name": "t"})))
        .await;
    r.send(
        "POST",
        "/v1/topics/t/subscriptions",
        Some(json!({"protocol": "http", "endpoint": hook.url})),
    )
    .await;
    r.send(
        "PUT",
        "/v1/event-buses/default/rules/to-topic",
        Some(json!({"event_pattern": {"source": ["shop"]}})),
    )
    .await;
    let (status, body) = r
        .send(
            "PUT",
            "/v1/event-buses/default/rules/to-topic/targets",
            Some(json!({"targets": [{"id": "t", "arn": "arn:aws:sns:us-east-1:123456789012:t"}]})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = r
        .send(
            "POST",
            "/v1/event-buses/default/events",
            Some(json!({"entries": [{"source": "shop", "detail_type": "Order", "detail": {"id": 7}}]})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let got = json_of(&hook.next().await.body);
    let event = json_of(got["Message"].as_str().unwrap());
    assert_eq!(
        (event["source"].clone(), event["detail"].clone()),
        (json!("shop"), json!({"id": 7}))
    );
}
