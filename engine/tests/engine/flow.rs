//! Parallel and Map: concurrency, history, failure handling.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use stepyard_engine::*;
use tokio::sync::Notify;

use crate::common::*;

const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

#[tokio::test]
async fn parallel_branches_run_and_join_in_order() {
    let h = Harness::new().await;
    h.engine.register_function("inc", |v: Value| async move {
        Ok(json!(v.as_i64().unwrap_or(0) + 1))
    });
    let sm = h
        .machine(
            "par",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": format!("{LAMBDA}inc"), "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "b", "End": true}}}
            ]}}}),
        )
        .await;
    let info = h.run(&sm, json!(41)).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!([42, "b"]));
    let types = h.types(&info.execution_arn).await;
    assert_eq!(
        &types[..3],
        [
            "ExecutionStarted",
            "ParallelStateEntered",
            "ParallelStateStarted"
        ]
    );
    assert_eq!(
        &types[types.len() - 3..],
        [
            "ParallelStateSucceeded",
            "ParallelStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[tokio::test]
async fn parallel_branch_failure_aborts_siblings_and_is_caught() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "parfail",
            json!({"StartAt": "P", "States": {
                "P": {"Type": "Parallel", "Next": "Done",
                      "Catch": [{"ErrorEquals": ["Bad"], "Next": "Caught"}],
                      "Branches": [
                        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "End": true}}},
                        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "x"}}}
                ]},
                "Done": {"Type": "Succeed"},
                "Caught": {"Type": "Pass", "Result": "caught", "End": true}
            }}),
        )
        .await;
    let info = h.run(&sm, json!({})).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&info), json!("caught"));
    let types = h.types(&info.execution_arn).await;
    assert!(types.contains(&"WaitStateAborted".to_string()), "{types:?}");
    assert!(types.contains(&"ParallelStateFailed".to_string()));
}

#[tokio::test]
async fn map_honours_max_concurrency_and_keeps_order() {
    let h = Harness::new().await;
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let gate = Arc::new(Notify::new());
    let (r, p, g) = (running.clone(), peak.clone(), gate.clone());
    h.engine.register_function("sq", move |v: Value| {
        let (r, p, g) = (r.clone(), p.clone(), g.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            g.notify_one();
            tokio::task::yield_now().await;
            r.fetch_sub(1, Ordering::SeqCst);
            let n = v.as_i64().unwrap_or(0);
            Ok(json!(n * n))
        }
    });
    let sm = h
        .machine(
            "map",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 2, "End": true,
                "ItemProcessor": {"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": format!("{LAMBDA}sq"), "End": true}}}}}}),
        )
        .await;
    let info = h.run(&sm, json!([1, 2, 3, 4, 5])).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!([1, 4, 9, 16, 25]));
    assert!(peak.load(Ordering::SeqCst) <= 2);
    let events = h.history(&info.execution_arn).await;
    let started: Vec<&HistoryEvent> = events
        .iter()
        .filter(|e| e.kind == HistoryEventType::MapIterationStarted)
        .collect();
    assert_eq!(started.len(), 5);
    assert_eq!(
        started[0].to_aws_json()["mapIterationStartedEventDetails"],
        json!({"name": "M", "index": 0})
    );
    let map_started = events
        .iter()
        .find(|e| e.kind == HistoryEventType::MapStateStarted)
        .unwrap();
    assert_eq!(map_started.details, json!({"length": 5}));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == HistoryEventType::MapIterationSucceeded)
            .count(),
        5
    );
}

#[tokio::test]
async fn map_tolerated_failures_then_threshold_exceeded() {
    let h = Harness::new().await;
    let def = |tolerated: u64| {
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ToleratedFailureCount": tolerated, "End": true,
            "ItemProcessor": {"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "F"}], "Default": "OK"},
                "F": {"Type": "Fail", "Error": "Zero"},
                "OK": {"Type": "Pass", "End": true}}}}}})
    };
    let lenient = h.machine("lenient", def(1)).await;
    let info = h.run(&lenient, json!([1, 0, 2])).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info)[0], json!(1));
    assert_eq!(output(&info)[2], json!(2));
    let strict = h.machine("strict", def(0)).await;
    let info = h.run(&strict, json!([1, 0, 0])).await;
    assert_eq!(info.status, ExecutionStatus::Failed);
    assert_eq!(
        info.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    let types = h.types(&info.execution_arn).await;
    assert!(types.contains(&"MapIterationFailed".to_string()));
    assert!(types.contains(&"MapStateFailed".to_string()));
    // Without a threshold the iteration's own error fails the Map.
    let plain = h
        .machine(
            "plain",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
                "ItemProcessor": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Nope", "Cause": "c"}}}}}}),
        )
        .await;
    let info = h.run(&plain, json!([1])).await;
    assert_eq!(info.error.as_deref(), Some("Nope"));
}

