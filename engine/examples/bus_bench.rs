//! Event bus benchmark: durable PutEvents from many clients, each event matched by one of
//! `rules` rules whose target is a STANDARD state machine; its first state is a Task that
//! notes when the event arrived.
//!
//! ```text
//! cargo run --release -p stepyard-engine --example bus_bench -- [events] [clients] [rules]
//! ```
//!
//! Prints one JSON line: PutEvents/s sustained (each answered only once its deliveries are on
//! disk), PutEvents latency, and PutEvents → the started execution's first Task (p50, p99).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use stepyard_engine::bus::*;
use stepyard_engine::*;

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

#[tokio::main]
async fn main() -> Result<()> {
    let events = arg(1, 20_000);
    let clients = arg(2, 64);
    let rules = arg(3, 100);
    let dir = tempfile::tempdir().map_err(|e| Error::Store(e.to_string()))?;
    let engine = Engine::open(EngineConfig::new(dir.path())).await?;
    let bus = Bus::open(&engine, BusConfig::default()).await?;

    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    {
        let arrived = arrived.clone();
        engine.register_function("arrived", move |input: Value| {
            let arrived = arrived.clone();
            let done_tx = done_tx.clone();
            async move {
                if let Some(id) = input["id"].as_str() {
                    arrived
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.to_string(), Instant::now());
                }
                let _ = done_tx.send(());
                Ok(json!({}))
            }
        });
    }
    let sm = engine
        .create_state_machine(CreateStateMachine {
            name: "on-event".into(),
            definition: json!({"StartAt": "Arrived", "States": {"Arrived": {"Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:arrived", "End": true}}})
            .to_string(),
            ..Default::default()
        })
        .await?
        .arn;
    // Rules on distinct sources; every event matches exactly one of them.
    for r in 0..rules {
        bus.put_rule(PutRule {
            name: format!("rule-{r}"),
            event_pattern: Some(
                json!({"source": [format!("app-{r}")], "detail-type": ["order"],
                       "detail": {"status": ["paid"]}})
                .to_string(),
            ),
            ..Default::default()
        })
        .await?;
        bus.put_targets(
            None,
            &format!("rule-{r}"),
            vec![Target {
                id: "sfn".into(),
                arn: sm.clone(),
                ..Default::default()
            }],
        )
        .await?;
    }

    let put_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let bus = bus.clone();
        let put_at = put_at.clone();
        let per_client = events / clients + usize::from(c < events % clients);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let t0 = Instant::now();
                let result = bus
                    .put_events(vec![PutEventsEntry {
                        source: Some(format!("app-{}", (c * 7919 + i) % rules)),
                        detail_type: Some("order".into()),
                        detail: Some(json!({"status": "paid", "n": i}).to_string()),
                        ..Default::default()
                    }])
                    .await
                    .expect("put_events");
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                if let Some(id) = result[0].event_id.clone() {
                    put_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, t0);
                }
            }
            latencies
        }));
    }
    let mut put_latencies = Vec::new();
    for t in tasks {
        put_latencies.extend(t.await.map_err(|e| Error::Store(e.to_string()))?);
    }
    let put_secs = started.elapsed().as_secs_f64();
    for _ in 0..events {
        done_rx.recv().await;
    }
    let all_secs = started.elapsed().as_secs_f64();
    put_latencies.sort_by(f64::total_cmp);
    let mut end_to_end: Vec<f64> = {
        let put_at = put_at.lock().unwrap_or_else(|p| p.into_inner());
        let arrived = arrived.lock().unwrap_or_else(|p| p.into_inner());
        put_at
            .iter()
            .filter_map(|(id, t0)| {
                arrived
                    .get(id)
                    .map(|t1| t1.duration_since(*t0).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    end_to_end.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "events": events, "clients": clients, "rules": rules,
            "put_events_per_s": (events as f64 / put_secs).round(),
            "put_p50_ms": percentile(&put_latencies, 0.5),
            "put_p99_ms": percentile(&put_latencies, 0.99),
            "event_to_first_task_p50_ms": percentile(&end_to_end, 0.5),
            "event_to_first_task_p99_ms": percentile(&end_to_end, 0.99),
            "executions_per_s_end_to_end": (events as f64 / all_secs).round(),
        })
    );
    bus.shutdown().await;
    drop(bus);
    engine.shutdown().await
}
