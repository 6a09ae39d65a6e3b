//! The event bus: PutEvents → rules → targets, schedules on the manual clock, retries and dead
//! letters, restarts with deliveries pending, archives and replays.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stepyard_engine::bus::*;
use stepyard_engine::*;
use tokio::sync::mpsc;

use crate::common::*;

const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

struct BusHarness {
    h: Harness,
    bus: Bus,
}

impl BusHarness {
    async fn new() -> BusHarness {
        let h = Harness::new().await;
        let bus = Bus::open(&h.engine, BusConfig::default())
            .await
            .expect("bus opens");
        BusHarness { h, bus }
    }

    async fn restart(self) -> BusHarness {
        let BusHarness { h, bus } = self;
        bus.shutdown().await;
        drop(bus);
        let h = h.restart().await;
        let bus = Bus::open(&h.engine, BusConfig::default())
            .await
            .expect("bus reopens");
        BusHarness { h, bus }
    }

    async fn rule(&self, name: &str, pattern: Value, targets: Vec<Target>) -> String {
        let arn = self
            .bus
            .put_rule(PutRule {
                name: name.into(),
                event_pattern: Some(pattern.to_string()),
                ..Default::default()
            })
            .await
            .expect("rule is valid");
        let failed = self
            .bus
            .put_targets(None, name, targets)
            .await
            .expect("targets");
        assert!(failed.is_empty(), "{failed:?}");
        arn
    }

    async fn put(&self, source: &str, detail_type: &str, detail: Value) -> PutEventsResultEntry {
        let mut results = self
            .bus
            .put_events(vec![PutEventsEntry {
                source: Some(source.into()),
                detail_type: Some(detail_type.into()),
                detail: Some(detail.to_string()),
                ..Default::default()
            }])
            .await
            .expect("put_events");
        results.remove(0)
    }

    async fn executions(&self, sm: &str) -> Vec<ExecutionInfo> {
        self.h
            .engine
            .list_executions(
                ExecutionFilter {
                    state_machine_arn: sm.into(),
                    status: None,
                },
                PageRequest::default(),
            )
            .await
            .expect("list")
            .items
    }
}

fn target(id: &str, arn: &str) -> Target {
    Target {
        id: id.into(),
        arn: arn.into(),
        ..Default::default()
    }
}

/// A closure function that forwards every event it gets to a channel.
fn recorder(h: &Harness, name: &str) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    h.engine.register_function(name, move |input: Value| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(input);
            Ok(json!({}))
        }
    });
    rx
}

#[tokio::test]
async fn a_matching_event_starts_the_workflow_with_the_transformed_input() {
    let b = BusHarness::new().await;
    let sm =
        b.h.machine(
            "scan",
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        )
        .await;
    let mut t = target("sfn", &sm);
    t.input_transformer = Some(InputTransformerSpec {
        input_paths_map: vec![
            ("repo".into(), "$.detail.repository".into()),
            ("action".into(), "$.detail.action".into()),
        ],
        input_template: r#"{"repository": <repo>, "what": "PR <action>"}"#.into(),
    });
    b.rule(
        "prs",
        json!({"source": ["github"], "detail-type": ["pull_request"], "detail": {"action": ["opened", "synchronize"]}}),
        vec![t],
    )
    .await;

    let accepted = b
        .put(
            "github",
            "pull_request",
            json!({"action": "opened", "repository": {"name": "demo"}}),
        )
        .await;
    assert!(accepted.event_id.is_some(), "{accepted:?}");
    // Not matching: another action, another source.
    b.put("github", "pull_request", json!({"action": "closed"}))
        .await;
    b.put("gitlab", "pull_request", json!({"action": "opened"}))
        .await;
    b.bus.settled().await.unwrap();

    let runs = b.executions(&sm).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let done =
        b.h.engine
            .await_execution(&runs[0].execution_arn)
            .await
            .unwrap();
    assert_eq!(
        output(&done),
        json!({"repository": {"name": "demo"}, "what": "PR opened"})
    );
    assert_eq!(b.bus.pending_deliveries().unwrap(), 0);
}

