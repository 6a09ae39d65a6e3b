//! State machines, executions, history: Pass, Choice, Succeed, Fail, Wait.

use serde_json::json;
use stepyard_engine::*;

use crate::common::*;

#[tokio::test]
async fn pass_chain_succeeds_with_aws_history() {
    let h = Harness::new().await;
    let sm = h.machine("chain", pass_chain(3)).await;
    let info = h.run(&sm, json!({"a": 1})).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&info), json!({"a": 1}));
    let events = h.history(&info.execution_arn).await;
    let types: Vec<String> = events.iter().map(|e| e.kind.to_string()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "PassStateEntered",
            "PassStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert_eq!(e.previous_event_id, i as u64);
    }
    let started = events[0].to_aws_json();
    assert_eq!(
        started["executionStartedEventDetails"]["input"],
        json!("{\"a\":1}")
    );
    assert_eq!(
        started["executionStartedEventDetails"]["stateMachineArn"],
        json!(sm)
    );
    assert_eq!(
        events[1].to_aws_json()["stateEnteredEventDetails"]["name"],
        json!("P0")
    );
}

#[tokio::test]
async fn choice_fail_and_succeed() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "choose",
            json!({"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}], "Default": "Small"},
                "Big": {"Type": "Succeed"},
                "Small": {"Type": "Fail", "Error": "TooSmall", "Cause": "n <= 10"}
            }}),
        )
        .await;
    let big = h.run(&sm, json!({"n": 11})).await;
    assert_eq!(big.status, ExecutionStatus::Succeeded);
    assert_eq!(
        h.types(&big.execution_arn).await,
        [
            "ExecutionStarted",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    let small = h.run(&sm, json!({"n": 1})).await;
    assert_eq!(small.status, ExecutionStatus::Failed);
    assert_eq!(small.error.as_deref(), Some("TooSmall"));
    assert_eq!(small.cause.as_deref(), Some("n <= 10"));
    assert_eq!(
        h.types(&small.execution_arn)
            .await
            .last()
            .map(String::as_str),
        Some("ExecutionFailed")
    );
}

#[tokio::test]
async fn wait_is_a_durable_timer_driven_by_the_clock() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "wait",
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}}),
        )
        .await;
    let arn = h.start(&sm, json!({"x": 1})).await;
    let info = h.engine.describe_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Running);
    h.clock.advance(std::time::Duration::from_secs(59));
    let info = h.engine.describe_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Running);
    h.clock.advance(std::time::Duration::from_secs(1));
    let done = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&done), json!({"x": 1}));
    assert_eq!(
        h.types(&arn).await,
        [
            "ExecutionStarted",
            "WaitStateEntered",
            "WaitStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[tokio::test]
async fn revisions_are_listed_newest_first_and_survive_a_restart() {
    let h = Harness::new().await;
    let sm = h.machine("revised", pass_chain(1)).await;
    let first = h.engine.describe_state_machine(&sm).await.unwrap();
    // Two updates within the same millisecond of the manual clock: still ordered.
    h.engine
        .update_state_machine(&sm, pass_chain(2).to_string())
        .await
        .unwrap();
    h.clock.advance(std::time::Duration::from_secs(5));
    let third = h
        .engine
        .update_state_machine(&sm, pass_chain(3).to_string())
        .await
        .unwrap();

    let h = h.restart().await;
    let page = h
        .engine
        .list_state_machine_revisions(&sm, PageRequest::default())
        .await
        .unwrap();
    let definitions: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|r| serde_json::from_str(&r.definition).unwrap())
        .collect();
    assert_eq!(definitions, [pass_chain(3), pass_chain(2), pass_chain(1)]);
    assert_eq!(page.items[0].revision_id, third.revision_id);
    assert!(page.items[0].current && !page.items[1].current);
    assert_eq!(
        page.items[0].creation_date_ms,
        first.creation_date_ms + 5000
    );
    assert_eq!(
        page.items[2].version_arn,
        format!("{sm}:{}", first.revision_id)
    );

    let oldest = h
        .engine
        .describe_state_machine_revision(&sm, &first.revision_id)
        .await
        .unwrap();
    assert_eq!(oldest.definition, pass_chain(1).to_string());
    assert!(matches!(
        h.engine.describe_state_machine_revision(&sm, "nope").await,
        Err(Error::StateMachineDoesNotExist(_))
    ));
}
