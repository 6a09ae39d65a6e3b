//! Engine benchmarks. Run one scenario at a time, in release mode:
//!
//! ```text
//! cargo run --release -p stepyard-engine --example bench -- standard [executions] [clients]
//! cargo run --release -p stepyard-engine --example bench -- express  [executions] [clients]
//! cargo run --release -p stepyard-engine --example bench -- parked   [executions] [probes]
//! cargo run --release -p stepyard-engine --example bench -- recovery [executions]
//! ```
//!
//! Each prints one JSON line of results. Data goes to a fresh temp folder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepyard_engine::*;

fn pass_chain(n: usize) -> String {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass"});
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("P{}", i + 1));
        }
        states.insert(format!("P{i}"), s);
    }
    json!({"StartAt": "P0", "States": states}).to_string()
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            total += if meta.is_dir() {
                dir_size(&e.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

async fn machine(
    engine: &Engine,
    name: &str,
    definition: String,
    kind: StateMachineType,
) -> String {
    engine
        .create_state_machine(CreateStateMachine {
            name: name.into(),
            definition,
            kind,
            role_arn: None,
            tags: Default::default(),
        })
        .await
        .expect("valid")
        .arn
}

/// Many clients start durable 10-Pass executions; each start returns once the whole execution
/// is committed (a Pass chain runs to its end in the start transition).
async fn standard(executions: usize, clients: usize) -> Value {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = Engine::open(EngineConfig::new(dir.path()))
        .await
        .expect("open");
    let sm = machine(&engine, "chain", pass_chain(10), StateMachineType::Standard).await;
    let started = Instant::now();
    let per_client = executions / clients;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let engine = engine.clone();
            let sm = sm.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let s = engine
                        .start_execution(StartExecution {
                            state_machine_arn: sm.clone(),
                            name: None,
                            input: Some("{\"a\":1}".into()),
                        })
                        .await
                        .expect("start");
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    std::hint::black_box(s);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Spot-check that they really finished.
    let sample = engine
        .list_executions(
            ExecutionFilter {
                state_machine_arn: sm.clone(),
                status: None,
            },
            PageRequest {
                max_results: 10,
                next_token: None,
            },
        )
        .await
        .expect("list");
    assert!(
        sample
            .items
            .iter()
            .all(|i| i.status == ExecutionStatus::Succeeded)
    );
    latencies.sort_by(|a, b| a.total_cmp(b));
    let disk = dir_size(dir.path());
    engine.shutdown().await.expect("shutdown");
    json!({
        "scenario": "standard 10-Pass, durable",
        "executions": latencies.len(), "clients": clients,
        "executions_per_s": (latencies.len() as f64 / elapsed).round(),
        "state_transitions_per_s": (latencies.len() as f64 * 11.0 / elapsed).round(),
        "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
        "disk_bytes_per_execution": disk / latencies.len().max(1) as u64,
    })
}

async fn express(executions: usize, clients: usize) -> Value {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = Engine::open(EngineConfig::new(dir.path()))
        .await
        .expect("open");
    let sm = machine(&engine, "fast", pass_chain(10), StateMachineType::Express).await;
    let started = Instant::now();
    let per_client = executions / clients;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let engine = engine.clone();
            let sm = sm.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let info = engine
                        .start_sync_execution(StartExecution {
                            state_machine_arn: sm.clone(),
                            name: None,
                            input: Some("{\"a\":1}".into()),
                        })
                        .await
                        .expect("run");
                    debug_assert_eq!(info.status, ExecutionStatus::Succeeded);
                    latencies.push(t.elapsed().as_secs_f64() * 1_000_000.0);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    engine.shutdown().await.expect("shutdown");
    json!({
        "scenario": "express sync 10-Pass",
        "executions": latencies.len(), "clients": clients,
        "executions_per_s": (latencies.len() as f64 / elapsed).round(),
        "p50_us": percentile(&latencies, 0.5), "p99_us": percentile(&latencies, 0.99),
    })
}

/// A child process parks `executions` in a one-hour Wait and is killed; this process (which has
/// opened no engine before) reopens the folder and measures resident memory and disk per parked
/// execution, then starts `probes` executions with a short Wait, spread over time, and measures how
/// late their timers fire while the parked ones sit in the same timer index.
async fn parked(executions: usize, probes: usize) -> Value {
    if let Ok(dir) = std::env::var("STEPYARD_BENCH_CHILD") {
        let engine = Engine::open(EngineConfig::new(&dir)).await.expect("open");
        let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}).to_string();
        let sm = machine(&engine, "park", def, StateMachineType::Standard).await;
        let started = Instant::now();
        start_many(&engine, &sm, executions, "p").await;
        println!("{}", executions as f64 / started.elapsed().as_secs_f64());
        std::future::pending::<()>().await;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let park_rate = run_child_until_line("parked", executions, dir.path());
    let rss_before = rss_bytes();
    let engine = Engine::open(EngineConfig::new(dir.path()))
        .await
        .expect("reopen");
    let rss_open = rss_bytes();
    let disk = dir_size(dir.path());
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 2, "End": true}}})
        .to_string();
    let probe_sm = machine(&engine, "probe", def, StateMachineType::Standard).await;
    let mut arns = Vec::with_capacity(probes);
    for _ in 0..probes {
        let s = engine
            .start_execution(StartExecution {
                state_machine_arn: probe_sm.clone(),
                name: None,
                input: None,
            })
            .await
            .expect("probe");
        arns.push(s.execution_arn);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut lateness = Vec::with_capacity(probes);
    for arn in &arns {
        let info = engine.await_execution(arn).await.expect("probe ends");
        let due = info.start_date_ms + 2000;
        lateness.push(info.stop_date_ms.unwrap_or(due).saturating_sub(due) as f64);
    }
    lateness.sort_by(|a, b| a.total_cmp(b));
    let rss_after = rss_bytes();
    engine.shutdown().await.expect("shutdown");
    json!({
        "scenario": "parked in a 1-hour Wait; probe timers fire meanwhile",
        "parked": executions,
        "park_rate_per_s": park_rate.round(),
        "disk_bytes_per_parked_execution": disk / executions.max(1) as u64,
        "rss_bytes_process_before_open": rss_before,
        "rss_bytes_after_open": rss_open,
        "rss_bytes_after_probes": rss_after,
        "probes": probes,
        "probe_lateness_ms": {"p50": percentile(&lateness, 0.5), "p99": percentile(&lateness, 0.99), "max": percentile(&lateness, 1.0)},
    })
}

