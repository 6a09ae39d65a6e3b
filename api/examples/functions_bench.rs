//! Function benchmark: warm invocation overhead, cold start and throughput of a Python echo
//! handler run by the official `awslambdaric`, through the real Runtime API listeners.
//!
//! ```text
//! STEPYARD_PYTHON=.venv/bin/python cargo run --release -p stepyard-api --example functions_bench
//! ```
//!
//! *Overhead* is an invocation's total time (from `Functions::invoke` to its answer) minus the
//! time between handing the event to the runtime (`/next` answered) and its answer arriving
//! (`/response`): what Stepyard adds around the handler and its runtime client.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use stepyard_api::AppState;
use stepyard_api::config::ServerConfig;
use stepyard_workers::functions::{FunctionSpec, Functions, Invoke};

const ECHO: &str = "def handler(event, context):\n    return event\n";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// One invocation: (total time, handler time).
async fn call(functions: Functions, name: &'static str) -> (Duration, Duration) {
    let started = Instant::now();
    let output = functions
        .invoke(
            name,
            Invoke {
                payload: Bytes::from_static(br#"{"hello":"world"}"#),
                ..Invoke::default()
            },
        )
        .await
        .expect("invoke");
    let total = started.elapsed();
    assert!(output.result.is_ok(), "{:?}", output.result);
    (total, output.handler_time.unwrap_or_default())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let python = std::env::var("STEPYARD_PYTHON")
        .map_err(|_| anyhow::anyhow!("set STEPYARD_PYTHON to a Python with awslambdaric"))?;
    let warm_calls: usize = std::env::var("BENCH_WARM_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let temp = tempfile::tempdir()?;
    let code = temp.path().join("code");
    std::fs::create_dir_all(&code)?;
    std::fs::write(code.join("app.py"), ECHO)?;
    let state = AppState::open(ServerConfig::local(temp.path().join("data"))).await?;
    let functions = state.functions().clone();
    let spec = |name: &str| {
        let mut spec = FunctionSpec::process(
            name,
            vec![
                python.clone(),
                "-m".into(),
                "awslambdaric".into(),
                "app.handler".into(),
            ],
            &code,
        );
        spec.handler = Some("app.handler".into());
        spec.reserved_concurrency = Some(8);
        spec
    };
    let once = |name: &'static str| call(functions.clone(), name);

    // Cold starts: a new function each time (its first invocation starts its first process).
    let mut cold = Vec::new();
    for i in 0..5 {
        let name: &'static str = Box::leak(format!("cold-{i}").into_boxed_str());
        functions.create(spec(name)).await?;
        cold.push(once(name).await.0);
    }
    cold.sort();

    // Warm overhead at concurrency 1.
    functions.create(spec("echo")).await?;
    for _ in 0..50 {
        once("echo").await;
    }
    let mut totals = Vec::with_capacity(warm_calls);
    let mut overheads = Vec::with_capacity(warm_calls);
    for _ in 0..warm_calls {
        let (total, handler) = once("echo").await;
        totals.push(total);
        overheads.push(total.saturating_sub(handler));
    }
    totals.sort();
    overheads.sort();

    // Throughput at concurrency 1 and 8 (8 warm sandboxes).
    let mut throughput = Vec::new();
    for concurrency in [1usize, 8] {
        let warmup: Vec<_> = (0..concurrency)
            .map(|_| tokio::spawn(call(functions.clone(), "echo")))
            .collect();
        for w in warmup {
            w.await?;
        }
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let functions = functions.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        call(functions.clone(), "echo").await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for w in workers {
            total += w.await?;
        }
        throughput.push((concurrency, total as f64 / started.elapsed().as_secs_f64()));
    }

    println!(
        "functions benchmark (Python 3 echo handler under awslambdaric, debug={})",
        cfg!(debug_assertions)
    );
    println!(
        "cold start (first invocation of a new function), median of {}: {}  (min {}, max {})",
        cold.len(),
        ms(percentile(&cold, 0.5)),
        ms(cold[0]),
        ms(cold[cold.len() - 1])
    );
    println!(
        "warm invocation, {warm_calls} calls at concurrency 1: total p50 {} p99 {}; Stepyard overhead p50 {} p99 {}",
        ms(percentile(&totals, 0.5)),
        ms(percentile(&totals, 0.99)),
        ms(percentile(&overheads, 0.5)),
        ms(percentile(&overheads, 0.99)),
    );
    for (concurrency, rate) in throughput {
        println!(
            "throughput at concurrency {concurrency}: {rate:.0} invocations/s over {seconds} s"
        );
    }
    state.close().await?;
    Ok(())
}
