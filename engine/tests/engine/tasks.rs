//! Task states: closure workers, Lambda ARNs, retries with back-off, catches, timeouts,
//! heartbeats, `.waitForTaskToken` callbacks and activities.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stepyard_engine::*;
use tokio::sync::mpsc;

use crate::common::*;

const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

#[tokio::test]
async fn lambda_arn_and_invoke_reach_the_registered_function() {
    let h = Harness::new().await;
    h.engine
        .register_function("double", |input: Value| async move {
            Ok(json!({"n": input["n"].as_i64().unwrap_or(0) * 2}))
        });
    let sm = h
        .machine(
            "lambda",
            json!({"StartAt": "A", "States": {
                "A": {"Type": "Task", "Resource": format!("{LAMBDA}double"), "Next": "B"},
                "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": "double", "Payload.$": "$"},
                      "ResultSelector": {"n.$": "$.Payload.n"}, "End": true}
            }}),
        )
        .await;
    let info = h.run(&sm, json!({"n": 5})).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"n": 20}));
    assert_eq!(
        h.types(&info.execution_arn).await,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let events = h.history(&info.execution_arn).await;
    let scheduled = events
        .iter()
        .find(|e| e.kind == HistoryEventType::TaskScheduled)
        .unwrap()
        .to_aws_json();
    assert_eq!(
        scheduled["taskScheduledEventDetails"]["resourceType"],
        json!("lambda")
    );
    assert_eq!(
        scheduled["taskScheduledEventDetails"]["resource"],
        json!("invoke")
    );
    assert_eq!(
        scheduled["taskScheduledEventDetails"]["region"],
        json!("us-east-1")
    );
}

#[tokio::test]
async fn unknown_function_fails_with_lambda_error() {
    let h = Harness::new().await;
    let sm = h
        .machine("missing", json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": format!("{LAMBDA}nope"), "End": true}}}))
        .await;
    let info = h.run(&sm, json!({})).await;
    assert_eq!(info.status, ExecutionStatus::Failed);
    assert_eq!(
        info.error.as_deref(),
        Some("Lambda.ResourceNotFoundException")
    );
    assert!(info.cause.as_deref().unwrap_or("").contains("nope"));
}

#[tokio::test]
async fn retries_back_off_on_the_clock_then_catch_routes_the_error() {
    let h = Harness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    h.engine.register_function("flaky", move |_input: Value| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Err(TaskError::new("Boom", "always"))
        }
    });
    let sm = h
        .machine(
            "retry",
            json!({"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": format!("{LAMBDA}flaky"),
                      "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled", "ResultPath": "$.err"}],
                      "End": true},
                "Handled": {"Type": "Pass", "End": true}
            }}),
        )
        .await;
    let arn = h.start(&sm, json!({"k": 1})).await;
    h.wait_for(&arn, HistoryEventType::LambdaFunctionFailed)
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // First back-off: 2 s.
    h.clock.advance(Duration::from_millis(1999));
    assert_eq!(
        h.engine.describe_execution(&arn).await.unwrap().status,
        ExecutionStatus::Running
    );
    h.clock.advance(Duration::from_millis(1));
    // Second back-off: 6 s.
    wait_calls(&h, &arn, 2).await;
    h.clock.advance(Duration::from_secs(6));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(info.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&info),
        json!({"k": 1, "err": {"Error": "Boom", "Cause": "always"}})
    );
}

/// Waits until the history shows `n` failures of the task.
async fn wait_calls(h: &Harness, arn: &str, n: usize) {
    loop {
        let failed = h
            .history(arn)
            .await
            .iter()
            .filter(|e| e.kind == HistoryEventType::LambdaFunctionFailed)
            .count();
        if failed >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn task_timeout_fails_with_states_timeout() {
    let h = Harness::new().await;
    h.engine
        .register_function("slow", |_input: Value| async move {
            std::future::pending::<()>().await;
            Ok(json!(null))
        });
    let sm = h
        .machine("timeout", json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": format!("{LAMBDA}slow"), "TimeoutSeconds": 5, "End": true}}}))
        .await;
    let arn = h.start(&sm, json!({})).await;
    h.clock.advance(Duration::from_secs(5));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Failed);
    assert_eq!(info.error.as_deref(), Some("States.Timeout"));
    assert!(
        h.types(&arn)
            .await
            .contains(&"LambdaFunctionTimedOut".to_string())
    );
}

#[tokio::test]
async fn wait_for_task_token_callback_with_heartbeats() {
    let h = Harness::new().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    h.engine.register_worker(
        "arn:aws:states:::sqs:sendMessage",
        Arc::new(FnWorkerWithToken { tx }),
    );
    let sm = h
        .machine(
            "callback",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"MessageBody": {"token.$": "$$.Task.Token"}},
                "HeartbeatSeconds": 10, "End": true}}}),
        )
        .await;
    // Success after heartbeats.
    let arn = h.start(&sm, json!({})).await;
    let token = rx.recv().await.unwrap();
    h.wait_for(&arn, HistoryEventType::TaskSubmitted).await;
    h.clock.advance(Duration::from_secs(9));
    h.engine.send_task_heartbeat(&token).await.unwrap();
    h.clock.advance(Duration::from_secs(9));
    h.engine
        .send_task_success(&token, r#"{"ok":true}"#)
        .await
        .unwrap();
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"ok": true}));
    assert!(matches!(
        h.engine.send_task_success(&token, "{}").await,
        Err(Error::TaskDoesNotExist)
    ));
    // Heartbeat timeout.
    let arn = h.start(&sm, json!({})).await;
    let _token = rx.recv().await.unwrap();
    h.wait_for(&arn, HistoryEventType::TaskSubmitted).await;
    h.clock.advance(Duration::from_secs(10));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.error.as_deref(), Some("States.HeartbeatTimeout"));
    // Failure.
    let arn = h.start(&sm, json!({})).await;
    let token = rx.recv().await.unwrap();
    h.engine
        .send_task_failure(&token, Some("Rejected".into()), Some("no".into()))
        .await
        .unwrap();
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(
        (info.error.as_deref(), info.cause.as_deref()),
        (Some("Rejected"), Some("no"))
    );
}