#[tokio::test]
async fn without_input_settings_the_target_gets_the_whole_event() {
    let b = BusHarness::new().await;
    let mut rx = recorder(&b.h, "sink");
    b.rule(
        "all",
        json!({"source": ["shop"]}),
        vec![target("f", &format!("{LAMBDA}sink"))],
    )
    .await;
    let id = b
        .put("shop", "order", json!({"n": 1}))
        .await
        .event_id
        .unwrap();
    let event = rx.recv().await.unwrap();
    assert_eq!(event["id"], json!(id));
    assert_eq!(event["version"], json!("0"));
    assert_eq!(event["source"], json!("shop"));
    assert_eq!(event["detail-type"], json!("order"));
    assert_eq!(event["account"], json!("123456789012"));
    assert_eq!(event["region"], json!("us-east-1"));
    assert_eq!(event["resources"], json!([]));
    assert_eq!(event["detail"], json!({"n": 1}));
    assert_eq!(event["time"], json!("2026-01-01T00:00:00Z"));
}

#[tokio::test]
async fn input_and_input_path_replace_the_event() {
    let b = BusHarness::new().await;
    let mut rx = recorder(&b.h, "sink");
    let mut constant = target("c", &format!("{LAMBDA}sink"));
    constant.input = Some(r#"{"fixed": true}"#.into());
    let mut path = target("p", &format!("{LAMBDA}sink"));
    path.input_path = Some("$.detail.order".into());
    b.rule("r", json!({"source": ["shop"]}), vec![constant, path])
        .await;
    b.put("shop", "order", json!({"order": {"id": 7}})).await;
    let mut got = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    got.sort_by_key(|v| v.to_string());
    assert_eq!(got, [json!({"fixed": true}), json!({"id": 7})]);
}

#[tokio::test]
async fn disabled_rules_and_other_buses_do_not_see_the_event() {
    let b = BusHarness::new().await;
    let mut rx = recorder(&b.h, "sink");
    let sink = format!("{LAMBDA}sink");
    b.bus.create_event_bus("orders", None).await.unwrap();
    b.bus
        .put_rule(PutRule {
            name: "on-orders".into(),
            event_bus_name: Some("orders".into()),
            event_pattern: Some(json!({"source": ["shop"]}).to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    b.bus
        .put_targets(Some("orders"), "on-orders", vec![target("f", &sink)])
        .await
        .unwrap();
    b.rule("off", json!({"source": ["shop"]}), vec![target("f", &sink)])
        .await;
    b.bus.disable_rule(None, "off").await.unwrap();

    // On the default bus: the only rule there is disabled.
    b.put("shop", "a", json!({})).await;
    b.bus.settled().await.unwrap();
    assert!(rx.try_recv().is_err());
    // On the custom bus (by ARN).
    let results = b
        .bus
        .put_events(vec![PutEventsEntry {
            source: Some("shop".into()),
            detail_type: Some("b".into()),
            detail: Some("{}".into()),
            event_bus_name: Some(b.bus.bus_arn("orders")),
            ..Default::default()
        }])
        .await
        .unwrap();
    assert!(results[0].event_id.is_some());
    assert_eq!(rx.recv().await.unwrap()["detail-type"], json!("b"));
    assert_eq!(
        b.bus.describe_rule(None, "off").unwrap().state,
        RuleState::Disabled
    );
    b.bus.enable_rule(None, "off").await.unwrap();
    b.put("shop", "c", json!({})).await;
    assert_eq!(rx.recv().await.unwrap()["detail-type"], json!("c"));
}

#[tokio::test]
async fn put_events_reports_each_bad_entry_and_keeps_the_good_ones() {
    let b = BusHarness::new().await;
    let entry = |source: Option<&str>, detail: Option<&str>, bus: Option<&str>| PutEventsEntry {
        source: source.map(Into::into),
        detail_type: Some("t".into()),
        detail: detail.map(Into::into),
        event_bus_name: bus.map(Into::into),
        ..Default::default()
    };
    let results = b
        .bus
        .put_events(vec![
            entry(Some("ok"), Some("{}"), None),
            entry(None, Some("{}"), None),
            entry(Some("ok"), Some("[1, 2]"), None),
            entry(Some("ok"), None, None),
            entry(Some("ok"), Some("{}"), Some("nope")),
        ])
        .await
        .unwrap();
    let codes: Vec<Option<&str>> = results.iter().map(|r| r.error_code.as_deref()).collect();
    assert_eq!(
        codes,
        [
            None,
            Some("InvalidArgument"),
            Some("MalformedDetail"),
            Some("InvalidArgument"),
            Some("ResourceNotFoundException")
        ]
    );
    assert!(results[0].event_id.is_some());
    assert_eq!(
        results[1].error_message.as_deref(),
        Some("Parameter Source is not valid. Reason: Source is a required argument.")
    );
    let eleven = (0..11)
        .map(|_| entry(Some("ok"), Some("{}"), None))
        .collect();
    assert!(matches!(
        b.bus.put_events(eleven).await,
        Err(Error::ValidationException(_))
    ));
    let big = "x".repeat(MAX_ENTRIES_BYTES);
    let huge = vec![entry(
        Some("ok"),
        Some(&format!("{{\"a\":\"{big}\"}}")),
        None,
    )];
    assert!(matches!(
        b.bus.put_events(huge).await,
        Err(Error::DataLimitExceeded(_))
    ));
}

#[tokio::test]
async fn rules_and_targets_are_validated_like_aws() {
    let b = BusHarness::new().await;
    let bad_pattern = b
        .bus
        .put_rule(PutRule {
            name: "r".into(),
            event_pattern: Some("[1]".into()),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(bad_pattern, Err(Error::InvalidEventPattern(_))),
        "{bad_pattern:?}"
    );
    let neither = b
        .bus
        .put_rule(PutRule {
            name: "r".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(neither, Err(Error::ValidationException(_))));
    b.bus.create_event_bus("custom", None).await.unwrap();
    let schedule_on_custom = b
        .bus
        .put_rule(PutRule {
            name: "r".into(),
            event_bus_name: Some("custom".into()),
            schedule_expression: Some("rate(5 minutes)".into()),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(&schedule_on_custom, Err(Error::ValidationException(m)) if m.contains("default event bus")),
        "{schedule_on_custom:?}"
    );
    let bad_schedule = b
        .bus
        .put_rule(PutRule {
            name: "r".into(),
            schedule_expression: Some("rate(1 minutes)".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(bad_schedule, Err(Error::ValidationException(_))));
    assert!(matches!(
        b.bus.describe_rule(None, "missing"),
        Err(Error::ResourceNotFound(_))
    ));

    b.rule(
        "r",
        json!({"source": ["a"]}),
        vec![target("t1", &format!("{LAMBDA}f"))],
    )
    .await;
    let mut two_inputs = target("t2", &format!("{LAMBDA}f"));
    two_inputs.input = Some("{}".into());
    two_inputs.input_path = Some("$.detail".into());
    let failed = b
        .bus
        .put_targets(
            None,
            "r",
            vec![two_inputs, target("bad id!", "arn:aws:lambda:x")],
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(b.bus.list_targets_by_rule(None, "r").unwrap().len(), 1);
    // `$name` is an ASL variable path, not an event path.
    let mut variable_path = target("t3", &format!("{LAMBDA}f"));
    variable_path.input_path = Some("$detail".into());
    let failed = b
        .bus
        .put_targets(None, "r", vec![variable_path])
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(b.bus.list_targets_by_rule(None, "r").unwrap().len(), 1);
    let six: Vec<Target> = (0..5)
        .map(|i| target(&format!("x{i}"), &format!("{LAMBDA}f")))
        .collect();
    assert!(matches!(
        b.bus.put_targets(None, "r", six).await,
        Err(Error::LimitExceeded(_))
    ));
    // A rule with targets is deleted only with force.
    assert!(matches!(
        b.bus.delete_rule(None, "r", false).await,
        Err(Error::ValidationException(_))
    ));
    b.bus.delete_rule(None, "r", true).await.unwrap();
    assert!(
        b.bus
            .list_rules(None, None, PageRequest::default())
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_scheduled_rule_fires_on_the_clock_and_rearms() {
    let b = BusHarness::new().await;
    let mut rx = recorder(&b.h, "tick");
    let arn = b
        .bus
        .put_rule(PutRule {
            name: "every5".into(),
            schedule_expression: Some("rate(5 minutes)".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    b.bus
        .put_targets(None, "every5", vec![target("f", &format!("{LAMBDA}tick"))])
        .await
        .unwrap();
    let start = b.h.clock.now_ms();
    assert_eq!(
        b.bus.describe_rule(None, "every5").unwrap().next_fire_ms,
        Some(start + 300_000)
    );
    b.h.clock.advance(Duration::from_secs(299));
    b.bus.settled().await.unwrap();
    assert!(rx.try_recv().is_err(), "fired early");
    b.h.clock.advance(Duration::from_secs(1));
    let event = rx.recv().await.unwrap();
    assert_eq!(event["source"], json!("aws.events"));
    assert_eq!(event["detail-type"], json!("Scheduled Event"));
    assert_eq!(event["resources"], json!([arn]));
    assert_eq!(event["time"], json!("2026-01-01T00:05:00Z"));
    assert_eq!(
        b.bus.describe_rule(None, "every5").unwrap().next_fire_ms,
        Some(start + 600_000)
    );
    b.h.clock.advance(Duration::from_secs(300));
    assert_eq!(
        rx.recv().await.unwrap()["time"],
        json!("2026-01-01T00:10:00Z")
    );
    // Disabled, it stays quiet.
    b.bus.disable_rule(None, "every5").await.unwrap();
    b.h.clock.advance(Duration::from_secs(600));
    b.bus.settled().await.unwrap();
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_schedule_survives_a_restart() {
    let b = BusHarness::new().await;
    b.bus
        .put_rule(PutRule {
            name: "daily".into(),
            schedule_expression: Some("cron(0 12 * * ? *)".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    b.bus
        .put_targets(None, "daily", vec![target("f", &format!("{LAMBDA}tick"))])
        .await
        .unwrap();
    let b = b.restart().await;
    let mut rx = recorder(&b.h, "tick");
    b.h.clock.advance(Duration::from_secs(12 * 3600));
    assert_eq!(
        rx.recv().await.unwrap()["time"],
        json!("2026-01-01T12:00:00Z")
    );
}

#[tokio::test]
async fn a_failing_target_is_retried_with_back_off_then_dead_lettered_and_redriven() {
    let b = BusHarness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let calls = calls.clone();
        let healthy = healthy.clone();
        b.h.engine.register_function("flaky", move |_input: Value| {
            let calls = calls.clone();
            let healthy = healthy.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if healthy.load(Ordering::SeqCst) {
                    Ok(json!({}))
                } else {
                    Err(TaskError::new(
                        "Lambda.TooManyRequestsException",
                        "Rate exceeded",
                    ))
                }
            }
        });
    }
    let mut t = target("f", &format!("{LAMBDA}flaky"));
    t.retry_policy = Some(RetryPolicy {
        maximum_retry_attempts: 2,
        maximum_event_age_seconds: 3600,
    });
    b.rule("r", json!({"source": ["s"]}), vec![t]).await;
    b.put("s", "t", json!({"k": 1})).await;
    b.bus.settled().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(b.bus.pending_deliveries().unwrap(), 1);
    // The first retry waits between half and all of 1 s, the second up to 2 s.
    b.h.clock.advance(Duration::from_millis(1000));
    b.bus.settled().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    b.h.clock.advance(Duration::from_millis(2000));
    b.bus.settled().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(b.bus.pending_deliveries().unwrap(), 0);
    let dead = b
        .bus
        .list_dead_letters(PageRequest::default())
        .unwrap()
        .items;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].error_code, "RETRY_ATTEMPTS_EXHAUSTED");
    assert!(dead[0].error_message.contains("Rate exceeded"), "{dead:?}");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].event["detail"], json!({"k": 1}));

    healthy.store(true, Ordering::SeqCst);
    b.bus.redrive_dead_letter(&dead[0].id).await.unwrap();
    b.bus.settled().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(
        b.bus
            .list_dead_letters(PageRequest::default())
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_permanent_failure_goes_straight_to_the_dead_letters() {
    let b = BusHarness::new().await;
    let missing = "arn:aws:states:us-east-1:123456789012:stateMachine:missing";
    b.rule("r", json!({"source": ["s"]}), vec![target("sfn", missing)])
        .await;
    b.put("s", "t", json!({})).await;
    b.bus.settled().await.unwrap();
    let dead = b
        .bus
        .list_dead_letters(PageRequest::default())
        .unwrap()
        .items;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].target_arn, missing);
    assert!(dead[0].error_message.contains("missing"), "{dead:?}");
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart_and_are_delivered_once() {
    let b = BusHarness::new().await;
    let sm =
        b.h.machine(
            "later",
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        )
        .await;
    let down = Arc::new(AtomicU32::new(0));
    {
        let down = down.clone();
        b.h.engine.register_function("down", move |_input: Value| {
            let down = down.clone();
            async move {
                down.fetch_add(1, Ordering::SeqCst);
                Err(TaskError::new("Lambda.ServiceException", "unavailable"))
            }
        });
    }
    b.rule(
        "r",
        json!({"source": ["s"]}),
        vec![target("sfn", &sm), target("fn", &format!("{LAMBDA}down"))],
    )
    .await;
    for i in 0..5 {
        b.put("s", "t", json!({"i": i})).await;
    }
    b.bus.settled().await.unwrap();
    assert_eq!(down.load(Ordering::SeqCst), 5);
    assert_eq!(
        b.bus.pending_deliveries().unwrap(),
        5,
        "the function's retries wait"
    );
    assert_eq!(b.executions(&sm).await.len(), 5);

    let b = b.restart().await;
    let mut rx = recorder(&b.h, "down");
    b.h.clock.advance(Duration::from_secs(2));
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(rx.recv().await.unwrap()["detail"]["i"].as_i64().unwrap());
    }
    got.sort();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    b.bus.settled().await.unwrap();
    assert_eq!(b.bus.pending_deliveries().unwrap(), 0);
    assert_eq!(
        b.executions(&sm).await.len(),
        5,
        "no execution started twice"
    );
}

#[tokio::test]
async fn an_archive_keeps_events_and_a_replay_sends_them_back_with_its_name() {
    let b = BusHarness::new().await;
    let default_bus = b.bus.bus_arn("default");
    let archive = b
        .bus
        .create_archive(CreateArchive {
            name: "everything".into(),
            event_source_arn: default_bus.clone(),
            event_pattern: Some(json!({"source": ["shop"]}).to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    let start = b.h.clock.now_ms();
    for i in 0..3 {
        b.put("shop", "order", json!({"i": i})).await;
        b.h.clock.advance(Duration::from_secs(1));
    }
    b.put("other", "ignored", json!({})).await;
    let info = b.bus.describe_archive("everything").unwrap();
    assert_eq!(info.event_count, 3);
    assert!(info.size_bytes > 0);

    // A rule created after the events were published sees them only through the replay.
    let mut rx = recorder(&b.h, "sink");
    let rule_arn = b
        .rule(
            "late",
            json!({"source": ["shop"]}),
            vec![target("f", &format!("{LAMBDA}sink"))],
        )
        .await;
    let replay = b
        .bus
        .start_replay(StartReplay {
            name: "again".into(),
            event_source_arn: archive.arn.clone(),
            event_start_ms: start,
            event_end_ms: start + 2_500,
            destination_arn: default_bus.clone(),
            filter_arns: vec![rule_arn],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(replay.state, ReplayState::Starting);
    let done = b.bus.await_replay("again").await.unwrap();
    assert_eq!(done.state, ReplayState::Completed);
    assert_eq!(done.events_replayed, 3);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = rx.recv().await.unwrap();
        assert_eq!(e["replay-name"], json!("again"));
        seen.push(e["detail"]["i"].as_i64().unwrap());
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2]);
    // Replayed events are not archived again.
    assert_eq!(b.bus.describe_archive("everything").unwrap().event_count, 3);
    assert!(matches!(
        b.bus.cancel_replay("again").await,
        Err(Error::IllegalStatus(_))
    ));
}

#[tokio::test]
async fn a_bus_target_forwards_the_event_to_another_bus() {
    let b = BusHarness::new().await;
    let mut rx = recorder(&b.h, "sink");
    b.bus.create_event_bus("audit", None).await.unwrap();
    b.bus
        .put_rule(PutRule {
            name: "collect".into(),
            event_bus_name: Some("audit".into()),
            event_pattern: Some(json!({"source": ["shop"]}).to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    b.bus
        .put_targets(
            Some("audit"),
            "collect",
            vec![target("f", &format!("{LAMBDA}sink"))],
        )
        .await
        .unwrap();
    b.rule(
        "fwd",
        json!({"source": ["shop"]}),
        vec![target("bus", &b.bus.bus_arn("audit"))],
    )
    .await;
    let id = b
        .put("shop", "order", json!({"n": 2}))
        .await
        .event_id
        .unwrap();
    let e = rx.recv().await.unwrap();
    assert_eq!(e["id"], json!(id));
    assert_eq!(e["detail"], json!({"n": 2}));
}

#[tokio::test]
async fn buses_list_and_delete_with_their_rules() {
    let b = BusHarness::new().await;
    b.bus
        .create_event_bus("a", Some("first".into()))
        .await
        .unwrap();
    b.bus.create_event_bus("b", None).await.unwrap();
    assert!(matches!(
        b.bus.create_event_bus("a", None).await,
        Err(Error::ResourceAlreadyExists(_))
    ));
    let names = |p: Page<EventBusInfo>| p.items.into_iter().map(|b| b.name).collect::<Vec<_>>();
    assert_eq!(
        names(
            b.bus
                .list_event_buses(None, PageRequest::default())
                .unwrap()
        ),
        ["a", "b", "default"]
    );
    let first = b
        .bus
        .list_event_buses(
            None,
            PageRequest {
                max_results: 2,
                next_token: None,
            },
        )
        .unwrap();
    assert_eq!(first.next_token.as_deref(), Some("b"));
    let rest = b
        .bus
        .list_event_buses(
            None,
            PageRequest {
                max_results: 2,
                next_token: first.next_token,
            },
        )
        .unwrap();
    assert_eq!(names(rest), ["default"]);
    b.bus
        .put_rule(PutRule {
            name: "r".into(),
            event_bus_name: Some("a".into()),
            event_pattern: Some(r#"{"source": ["x"]}"#.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    b.bus.delete_event_bus("a").await.unwrap();
    assert!(matches!(
        b.bus.list_rules(Some("a"), None, PageRequest::default()),
        Err(Error::ResourceNotFound(_))
    ));
    assert!(matches!(
        b.bus.delete_event_bus("default").await,
        Err(Error::ValidationException(_))
    ));
    let b = b.restart().await;
    assert_eq!(
        names(
            b.bus
                .list_event_buses(None, PageRequest::default())
                .unwrap()
        ),
        ["b", "default"]
    );
    assert_eq!(
        b.bus.describe_event_bus("b").unwrap().arn,
        "arn:aws:events:us-east-1:123456789012:event-bus/b"
    );
}

#[tokio::test]
async fn test_event_pattern_checks_the_event_shape() {
    let b = BusHarness::new().await;
    let event = json!({"id": "1", "account": "1", "source": "a", "time": "2026-01-01T00:00:00Z",
                       "region": "us-east-1", "detail-type": "t", "detail": {}})
    .to_string();
    assert!(
        b.bus
            .test_event_pattern(r#"{"source": ["a"]}"#, &event)
            .unwrap()
    );
    assert!(
        !b.bus
            .test_event_pattern(r#"{"source": ["b"]}"#, &event)
            .unwrap()
    );
    assert!(matches!(
        b.bus
            .test_event_pattern(r#"{"source": ["a"]}"#, r#"{"source": "a"}"#),
        Err(Error::ValidationException(_))
    ));
    assert!(matches!(
        b.bus.test_event_pattern("nope", &event),
        Err(Error::InvalidEventPattern(_))
    ));
}

#[tokio::test]
async fn a_put_events_task_state_publishes_to_the_bus() {
    let b = BusHarness::new().await;
    b.h.engine
        .register_worker("arn:aws:states:::events:putEvents", Arc::new(b.bus.clone()));
    let mut rx = recorder(&b.h, "sink");
    b.rule(
        "r",
        json!({"source": ["workflow"]}),
        vec![target("f", &format!("{LAMBDA}sink"))],
    )
    .await;
    let sm =
        b.h.machine(
            "emit",
            json!({"StartAt": "E", "States": {"E": {"Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"Source": "workflow", "DetailType": "done",
                                            "Detail": {"result.$": "$.result"}}]},
                "End": true}}}),
        )
        .await;
    let info = b.h.run(&sm, json!({"result": 42})).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info)["FailedEntryCount"], json!(0));
    assert_eq!(rx.recv().await.unwrap()["detail"], json!({"result": 42}));
}

#[tokio::test]
async fn buses_and_rules_keep_their_tags_through_updates_and_restarts() {
    let t = BusHarness::new().await;
    let tags = |pairs: &[(&str, &str)]| -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let orders = t
        .bus
        .create_event_bus_with_tags("orders", None, tags(&[("team", "shop")]))
        .await
        .unwrap()
        .arn;
    let put = |name: &str, bus: &str, with: Tags| PutRule {
        name: name.into(),
        event_bus_name: Some(bus.into()),
        event_pattern: Some(json!({"source": ["shop"]}).to_string()),
        tags: with,
        ..Default::default()
    };
    let on_orders = t
        .bus
        .put_rule(put("paid", "orders", tags(&[("stage", "dev")])))
        .await
        .unwrap();
    let on_default = t
        .bus
        .put_rule(put("any", "default", Tags::new()))
        .await
        .unwrap();
    // PutRule on an existing rule leaves its tags alone, as EventBridge does.
    t.bus
        .put_rule(put("paid", "orders", tags(&[("stage", "ignored")])))
        .await
        .unwrap();
    t.bus
        .tag_resource(&on_default, tags(&[("owner", "ops")]))
        .await
        .unwrap();
    t.bus
        .tag_resource(&orders, tags(&[("cost", "7")]))
        .await
        .unwrap();
    t.bus
        .untag_resource(&orders, &["team".to_string()])
        .await
        .unwrap();
    let default_bus = t.bus.bus_arn("default");
    t.bus
        .tag_resource(&default_bus, tags(&[("env", "test")]))
        .await
        .unwrap();

    let t = t.restart().await;
    assert_eq!(
        t.bus.list_tags_for_resource(&orders).unwrap(),
        tags(&[("cost", "7")])
    );
    assert_eq!(
        t.bus.list_tags_for_resource(&on_orders).unwrap(),
        tags(&[("stage", "dev")])
    );
    assert_eq!(
        t.bus.list_tags_for_resource(&on_default).unwrap(),
        tags(&[("owner", "ops")])
    );
    assert_eq!(
        t.bus.list_tags_for_resource(&default_bus).unwrap(),
        tags(&[("env", "test")])
    );
    // Tagging rewrote the rule's record and kept the rest of it.
    assert_eq!(
        t.bus
            .describe_rule(Some("orders"), "paid")
            .unwrap()
            .event_pattern,
        Some(json!({"source": ["shop"]}).to_string())
    );

    let missing = t.bus.rule_arn("orders", "missing");
    assert!(matches!(
        t.bus.list_tags_for_resource(&missing),
        Err(Error::ResourceNotFound(_))
    ));
    assert!(matches!(
        t.bus
            .tag_resource(
                "arn:aws:events:us-east-1:123456789012:archive/a",
                Tags::new()
            )
            .await,
        Err(Error::ValidationException(_))
    ));
    let many: Tags = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
    assert!(matches!(
        t.bus.tag_resource(&orders, many).await,
        Err(Error::LimitExceeded(_))
    ));
}
