//! Crash test: a child process (this test binary, re-executed with a filter and an env var) runs
//! hundreds of executions with Wait, Task, Map and Parallel states; the parent SIGKILLs it after a
//! random amount of progress, reopens, repeats; then checks that every accepted execution ended
//! with the right output, that no state ran twice for one attempt, and that nothing was lost.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use stepyard_engine::*;

const CHILD_ENV: &str = "STEPYARD_CRASH_CHILD_DIR";
const EXECUTIONS: usize = 300;
const KILLS: usize = 5;

fn definition() -> Value {
    json!({"StartAt": "Fan", "States": {
        "Fan": {"Type": "Parallel", "Next": "Shape", "Branches": [
            {"StartAt": "Nap", "States": {
                "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Double"},
                "Double": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work",
                           "Parameters": {"n.$": "$.n"}, "End": true}}},
            {"StartAt": "Each", "States": {
                "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "End": true,
                         "ItemProcessor": {"StartAt": "Item", "States": {
                            "Item": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                     "Parameters": {"FunctionName": "work", "Payload": {"n.$": "$"}},
                                     "OutputPath": "$.Payload", "End": true}}}}}}
        ]},
        "Shape": {"Type": "Pass", "Parameters": {"a.$": "$[0]", "b.$": "$[1]"}, "End": true}
    }})
}

fn input(i: usize) -> Value {
    json!({"n": i, "items": [i, i + 1, i + 2]})
}

fn expected(i: usize) -> Value {
    let i = i as i64;
    json!({"a": i * 2, "b": [i * 2, (i + 1) * 2, (i + 2) * 2]})
}

/// The execution named by an "accepted NAME" line. The test harness prints the test's
/// name without a newline before the child's first line, so that line may carry it in
/// front (and "all-done" likewise).
fn accepted_name(line: &str) -> Option<&str> {
    line.find("accepted ")
        .map(|i| &line[i + "accepted ".len()..])
}

