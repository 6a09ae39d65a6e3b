//! Execution lifecycle: idempotent start, stop, execution timeout, redrive, listing, updates,
//! express, restart.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stepyard_engine::*;

use crate::common::*;

#[tokio::test]
async fn idempotent_start_by_name() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "idem",
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "End": true}}}),
        )
        .await;
    let start = |input: &str| StartExecution {
        state_machine_arn: sm.clone(),
        name: Some("once".into()),
        input: Some(input.into()),
    };
    let a = h.engine.start_execution(start(r#"{"a":1}"#)).await.unwrap();
    let b = h.engine.start_execution(start(r#"{"a":1}"#)).await.unwrap();
    assert_eq!(a, b);
    assert!(matches!(
        h.engine.start_execution(start(r#"{"a":2}"#)).await,
        Err(Error::ExecutionAlreadyExists(_))
    ));
    h.clock.advance(Duration::from_secs(10));
    h.engine.await_execution(&a.execution_arn).await.unwrap();
    // Closed: the same name is taken for good.
    assert!(matches!(
        h.engine.start_execution(start(r#"{"a":1}"#)).await,
        Err(Error::ExecutionAlreadyExists(_))
    ));
    assert!(matches!(
        h.engine
            .start_execution(StartExecution {
                state_machine_arn: sm.clone(),
                name: None,
                input: Some("{oops".into())
            })
            .await,
        Err(Error::InvalidExecutionInput(_))
    ));
}

#[tokio::test]
async fn invalid_definitions_report_every_problem() {
    let h = Harness::new().await;
    let err = h
        .engine
        .create_state_machine(CreateStateMachine {
            name: "bad".into(),
            definition:
                json!({"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "Next": "Missing"}}})
                    .to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let Error::InvalidDefinition(problems) = err else {
        panic!("expected InvalidDefinition")
    };
    assert!(problems.len() >= 2, "{problems:?}");
}

#[tokio::test]
async fn stop_aborts_and_redrive_resumes_from_the_failed_state() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "stopme",
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"step": 1}, "Next": "W"},
                "W": {"Type": "Wait", "Seconds": 100, "Next": "Z"}, "Z": {"Type": "Pass", "End": true}}}),
        )
        .await;
    let arn = h.start(&sm, json!({})).await;
    h.engine
        .stop_execution(&arn, Some("Manual".into()), Some("operator".into()))
        .await
        .unwrap();
    let info = h.engine.describe_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Aborted);
    assert_eq!(info.error.as_deref(), Some("Manual"));
    assert_eq!(info.redrive_status, "REDRIVABLE");
    let types = h.types(&arn).await;
    assert_eq!(
        &types[types.len() - 2..],
        ["WaitStateAborted", "ExecutionAborted"]
    );
    // The stopped Wait's timer is gone: moving time does nothing.
    h.clock.advance(Duration::from_secs(200));
    h.engine.redrive_execution(&arn).await.unwrap();
    h.clock.advance(Duration::from_secs(100));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Succeeded);
    assert_eq!(info.redrive_count, 1);
    assert_eq!(output(&info), json!({"step": 1}));
    assert!(
        h.types(&arn)
            .await
            .contains(&"ExecutionRedriven".to_string())
    );
    assert!(matches!(
        h.engine.redrive_execution(&arn).await,
        Err(Error::ExecutionNotRedrivable(_))
    ));
}

#[tokio::test]
async fn execution_timeout_times_out() {
    let h = Harness::new().await;
    let sm = h
        .machine("slow", json!({"TimeoutSeconds": 30, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "End": true}}}))
        .await;
    let arn = h.start(&sm, json!({})).await;
    h.clock.advance(Duration::from_secs(30));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::TimedOut);
    assert_eq!(info.error.as_deref(), Some("States.Timeout"));
    assert_eq!(
        h.types(&arn).await.last().map(String::as_str),
        Some("ExecutionTimedOut")
    );
}

