//! Workflow variables and JSONata states run by the engine: variables are committed with
//! the transition that assigns them (they survive a restart and a redrive), the history
//! shows them, and Parallel branches and Map iterations get scopes of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stepyard_engine::*;

use crate::common::*;

const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

#[tokio::test]
async fn variables_survive_a_restart_and_appear_in_the_history() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "vars-restart",
            json!({"QueryLanguage": "JSONata", "StartAt": "Remember", "States": {
                "Remember": {"Type": "Pass", "Assign": {"who": "{% $states.input.who %}", "n": 2}, "Output": {}, "Next": "Sleep"},
                "Sleep": {"Type": "Wait", "Seconds": 60, "Next": "Use"},
                "Use": {"Type": "Pass", "Output": {"greeting": "{% 'hello ' & $who %}", "twice": "{% $n * 2 %}"}, "End": true}
            }}),
        )
        .await;
    let arn = h.start(&sm, json!({"who": "ada"})).await;
    h.wait_for(&arn, HistoryEventType::WaitStateEntered).await;
    let h = h.restart().await;
    h.clock.advance(Duration::from_secs(60));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"greeting": "hello ada", "twice": 4}));

    let events = h.history(&arn).await;
    let exited = events
        .iter()
        .find(|e| e.kind == HistoryEventType::PassStateExited)
        .unwrap()
        .to_aws_json();
    let details = &exited["stateExitedEventDetails"];
    assert_eq!(details["name"], "Remember");
    assert_eq!(
        details["assignedVariables"],
        json!({"who": "\"ada\"", "n": "2"})
    );
    assert_eq!(
        details["assignedVariablesDetails"],
        json!({"truncated": false})
    );
    // A state that assigns nothing says nothing about variables.
    let last = events
        .iter()
        .rfind(|e| e.kind == HistoryEventType::PassStateExited)
        .unwrap()
        .to_aws_json();
    assert!(
        last["stateExitedEventDetails"]
            .get("assignedVariables")
            .is_none()
    );
}

#[tokio::test]
async fn branches_and_iterations_read_outer_variables_and_keep_their_own() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "vars-scopes",
            json!({"StartAt": "Setup", "States": {
                "Setup": {"Type": "Pass", "Assign": {"factor": 10, "label": "x"}, "Next": "Fan"},
                "Fan": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                        "ItemProcessor": {"StartAt": "Mine", "States": {
                            "Mine": {"Type": "Pass", "Assign": {"mine.$": "$"}, "Next": "Use"},
                            "Use": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $mine * $factor %}", "End": true}}},
                        "ResultPath": "$.mapped", "Next": "Both"},
                "Both": {"Type": "Parallel", "ResultPath": "$.branches", "Branches": [
                    {"StartAt": "L", "States": {"L": {"Type": "Pass", "Parameters": {"label.$": "$label"}, "End": true}}},
                    {"StartAt": "R", "States": {"R": {"Type": "Pass", "Assign": {"inner": true}, "Result": "r", "End": true}}}],
                 "Next": "After"},
                "After": {"Type": "Pass", "QueryLanguage": "JSONata",
                          "Output": {"mapped": "{% $states.input.mapped %}", "branches": "{% $states.input.branches %}",
                                     "innerVisible": "{% $exists($inner) %}", "mineVisible": "{% $exists($mine) %}"},
                          "End": true}
            }}),
        )
        .await;
    let info = h.run(&sm, json!({"items": [1, 2, 3]})).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(
        output(&info),
        json!({"mapped": [10, 20, 30], "branches": [{"label": "x"}, "r"], "innerVisible": false, "mineVisible": false})
    );
}

#[tokio::test]
async fn a_redriven_execution_keeps_its_variables() {
    let h = Harness::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    {
        let broken = broken.clone();
        h.engine.register_function("flaky", move |input: Value| {
            let broken = broken.clone();
            async move {
                if broken.load(Ordering::SeqCst) {
                    Err(TaskError::new("Broken", "down"))
                } else {
                    Ok(json!({"echo": input}))
                }
            }
        });
    }
    let sm = h
        .machine(
            "vars-redrive",
            json!({"QueryLanguage": "JSONata", "StartAt": "Keep", "States": {
                "Keep": {"Type": "Pass", "Assign": {"token": "{% $states.input.t %}"}, "Next": "Call"},
                "Call": {"Type": "Task", "Resource": format!("{LAMBDA}flaky"),
                         "Arguments": {"token": "{% $token %}"},
                         "Output": {"sent": "{% $states.result.echo.token %}", "kept": "{% $token %}"}, "End": true}
            }}),
        )
        .await;
    let info = h.run(&sm, json!({"t": "abc"})).await;
    assert_eq!(info.status, ExecutionStatus::Failed);
    broken.store(false, Ordering::SeqCst);
    let info = h.redrive(&info.execution_arn).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"sent": "abc", "kept": "abc"}));
}