#[tokio::test]
async fn start_execution_sync_runs_a_child_and_returns_its_output() {
    let h = Harness::new().await;
    let child = h.machine("child", json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "Next": "R"}, "R": {"Type": "Pass", "Parameters": {"got.$": "$.x"}, "End": true}}})).await;
    let parent = h
        .machine(
            "parent",
            json!({"StartAt": "Call", "States": {
                "Call": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                         "Parameters": {"StateMachineArn": child, "Input": {"x.$": "$.v"}},
                         "OutputPath": "$.Output", "Next": "Fire"},
                "Fire": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                         "Parameters": {"StateMachineArn": child, "Name": "fire-and-forget", "Input": {"x": 0}},
                         "ResultPath": null, "End": true}
            }}),
        )
        .await;
    let arn = h.start(&parent, json!({"v": 7})).await;
    let listed = loop {
        let page = h
            .engine
            .list_executions(
                ExecutionFilter {
                    state_machine_arn: child.clone(),
                    status: None,
                },
                PageRequest::default(),
            )
            .await
            .unwrap();
        if !page.items.is_empty() {
            break page;
        }
        tokio::task::yield_now().await;
    };
    h.wait_for(
        &listed.items[0].execution_arn,
        HistoryEventType::WaitStateEntered,
    )
    .await;
    h.clock.advance(std::time::Duration::from_secs(5));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"got": 7}));
    let fired = h
        .engine
        .describe_execution(
            &child
                .replace(":stateMachine:", ":execution:")
                .replace("child", "child:fire-and-forget"),
        )
        .await
        .unwrap();
    assert_eq!(fired.status, ExecutionStatus::Running);
}

#[tokio::test]
async fn parallel_history_numbers_events_per_branch() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "numbers",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}
            ]}}}),
        )
        .await;
    let info = h.run(&sm, json!({})).await;
    let triples: Vec<(String, u64, u64)> = h
        .history(&info.execution_arn)
        .await
        .iter()
        .map(|e| (e.kind.to_string(), e.id, e.previous_event_id))
        .collect();
    let expected = [
        ("ExecutionStarted", 1, 0),
        ("ParallelStateEntered", 2, 1),
        ("ParallelStateStarted", 3, 2),
        ("PassStateEntered", 4, 3),
        ("PassStateExited", 5, 4),
        ("PassStateEntered", 6, 3),
        ("PassStateExited", 7, 6),
        ("ParallelStateSucceeded", 8, 7),
        ("ParallelStateExited", 9, 8),
        ("ExecutionSucceeded", 10, 9),
    ];
    let expected: Vec<(String, u64, u64)> = expected
        .iter()
        .map(|(k, i, p)| (k.to_string(), *i, *p))
        .collect();
    assert_eq!(triples, expected);
}

#[tokio::test]
async fn map_tolerated_failure_percentage_and_its_path() {
    let h = Harness::new().await;
    let def = |tolerance: Value| {
        let mut m = json!({"Type": "Map", "End": true,
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "F"}], "Default": "OK"},
                "F": {"Type": "Fail", "Error": "Zero"},
                "OK": {"Type": "Pass", "End": true}}}});
        m.as_object_mut()
            .unwrap()
            .extend(tolerance.as_object().unwrap().clone());
        json!({"StartAt": "M", "States": {"M": m}})
    };
    // 1 of 4 items fails: 25 %.
    let items = json!({"items": [1, 0, 2, 3], "tolerance": 25});
    let at_25 = h
        .machine("pct25", def(json!({"ToleratedFailurePercentage": 25})))
        .await;
    let info = h.run(&at_25, items.clone()).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info)[3], json!(3));
    let at_20 = h
        .machine("pct20", def(json!({"ToleratedFailurePercentage": 20})))
        .await;
    let info = h.run(&at_20, items.clone()).await;
    assert_eq!(info.status, ExecutionStatus::Failed);
    assert_eq!(
        info.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    let by_path = h
        .machine(
            "pct-path",
            def(json!({"ToleratedFailurePercentagePath": "$.tolerance"})),
        )
        .await;
    let info = h.run(&by_path, items).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    let info = h
        .run(&by_path, json!({"items": [0, 0, 1], "tolerance": 50}))
        .await;
    assert_eq!(info.status, ExecutionStatus::Failed);
    assert_eq!(
        info.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
}
