//! Event-pattern matching throughput on one core: Stepyard's `PatternIndex` with 1, 100,
//! 1,000 and 10,000 rules, side by side with the `quamina` crate on the same rules and events, and with
//! testing every pattern one by one.
//!
//! Rules look like real ones: `source` + `detail-type` + one `detail` field (exact most of the
//! time, sometimes `numeric`, `prefix` or `anything-but`); events are ~700-byte envelopes that
//! match few rules. Each measurement runs five times; the median is printed.
//!
//! ```text
//! cargo run --release -p stepyard-engine --example pattern_bench
//! ```

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepyard_engine::bus::pattern::{EventPattern, PatternIndex};

const SOURCES: usize = 50;
const DETAIL_TYPES: usize = 20;
const STATES: usize = 10;
const EVENTS: usize = 2_000;
const RUNS: usize = 5;

/// A deterministic generator, so every run sees the same rules and events.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below
    }
}

fn rule(i: usize) -> Value {
    let source = format!("com.example.service{}", i % SOURCES);
    let detail_type = format!("Order {} Changed", (i / SOURCES) % DETAIL_TYPES);
    let state = format!("state-{}", (i / (SOURCES * DETAIL_TYPES)) % STATES);
    let detail = match i % 10 {
        7 => json!({"size": [{"numeric": [">", (i % 100) * 10]}]}),
        8 => json!({"key": [{"prefix": format!("uploads/{}/", i % 7)}]}),
        9 => json!({"state": [{"anything-but": [state, "state-0"]}]}),
        _ => json!({"state": [state]}),
    };
    json!({"source": [source], "detail-type": [detail_type], "detail": detail})
}

fn event(rng: &mut Lcg, n: usize) -> Value {
    // A few sources and detail types that no rule names, as on a real bus.
    json!({
        "version": "0",
        "id": format!("6a7e8feb-b491-4cf7-a9f1-{n:012}"),
        "detail-type": format!("Order {} Changed", rng.next(DETAIL_TYPES + 5)),
        "source": format!("com.example.service{}", rng.next(SOURCES + 10)),
        "account": "123456789012",
        "time": "2026-12-02T10:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::bucket-{}", rng.next(100))],
        "detail": {
            "state": format!("state-{}", rng.next(STATES + 2)),
            "size": rng.next(2000),
            "key": format!("uploads/{}/file-{}.csv", rng.next(10), rng.next(1000)),
            "customer": {"id": format!("c-{}", rng.next(100_000)), "tier": "gold", "region": "eu"},
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
            "note": "a short free-text note that rules do not look at, to make the event realistic"
        }
    })
}

/// Events per second of `f` over all events: the median of `RUNS` runs, each at least ~0.3 s.
fn measure(events: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut rates = Vec::with_capacity(RUNS);
    let mut matches = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut rounds = 0usize;
        while start.elapsed() < Duration::from_millis(300) || rounds == 0 {
            matches = f();
            rounds += 1;
        }
        rates.push((events * rounds) as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (rates[RUNS / 2], matches)
}

fn main() {
    let mut rng = Lcg(42);
    let events: Vec<Value> = (0..EVENTS).map(|n| event(&mut rng, n)).collect();
    let event_bytes: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(e).expect("serializable"))
        .collect();
    let average = event_bytes.iter().map(Vec::len).sum::<usize>() / EVENTS;
    println!("{EVENTS} events, {average} bytes each on average; median of {RUNS} runs; one thread");
    println!(
        "{:>7} | {:>14} | {:>16} | {:>14} | {:>14} | {:>8}",
        "rules", "index (Value)", "index (bytes)", "quamina", "one by one", "matches"
    );
    for rules in [1usize, 100, 1_000, 10_000] {
        let patterns: Vec<Value> = (0..rules).map(rule).collect();
        let compiled: Vec<EventPattern> = patterns
            .iter()
            .map(|p| EventPattern::from_value(p).expect("valid rule"))
            .collect();
        let mut index = PatternIndex::new();
        for (i, p) in compiled.iter().enumerate() {
            index.insert(i, p.clone());
        }
        // quamina 0.7.0 panics on some larger rule sets ("per-state field_transitions.len()
        // fits in u8"); report that instead of a number.
        let quamina = std::panic::catch_unwind(|| {
            let mut q = quamina::Quamina::<usize>::new();
            for (i, p) in patterns.iter().enumerate() {
                q.add_pattern(i, &p.to_string())
                    .expect("quamina accepts the rule");
            }
            q.matches_for_event(&event_bytes[0]).expect("valid event");
            q
        })
        .ok();
        let (ours, our_matches) = measure(EVENTS, || {
            events.iter().map(|e| index.matching(e).len()).sum()
        });
        let (ours_bytes, _) = measure(EVENTS, || {
            event_bytes
                .iter()
                .map(|b| {
                    let e: Value = serde_json::from_slice(b).expect("valid event");
                    index.matching(&e).len()
                })
                .sum()
        });
        let theirs = quamina.as_ref().map(|q| {
            measure(EVENTS, || {
                event_bytes
                    .iter()
                    .map(|b| q.matches_for_event(b).expect("valid event").len())
                    .sum()
            })
        });
        let (naive, naive_matches) = measure(EVENTS, || {
            events
                .iter()
                .map(|e| compiled.iter().filter(|p| p.matches(e)).count())
                .sum()
        });
        assert_eq!(
            our_matches, naive_matches,
            "the index and one-by-one disagree"
        );
        let (theirs, agree) = match theirs {
            Some((rate, n)) if n == our_matches => (format!("{rate:.0}"), String::new()),
            Some((rate, n)) => (format!("{rate:.0}"), format!(" (quamina matched {n})")),
            None => ("panics".to_owned(), String::new()),
        };
        println!(
            "{rules:>7} | {ours:>14.0} | {ours_bytes:>16.0} | {theirs:>14} | {naive:>14.0} | {our_matches:>8}{agree}"
        );
    }
}