#[tokio::test]
async fn jsonata_catch_assigns_and_query_errors_fail_with_their_name() {
    let h = Harness::new().await;
    h.engine
        .register_function("boom", |_input: Value| async move {
            Err(TaskError::new("Custom.Boom", "it broke"))
        });
    let sm = h
        .machine(
            "vars-catch",
            json!({"QueryLanguage": "JSONata", "StartAt": "Call", "States": {
                "Call": {"Type": "Task", "Resource": format!("{LAMBDA}boom"), "End": true,
                         "Catch": [{"ErrorEquals": ["Custom.Boom"], "Next": "Report",
                                    "Assign": {"why": "{% $states.errorOutput.Cause %}"},
                                    "Output": {"error": "{% $states.errorOutput.Error %}"}}]},
                "Report": {"Type": "Pass", "Output": "{% $states.input.error & ': ' & $why %}", "Next": "Bad"},
                "Bad": {"Type": "Pass", "Output": "{% $states.input + 1 %}", "End": true}
            }}),
        )
        .await;
    let info = h.run(&sm, json!({})).await;
    assert_eq!(info.status, ExecutionStatus::Failed, "{info:?}");
    assert_eq!(info.error.as_deref(), Some("States.QueryEvaluationError"));
    let cause = info.cause.unwrap_or_default();
    assert!(
        cause.contains("'Bad'") && cause.contains("$states.input + 1"),
        "{cause}"
    );
    let events = h.history(&info.execution_arn).await;
    let evaluation = events
        .iter()
        .find(|e| e.kind == HistoryEventType::EvaluationFailed)
        .expect("an EvaluationFailed event")
        .to_aws_json();
    assert_eq!(
        evaluation["evaluationFailedEventDetails"]["state"],
        json!("Bad")
    );
    assert_eq!(
        evaluation["evaluationFailedEventDetails"]["location"],
        json!("Output")
    );
    assert_eq!(
        evaluation["evaluationFailedEventDetails"]["error"],
        json!("States.QueryEvaluationError")
    );
    let report = events
        .iter()
        .filter(|e| e.kind == HistoryEventType::PassStateExited)
        .map(|e| e.to_aws_json())
        .find(|e| e["stateExitedEventDetails"]["name"] == "Report")
        .expect("Report exited");
    assert_eq!(
        report["stateExitedEventDetails"]["output"],
        json!("\"Custom.Boom: it broke\"")
    );
}

#[tokio::test]
async fn an_execution_cannot_hold_more_than_10_mib_of_variables() {
    let h = Harness::new().await;
    // 45 states of 240 KB each: each is under the 256 KiB a state may assign, together
    // they pass 10 MiB.
    let mut states = serde_json::Map::new();
    for i in 0..45 {
        let next = if i == 44 {
            json!({"End": true})
        } else {
            json!({"Next": format!("S{}", i + 1)})
        };
        let mut s =
            json!({"Type": "Pass", "Assign": {format!("v{i}"): "{% $pad('', 240000, 'x') %}"}});
        s.as_object_mut()
            .unwrap()
            .extend(next.as_object().unwrap().clone());
        states.insert(format!("S{i}"), s);
    }
    let sm = h
        .machine(
            "vars-limit",
            json!({"QueryLanguage": "JSONata", "StartAt": "S0", "States": states}),
        )
        .await;
    let info = h.run(&sm, json!({"marker": 1})).await;
    assert_eq!(info.status, ExecutionStatus::Failed, "{info:?}");
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));
    assert!(info.cause.unwrap_or_default().contains("10 MiB"));
    // A redrive starts again at the state whose assignment failed, with that state's input
    // and the variables from before it: it fails the same way, not on a lost input.
    let failed_at = |events: &[HistoryEvent]| {
        events
            .iter()
            .rev()
            .find(|e| e.kind == HistoryEventType::PassStateEntered)
            .map(|e| (e.details["name"].clone(), e.details["input"].clone()))
    };
    let first = failed_at(&h.history(&info.execution_arn).await);
    assert_eq!(first, Some((json!("S43"), json!(r#"{"marker":1}"#))));
    let info = h.redrive(&info.execution_arn).await;
    assert_eq!(info.status, ExecutionStatus::Failed, "{info:?}");
    assert_eq!(info.error.as_deref(), Some("States.Runtime"));
    let history = h.history(&info.execution_arn).await;
    let redriven = history
        .iter()
        .position(|e| e.kind == HistoryEventType::ExecutionRedriven)
        .expect("redriven");
    assert_eq!(failed_at(&history[redriven..]), first);
    let cause = info.cause.unwrap_or_default();
    assert!(cause.contains("10 MiB"), "{cause}");
}