/// The child's body: runs only when the parent sets the env var.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Paused until the function is registered: a Wait that ended while the child was dead fires
    // at once after open, and its Task must find the function.
    let engine = Engine::open(EngineConfig {
        start_paused: true,
        ..EngineConfig::new(dir)
    })
    .await
    .expect("child opens");
    engine.register_function("work", |v: Value| async move {
        println!("invoke");
        tokio::task::yield_now().await;
        Ok(json!(v["n"].as_i64().unwrap_or(0) * 2))
    });
    engine.start().expect("child resumes");
    let sm = engine
        .create_state_machine(CreateStateMachine {
            name: "crash".into(),
            definition: definition().to_string(),
            ..Default::default()
        })
        .await
        .expect("state machine");
    let engine = Arc::new(engine);
    let starts = (0..EXECUTIONS).map(|i| {
        let engine = engine.clone();
        let sm = sm.arn.clone();
        async move {
            let req = StartExecution {
                state_machine_arn: sm,
                name: Some(format!("x{i}")),
                input: Some(input(i).to_string()),
            };
            match engine.start_execution(req).await {
                Ok(started) => {
                    println!("accepted x{i}");
                    Some(started.execution_arn)
                }
                Err(Error::ExecutionAlreadyExists(arn)) => Some(arn),
                Err(e) => panic!("start failed: {e}"),
            }
        }
    });
    let arns: Vec<String> = futures::future::join_all(starts)
        .await
        .into_iter()
        .flatten()
        .collect();
    for arn in &arns {
        engine.await_execution(arn).await.expect("ends");
    }
    println!("all-done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let mut accepted = BTreeSet::new();
    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for round in 0..=KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("stdout");
        // xorshift: a random amount of progress before the kill.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = if round < KILLS {
            // A first run prints about 1,470 lines (a start and four calls per execution):
            // kills land anywhere in it, not only early.
            20 + (seed % 1200) as usize
        } else {
            usize::MAX
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = 0usize;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines += 1;
                let done = line.ends_with("all-done");
                if tx.send(line).is_err() || done {
                    break;
                }
            }
            lines
        });
        let mut seen = 0;
        let mut finished = false;
        while let Ok(line) = rx.recv() {
            seen += 1;
            if let Some(name) = accepted_name(&line) {
                accepted.insert(name.to_string());
            }
            if line.ends_with("all-done") {
                finished = true;
                break;
            }
            if seen >= kill_after {
                break;
            }
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("child ends");
        // Lines written before the kill may still be in the pipe: an accepted start counts.
        for line in rx.try_iter() {
            if let Some(name) = accepted_name(&line) {
                accepted.insert(name.to_string());
            }
        }
        let _ = reader.join();
        eprintln!(
            "round {round}: kill_after={kill_after} seen={seen} accepted={} finished={finished}",
            accepted.len()
        );
        if round == KILLS {
            assert!(
                finished,
                "the last run completes every execution (exit: {status:?})"
            );
        }
    }
    assert!(!accepted.is_empty());

    let mut config = EngineConfig::new(dir.path());
    config.clock = Arc::new(SystemClock);
    config.start_paused = true;
    let engine = Engine::open(config).await.expect("parent opens");
    // The parent is the next life of the same server: the same function serves any task
    // whose answer had not reached the disk when the last child was killed.
    engine.register_function("work", |v: Value| async move {
        Ok(json!(v["n"].as_i64().unwrap_or(0) * 2))
    });
    engine.start().expect("parent resumes");
    let sm = engine.arn_of_state_machine("crash");
    let listed = engine
        .list_executions(
            ExecutionFilter {
                state_machine_arn: sm,
                status: None,
            },
            PageRequest {
                max_results: 1000,
                next_token: None,
            },
        )
        .await
        .expect("list");
    assert_eq!(
        listed.items.len(),
        EXECUTIONS,
        "every execution exists exactly once"
    );
    for info in listed.items {
        // The last child printed "all-done" only after await_execution returned for every
        // execution, which waits until the end is on disk: killed right after, nothing is
        // left to resume.
        let i: usize = info.name.trim_start_matches('x').parse().expect("name");
        assert_eq!(info.status, ExecutionStatus::Succeeded, "{info:?}");
        let out: Value =
            serde_json::from_str(info.output.as_deref().unwrap_or("null")).expect("json");
        assert_eq!(out, expected(i), "{}", info.name);
        accepted.remove(&info.name);
        check_history(&engine, &info.execution_arn).await;
    }
    assert!(accepted.is_empty(), "accepted but lost: {accepted:?}");
    engine.shutdown().await.expect("shutdown");
}

async fn check_history(engine: &Engine, arn: &str) {
    let events = engine
        .get_execution_history(
            arn,
            PageRequest {
                max_results: 1000,
                next_token: None,
            },
            false,
        )
        .await
        .expect("history")
        .items;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1, "ids are contiguous in {arn}");
        assert!(e.previous_event_id < e.id);
    }
    let count = |kind: HistoryEventType| events.iter().filter(|e| e.kind == kind).count();
    // One Task state in the branch, one per Map item: each entered once, scheduled once.
    assert_eq!(count(HistoryEventType::TaskStateEntered), 4, "{arn}");
    assert_eq!(
        count(HistoryEventType::LambdaFunctionScheduled) + count(HistoryEventType::TaskScheduled),
        4,
        "{arn}"
    );
    assert_eq!(count(HistoryEventType::WaitStateEntered), 1, "{arn}");
    assert_eq!(count(HistoryEventType::MapIterationStarted), 3, "{arn}");
    assert_eq!(count(HistoryEventType::ExecutionStarted), 1);
    assert_eq!(count(HistoryEventType::ExecutionSucceeded), 1);
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(HistoryEventType::ExecutionSucceeded)
    );
}