#[tokio::test]
async fn updates_make_revisions_and_running_executions_keep_theirs() {
    let h = Harness::new().await;
    let v1 = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "Next": "R"}, "R": {"Type": "Pass", "Result": "v1", "End": true}}});
    let sm = h.machine("upd", v1).await;
    let old = h.start(&sm, json!({})).await;
    let before = h.engine.describe_state_machine(&sm).await.unwrap();
    let v2 =
        json!({"StartAt": "R", "States": {"R": {"Type": "Pass", "Result": "v2", "End": true}}});
    let after = h
        .engine
        .update_state_machine(&sm, v2.to_string())
        .await
        .unwrap();
    assert_ne!(before.revision_id, after.revision_id);
    let new = h.run(&sm, json!({})).await;
    assert_eq!(output(&new), json!("v2"));
    h.clock.advance(Duration::from_secs(5));
    let old_info = h.engine.await_execution(&old).await.unwrap();
    assert_eq!(output(&old_info), json!("v1"));
    let for_exec = h
        .engine
        .describe_state_machine_for_execution(&old)
        .await
        .unwrap();
    assert_eq!(for_exec.revision_id, before.revision_id);
    let listed = h
        .engine
        .list_executions(
            ExecutionFilter {
                state_machine_arn: sm.clone(),
                status: None,
            },
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(
        listed.items[0].execution_arn, new.execution_arn,
        "newest first"
    );
    let page = h
        .engine
        .list_executions(
            ExecutionFilter {
                state_machine_arn: sm.clone(),
                status: Some(ExecutionStatus::Succeeded),
            },
            PageRequest {
                max_results: 1,
                next_token: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let page2 = h
        .engine
        .list_executions(
            ExecutionFilter {
                state_machine_arn: sm.clone(),
                status: Some(ExecutionStatus::Succeeded),
            },
            PageRequest {
                max_results: 1,
                next_token: page.next_token,
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.items[0].execution_arn, old);
    assert!(page2.next_token.is_none());
}

#[tokio::test]
async fn express_sync_runs_in_memory() {
    let h = Harness::new().await;
    h.engine.register_function("up", |v: Value| async move {
        Ok(json!(v.as_str().unwrap_or("").to_uppercase()))
    });
    let sm = h
        .machine_of(
            "fast",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:up", "Next": "W"},
                "W": {"Type": "Wait", "Seconds": 1, "End": true}}}),
            StateMachineType::Express,
        )
        .await;
    let engine = h.engine.clone();
    let sm2 = sm.clone();
    let run = tokio::spawn(async move {
        engine
            .start_sync_execution(StartExecution {
                state_machine_arn: sm2,
                name: None,
                input: Some("\"abc\"".into()),
            })
            .await
    });
    // The Wait's timer lives in memory; move time until the run ends.
    let info = loop {
        if run.is_finished() {
            break run.await.unwrap().unwrap();
        }
        h.clock.advance(Duration::from_millis(500));
        tokio::task::yield_now().await;
    };
    assert_eq!(info.status, ExecutionStatus::Succeeded);
    assert_eq!(info.output.as_deref(), Some("\"ABC\""));
    assert!(info.execution_arn.contains(":express:fast:"));
    let standard = h.machine("std", pass_chain(1)).await;
    assert!(matches!(
        h.engine
            .start_sync_execution(StartExecution {
                state_machine_arn: standard,
                ..Default::default()
            })
            .await,
        Err(Error::StateMachineTypeNotSupported(_))
    ));
}

#[tokio::test]
async fn parked_executions_survive_a_restart_and_fire_on_time() {
    let h = Harness::new().await;
    let sm = h.machine("park", json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}})).await;
    let mut arns = Vec::new();
    let engine = h.engine.clone();
    let starts = (0..10_000).map(|i| {
        let engine = engine.clone();
        let sm = sm.clone();
        async move {
            engine
                .start_execution(StartExecution {
                    state_machine_arn: sm,
                    name: Some(format!("e{i}")),
                    input: Some(format!("{{\"i\":{i}}}")),
                })
                .await
                .unwrap()
                .execution_arn
        }
    });
    arns.extend(futures::future::join_all(starts).await);
    drop(engine);
    let h = h.restart().await;
    h.clock.advance(Duration::from_secs(3599));
    assert_eq!(
        h.engine.describe_execution(&arns[0]).await.unwrap().status,
        ExecutionStatus::Running
    );
    h.clock.advance(Duration::from_secs(1));
    for (i, arn) in arns.iter().enumerate() {
        let info = h.engine.await_execution(arn).await.unwrap();
        assert_eq!(info.status, ExecutionStatus::Succeeded);
        assert_eq!(output(&info), json!({"i": i}));
    }
}

#[tokio::test]
async fn a_second_engine_on_the_same_folder_is_refused() {
    let h = Harness::new().await;
    let second = Engine::open(config(h.dir.path(), &h.clock)).await;
    assert!(
        matches!(second, Err(Error::StoreLocked { .. })),
        "{:?}",
        second.err()
    );
}