struct FnWorkerWithToken {
    tx: mpsc::UnboundedSender<String>,
}

#[async_trait::async_trait]
impl TaskWorker for FnWorkerWithToken {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let token = request.task_token.clone().unwrap_or_default();
        assert_eq!(request.input["MessageBody"]["token"], json!(token));
        let _ = self.tx.send(token);
        Ok(json!({"MessageId": "m-1"}))
    }
}

#[tokio::test]
async fn activities_are_polled_by_external_workers() {
    let h = Harness::new().await;
    let activity = h.engine.create_activity("approve").await.unwrap();
    let sm = h
        .machine("act", json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": activity.arn, "End": true}}}))
        .await;
    let none = h
        .engine
        .get_activity_task(&activity.arn, None, Duration::ZERO)
        .await
        .unwrap();
    assert!(none.is_none());
    let arn = h.start(&sm, json!({"doc": 7})).await;
    let task = h
        .engine
        .get_activity_task(&activity.arn, Some("w1".into()), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&task.input).unwrap(),
        json!({"doc": 7})
    );
    h.engine
        .send_task_success(&task.task_token, r#"{"approved":true}"#)
        .await
        .unwrap();
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(output(&info), json!({"approved": true}));
    assert_eq!(
        h.types(&arn).await,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivitySucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let started = h.history(&arn).await[3].to_aws_json();
    assert_eq!(
        started["activityStartedEventDetails"]["workerName"],
        json!("w1")
    );
}

/// Records each invocation's id and attempt; answers only when told to.
struct Recorder {
    seen: mpsc::UnboundedSender<(String, u32)>,
    answer: bool,
}

#[async_trait::async_trait]
impl TaskWorker for Recorder {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let _ = self
            .seen
            .send((request.invocation_id.clone(), request.attempt));
        if self.answer {
            Ok(json!({"ran": request.state_name}))
        } else {
            std::future::pending().await
        }
    }
}

#[tokio::test]
async fn a_task_in_flight_at_shutdown_is_dispatched_again_with_the_same_invocation_id() {
    let h = Harness::new().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    h.engine.register_function_worker(
        "slow",
        Arc::new(Recorder {
            seen: tx,
            answer: false,
        }),
    );
    let sm = h
        .machine(
            "redispatch",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": format!("{LAMBDA}slow"), "End": true}}}),
        )
        .await;
    let arn = h.start(&sm, json!({})).await;
    let (first_id, first_attempt) = rx.recv().await.expect("dispatched");

    // The engine stops while the worker still works; the next life serves the task again.
    let dir = h.dir;
    h.engine.shutdown().await.expect("shutdown");
    let mut config = config(dir.path(), &h.clock);
    config.start_paused = true;
    let engine = Engine::open(config).await.expect("reopens");
    let (tx, mut rx) = mpsc::unbounded_channel();
    engine.register_function_worker(
        "slow",
        Arc::new(Recorder {
            seen: tx,
            answer: true,
        }),
    );
    engine.start().expect("resumes");
    let (second_id, second_attempt) = rx.recv().await.expect("dispatched again");
    assert_eq!(
        second_id, first_id,
        "the re-dispatch carries the same invocation id"
    );
    assert_eq!(second_attempt, first_attempt);
    let info = engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"ran": "T"}));
    // One schedule in the history: the second dispatch is the same task, not a new one.
    let page = engine
        .get_execution_history(
            &arn,
            PageRequest {
                max_results: 1000,
                next_token: None,
            },
            false,
        )
        .await
        .unwrap();
    let scheduled = page
        .items
        .iter()
        .filter(|e| e.kind == HistoryEventType::LambdaFunctionScheduled)
        .count();
    assert_eq!(scheduled, 1);
}