async fn start_many(engine: &Engine, sm: &str, executions: usize, prefix: &'static str) {
    let clients = 256;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let engine = engine.clone();
            let sm = sm.to_string();
            tokio::spawn(async move {
                let mut i = c;
                while i < executions {
                    engine
                        .start_execution(StartExecution {
                            state_machine_arn: sm.clone(),
                            name: Some(format!("{prefix}{i}")),
                            input: None,
                        })
                        .await
                        .expect("start");
                    i += clients;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
}

/// Runs this binary as a child on `dir` for `scenario`, waits for its one line, SIGKILLs it.
fn run_child_until_line(scenario: &str, executions: usize, dir: &std::path::Path) -> f64 {
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([scenario, &executions.to_string()])
        .env("STEPYARD_BENCH_CHILD", dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("child");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read");
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    line.trim().parse().unwrap_or(0.0)
}

/// A child process parks executions (a Wait and a Task each) and is SIGKILLed; the parent then
/// measures how long opening the folder takes and how long until the first resumed task runs.
async fn recovery(executions: usize) -> Value {
    if let Ok(dir) = std::env::var("STEPYARD_BENCH_CHILD") {
        let engine = Engine::open(EngineConfig::new(&dir)).await.expect("open");
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:hang", "End": true}}}).to_string();
        let sm = machine(&engine, "rec", def, StateMachineType::Standard).await;
        engine.register_function("hang", |_v: Value| async move {
            std::future::pending::<()>().await;
            Ok(json!(null))
        });
        let started = Instant::now();
        start_many(&engine, &sm, executions, "r").await;
        println!("{}", executions as f64 / started.elapsed().as_secs_f64());
        std::future::pending::<()>().await;
    }
    let dir = tempfile::tempdir().expect("tmp");
    run_child_until_line("recovery", executions, dir.path());
    let t = Instant::now();
    let engine = Engine::open(EngineConfig::new(dir.path()))
        .await
        .expect("reopen");
    let open_s = t.elapsed().as_secs_f64();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    engine.register_function("hang", move |_v: Value| {
        let (tx, c) = (tx.clone(), c.clone());
        async move {
            if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == executions {
                let _ = tx.send(());
            }
            Ok(json!("resumed"))
        }
    });
    rx.recv().await;
    let redispatched_s = t.elapsed().as_secs_f64();
    let sm = engine.arn_of_state_machine("rec");
    // Until every resumed task's answer is committed.
    loop {
        let running = engine
            .list_executions(
                ExecutionFilter {
                    state_machine_arn: sm.clone(),
                    status: Some(ExecutionStatus::Running),
                },
                PageRequest {
                    max_results: 1,
                    next_token: None,
                },
            )
            .await
            .expect("list");
        if running.items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_done_s = t.elapsed().as_secs_f64();
    engine.shutdown().await.expect("shutdown");
    json!({
        "scenario": "recovery after kill -9 (each execution waiting on a worker call)",
        "open_executions": executions,
        "open_s": open_s,
        "all_calls_remade_s": redispatched_s,
        "all_executions_finished_s": all_done_s,
        "disk_bytes": dir_size(dir.path()),
    })
}

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "standard".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        match scenario.as_str() {
            "standard" => standard(arg(2, 100_000), arg(3, 512)).await,
            "express" => express(arg(2, 1_000_000), arg(3, 8)).await,
            "parked" => parked(arg(2, 100_000), arg(3, 500)).await,
            "recovery" => recovery(arg(2, 100_000)).await,
            other => json!({"error": format!("unknown scenario {other}")}),
        }
    });
    println!("{result}");
}