#[tokio::test]
async fn state_machines_and_activities_are_listed_paged_and_deleted() {
    let h = Harness::new().await;
    for name in ["a", "b", "c"] {
        h.machine(name, pass_chain(1)).await;
    }
    // Creating again with the same definition is idempotent; a different one is a conflict.
    h.machine("a", pass_chain(1)).await;
    let conflict = h
        .engine
        .create_state_machine(CreateStateMachine {
            name: "a".into(),
            definition: pass_chain(2).to_string(),
            ..Default::default()
        })
        .await;
    assert!(matches!(conflict, Err(Error::StateMachineAlreadyExists(_))));
    let first = h
        .engine
        .list_state_machines(PageRequest {
            max_results: 2,
            next_token: None,
        })
        .await
        .unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let second = h
        .engine
        .list_state_machines(PageRequest {
            max_results: 2,
            next_token: first.next_token,
        })
        .await
        .unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["c"]
    );
    assert!(second.next_token.is_none());
    let b = h.engine.arn_of_state_machine("b");
    h.engine.delete_state_machine(&b).await.unwrap();
    assert!(matches!(
        h.engine.describe_state_machine(&b).await,
        Err(Error::StateMachineDoesNotExist(_))
    ));
    assert!(matches!(
        h.engine
            .start_execution(StartExecution {
                state_machine_arn: b,
                ..Default::default()
            })
            .await,
        Err(Error::StateMachineDoesNotExist(_))
    ));
    let act = h.engine.create_activity("review").await.unwrap();
    assert_eq!(
        h.engine
            .list_activities(PageRequest::default())
            .await
            .unwrap()
            .items,
        vec![act.clone()]
    );
    h.engine.delete_activity(&act.arn).await.unwrap();
    assert!(matches!(
        h.engine.describe_activity(&act.arn).await,
        Err(Error::ActivityDoesNotExist(_))
    ));
    // Everything but the deleted ones survives a restart.
    let h = h.restart().await;
    let names: Vec<String> = h
        .engine
        .list_state_machines(PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert!(
        h.engine
            .list_activities(PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn express_async_start_returns_at_once() {
    let h = Harness::new().await;
    let sm = h
        .machine_of("fire", pass_chain(3), StateMachineType::Express)
        .await;
    let started = h
        .engine
        .start_execution(StartExecution {
            state_machine_arn: sm,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(started.execution_arn.contains(":express:fire:"));
}

#[tokio::test]
async fn redrive_of_a_failed_execution_reruns_only_the_failed_task() {
    let h = Harness::new().await;
    let first_calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let fails = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    {
        let first_calls = first_calls.clone();
        h.engine.register_function("first", move |_input: Value| {
            let first_calls = first_calls.clone();
            async move {
                first_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(json!({"first": "done"}))
            }
        });
        let fails = fails.clone();
        h.engine.register_function("second", move |input: Value| {
            let fails = fails.clone();
            async move {
                if fails.load(std::sync::atomic::Ordering::SeqCst) {
                    Err(TaskError::new("Broken", "the dependency is down"))
                } else {
                    Ok(json!({"got": input}))
                }
            }
        });
    }
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:";
    let sm = h
        .machine(
            "redrive-failed",
            json!({"StartAt": "First", "States": {
                "First": {"Type": "Task", "Resource": format!("{lambda}first"), "Next": "Second"},
                "Second": {"Type": "Task", "Resource": format!("{lambda}second"), "End": true}}}),
        )
        .await;
    let info = h.run(&sm, json!({})).await;
    assert_eq!(info.status, ExecutionStatus::Failed);
    assert_eq!(info.error.as_deref(), Some("Broken"));
    assert_eq!(info.redrive_status, "REDRIVABLE");

    fails.store(false, std::sync::atomic::Ordering::SeqCst);
    let info = h.redrive(&info.execution_arn).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"got": {"first": "done"}}));
    // The state that succeeded before the failure is not run again.
    assert_eq!(first_calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(info.redrive_count, 1);
}

#[tokio::test]
async fn redrive_of_a_timed_out_execution_goes_on_from_where_it_was() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "redrive-timeout",
            json!({"TimeoutSeconds": 30, "StartAt": "P", "States": {
                "P": {"Type": "Pass", "Result": {"kept": true}, "Next": "W1"},
                "W1": {"Type": "Wait", "Seconds": 20, "Next": "W2"},
                "W2": {"Type": "Wait", "Seconds": 20, "End": true}}}),
        )
        .await;
    let arn = h.start(&sm, json!({})).await;
    h.clock.advance(Duration::from_secs(20));
    h.wait_for(&arn, HistoryEventType::WaitStateEntered).await;
    h.clock.advance(Duration::from_secs(10));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::TimedOut);
    // The redriven run starts again at W2, the state that was cut short, with a fresh timeout.
    h.engine.redrive_execution(&arn).await.unwrap();
    h.clock.advance(Duration::from_secs(20));
    let info = h.engine.await_execution(&arn).await.unwrap();
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(output(&info), json!({"kept": true}));
}

#[tokio::test]
async fn an_input_over_256_kib_is_refused_and_nothing_starts() {
    let h = Harness::new().await;
    let sm = h
        .machine(
            "big-input",
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        )
        .await;
    let big = json!({"blob": "x".repeat(256 * 1024)}).to_string();
    let refused = h
        .engine
        .start_execution(StartExecution {
            state_machine_arn: sm.clone(),
            name: Some("too-big".into()),
            input: Some(big),
        })
        .await;
    assert!(
        matches!(
            &refused,
            Err(Error::DataLimitExceeded(_)) | Err(Error::InvalidExecutionInput(_))
        ),
        "{refused:?}"
    );
    let listed = h
        .engine
        .list_executions(
            ExecutionFilter {
                state_machine_arn: sm,
                status: None,
            },
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn redrive_of_a_failed_map_or_parallel_reruns_only_what_did_not_succeed() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let h = Harness::new().await;
    let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    {
        let (calls, broken) = (calls.clone(), broken.clone());
        h.engine.register_function("item", move |input: Value| {
            let (calls, broken) = (calls.clone(), broken.clone());
            async move {
                let key = input.to_string();
                *calls.lock().unwrap().entry(key.clone()).or_default() += 1;
                if key.contains("bad") && broken.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(TaskError::new("Broken", key));
                }
                Ok(json!({"done": input}))
            }
        });
    }
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:item";
    let sm = h
        .machine(
            "redrive-partial",
            json!({"StartAt": "Each", "States": {
                "Each": {"Type": "Map", "MaxConcurrency": 1, "Next": "Both",
                         "ItemProcessor": {"StartAt": "Work", "States": {
                             "Work": {"Type": "Task", "Resource": lambda, "End": true}}}},
                "Both": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "L", "States": {"L": {"Type": "Task", "Resource": lambda, "Parameters": {"side": "left"}, "End": true}}},
                    {"StartAt": "R", "States": {"R": {"Type": "Task", "Resource": lambda, "Parameters": {"side": "bad-right"}, "End": true}}}]}
            }}),
        )
        .await;
    let count = |k: &str| calls.lock().unwrap().get(k).copied().unwrap_or(0);

    // The Map: the second item fails, the third never starts.
    let info = h.run(&sm, json!(["a", "bad-b", "c"])).await;
    assert_eq!(info.status, ExecutionStatus::Failed, "{info:?}");
    assert_eq!(
        (count("\"a\""), count("\"bad-b\""), count("\"c\"")),
        (1, 1, 0)
    );
    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let info = h.redrive(&info.execution_arn).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    // "a" succeeded before the redrive: not run again; its output is kept in place.
    assert_eq!(
        (count("\"a\""), count("\"bad-b\""), count("\"c\"")),
        (1, 2, 1)
    );
    assert_eq!(
        output(&info),
        json!([{"done": {"side": "left"}}, {"done": {"side": "bad-right"}}])
    );
    let events = h.history(&info.execution_arn).await;
    let started: Vec<u64> = events
        .iter()
        .filter(|e| e.kind == HistoryEventType::MapIterationStarted)
        .map(|e| {
            e.to_aws_json()["mapIterationStartedEventDetails"]["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        started,
        [0, 1, 1, 2],
        "after the redrive only items 1 and 2 start"
    );

    // The Parallel: the right branch fails; the redrive reruns it alone.
    broken.store(true, std::sync::atomic::Ordering::SeqCst);
    let info = h.run(&sm, json!([])).await;
    assert_eq!(info.status, ExecutionStatus::Failed, "{info:?}");
    let left = count("{\"side\":\"left\"}");
    let right = count("{\"side\":\"bad-right\"}");
    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let info = h.redrive(&info.execution_arn).await;
    assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
    assert_eq!(
        count("{\"side\":\"left\"}"),
        left,
        "the left branch is not run again"
    );
    assert_eq!(count("{\"side\":\"bad-right\"}"), right + 1);
    assert_eq!(
        output(&info),
        json!([{"done": {"side": "left"}}, {"done": {"side": "bad-right"}}])
    );
}

#[tokio::test]
async fn redrive_after_an_end_pass_over_the_size_limit_enters_it_with_its_input_again() {
    // The Pass itself succeeds; the execution fails after it (its output is over the payload
    // limit). A redrive must enter the Pass with the input it had, not with what it produced.
    let h = Harness::new().await;
    let sm = h
        .machine(
            "redrive-end-pass",
            json!({"StartAt": "Copy", "States": {
                "Copy": {"Type": "Pass", "Parameters": {"x.$": "$.a"}, "ResultPath": "$.copy", "End": true}}}),
        )
        .await;
    let big = "a".repeat(150 * 1024);
    let info = h.run(&sm, json!({ "a": big })).await;
    assert_eq!(info.status, ExecutionStatus::Failed);
    assert_eq!(info.error.as_deref(), Some("States.DataLimitExceeded"));

    let info = h.redrive(&info.execution_arn).await;
    assert_eq!(info.status, ExecutionStatus::Failed, "{info:?}");
    assert_eq!(
        info.error.as_deref(),
        Some("States.DataLimitExceeded"),
        "{info:?}"
    );
    assert_eq!(info.redrive_count, 1);
}

fn tag_map(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn tags_are_kept_through_updates_and_restarts() {
    let h = Harness::new().await;
    let sm = h
        .engine
        .create_state_machine(CreateStateMachine {
            name: "tagged".into(),
            definition: pass_chain(1).to_string(),
            tags: tag_map(&[("team", "platform"), ("tier", "gold")]),
            ..Default::default()
        })
        .await
        .unwrap()
        .arn;
    let activity = h
        .engine
        .create_activity_with_tags("approve", tag_map(&[("owner", "ops")]))
        .await
        .unwrap()
        .arn;
    // A repeated create is idempotent and leaves the tags as they were, as AWS does.
    h.engine
        .create_activity_with_tags("approve", tag_map(&[("owner", "someone else")]))
        .await
        .unwrap();

    h.engine
        .tag_resource(&sm, tag_map(&[("tier", "silver"), ("cost", "42")]))
        .await
        .unwrap();
    h.engine
        .untag_resource(&sm, &["team".to_string(), "never-there".to_string()])
        .await
        .unwrap();
    // A new definition (a new revision) keeps the tags.
    h.engine
        .update_state_machine(&sm, pass_chain(2).to_string())
        .await
        .unwrap();

    let h = h.restart().await;
    assert_eq!(
        h.engine.list_tags_for_resource(&sm).await.unwrap(),
        tag_map(&[("cost", "42"), ("tier", "silver")])
    );
    assert_eq!(
        h.engine.list_tags_for_resource(&activity).await.unwrap(),
        tag_map(&[("owner", "ops")])
    );
    // A version suffix names the same state machine, as in the other state machine calls.
    assert_eq!(
        h.engine
            .list_tags_for_resource(&format!("{sm}:1"))
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn tag_mistakes_are_refused_and_change_nothing() {
    let h = Harness::new().await;
    let sm = h.machine("t", pass_chain(1)).await;
    let fifty: Tags = (0..50)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    h.engine.tag_resource(&sm, fifty.clone()).await.unwrap();

    let err = h
        .engine
        .tag_resource(&sm, tag_map(&[("one-more", "v")]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LimitExceeded(_)), "{err:?}");
    let err = h
        .engine
        .tag_resource(&sm, tag_map(&[("k0", "semi;colon")]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ValidationException(_)), "{err:?}");
    assert_eq!(h.engine.list_tags_for_resource(&sm).await.unwrap(), fifty);

    let too_many = h
        .engine
        .create_state_machine(CreateStateMachine {
            name: "over".into(),
            definition: pass_chain(1).to_string(),
            tags: (0..51).map(|i| (format!("k{i}"), String::new())).collect(),
            ..Default::default()
        })
        .await;
    assert!(matches!(too_many, Err(Error::LimitExceeded(_))));
    assert!(matches!(
        h.engine
            .describe_state_machine(&h.engine.arn_of_state_machine("over"))
            .await,
        Err(Error::StateMachineDoesNotExist(_))
    ));

    let missing = h.engine.arn_of_state_machine("missing");
    assert!(matches!(
        h.engine.list_tags_for_resource(&missing).await,
        Err(Error::ResourceNotFound(_))
    ));
    assert!(matches!(
        h.engine
            .tag_resource(&h.engine.arn_of_activity("missing"), Tags::new())
            .await,
        Err(Error::ResourceNotFound(_))
    ));
    assert!(matches!(
        h.engine.list_tags_for_resource("not-an-arn").await,
        Err(Error::InvalidArn(_))
    ));
}
