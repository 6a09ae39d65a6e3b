//! The event-pattern corpus: every file under `tests/patterns/*.json` is a list of cases, each
//! from AWS's documented behaviour:
//!
//! ```json
//! {"name": "...", "pattern": {...}, "match": [event, ...], "no_match": [event, ...]}
//! {"name": "...", "pattern": ..., "invalid": "substring of the error message"}
//! ```
//!
//! Each event (and each invalid pattern) counts as one case. The driver also checks that a
//! `PatternIndex` of all valid patterns of a file agrees with the patterns one by one.

#[path = "patterns/properties.rs"]
mod properties;
#[path = "patterns/transform.rs"]
mod transform;

use std::path::{Path, PathBuf};

use serde_json::Value;
use stepyard_engine::bus::pattern::{EventPattern, PatternIndex};

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/patterns");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/patterns exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn events<'a>(case: &'a Value, key: &str) -> &'a [Value] {
    case.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[test]
fn corpus() {
    let mut failures = Vec::new();
    let mut counted = 0usize;
    for file in corpus_files() {
        let file_name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).expect("readable corpus file");
        let cases: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{file_name} is not a JSON array of cases: {e}"));
        let mut index = PatternIndex::new();
        let mut all_events = Vec::new();
        let mut patterns = Vec::new();
        for (n, case) in cases.iter().enumerate() {
            let name = case["name"].as_str().unwrap_or("(unnamed)");
            let where_ = format!("{file_name} case {n} {name:?}");
            if let Some(expected) = case.get("invalid") {
                counted += 1;
                let expected = expected.as_str().unwrap_or_default();
                let result = match &case["pattern"] {
                    Value::String(text) => EventPattern::parse(text),
                    other => EventPattern::from_value(other),
                };
                match result {
                    Ok(_) => failures.push(format!(
                        "{where_}: accepted, expected an error containing {expected:?}"
                    )),
                    Err(e) if !e.message.contains(expected) => failures.push(format!(
                        "{where_}: error {:?} does not contain {expected:?}",
                        e.message
                    )),
                    Err(e)
                        if !e
                            .message
                            .starts_with("Event pattern is not valid. Reason: ") =>
                    {
                        failures.push(format!(
                            "{where_}: error {:?} lacks AWS's prefix",
                            e.message
                        ))
                    }
                    Err(_) => {}
                }
                continue;
            }
            let pattern = match EventPattern::from_value(&case["pattern"]) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{where_}: pattern refused: {}", e.message));
                    continue;
                }
            };
            assert_eq!(pattern.as_value(), &case["pattern"]);
            for (expected, key) in [(true, "match"), (false, "no_match")] {
                for (i, event) in events(case, key).iter().enumerate() {
                    counted += 1;
                    if pattern.matches(event) != expected {
                        failures.push(format!(
                            "{where_} {key}[{i}]: expected {expected} for event {event}"
                        ));
                    }
                    all_events.push(event.clone());
                }
            }
            index.insert(n, pattern.clone());
            patterns.push((n, pattern));
        }
        for event in &all_events {
            let one_by_one: Vec<usize> = patterns
                .iter()
                .filter(|(_, p)| p.matches(event))
                .map(|(n, _)| *n)
                .collect();
            let indexed = index.matching(event);
            if indexed != one_by_one {
                failures.push(format!(
                    "{file_name}: index gives {indexed:?}, one by one {one_by_one:?}, for {event}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(counted >= 300, "the corpus has only {counted} cases");
    println!("{counted} corpus cases");
}

#[test]
fn garbage_never_panics() {
    let texts = [
        "",
        "{",
        "}",
        "[]",
        "null",
        "0",
        "\"x\"",
        "{\"a\":",
        "{\"a\": [{}]}",
        "{\"a\": [[[]]]}",
        "{\"a\": [{\"numeric\": []}]}",
        "{\"a\": [{\"numeric\": [\">\"]}]}",
        "{\"a\": [{\"numeric\": [\">\", 1, \"<\"]}]}",
        "{\"a\": [{\"anything-but\": {}}]}",
        "{\"a\": [{\"anything-but\": {\"prefix\": {}}}]}",
        "{\"a\": [{\"prefix\": {\"equals-ignore-case\": {}}}]}",
        "{\"a\": [{\"cidr\": \"/\"}]}",
        "{\"a\": [{\"cidr\": \"1.2.3.4/\"}]}",
        "{\"a\": [{\"cidr\": \"::/-1\"}]}",
        "{\"a\": [{\"wildcard\": \"\\\\\"}]}",
        "{\"$or\": {}}",
        "{\"$or\": [[]]}",
        "{\"a\": [{\"numeric\": [\"=\", 1e400]}]}",
        "{\"a\": [{\"numeric\": [\">\", -1e308, \"<\", 1e308]}]}",
        "\u{0}\u{1}\u{2}",
        "{\"\u{10FFFF}\": [\"\u{10FFFF}\"]}",
    ];
    for text in texts {
        let _ = EventPattern::parse(text);
    }
    let deep = format!(
        "{}{}",
        "{\"a\":".repeat(100),
        "[1]".to_owned() + &"}".repeat(100)
    );
    let pattern = EventPattern::parse(&deep).expect("a deep but valid pattern");
    let event: Value =
        serde_json::from_str(&format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100)))
            .expect("valid event");
    assert!(pattern.matches(&event));
    let long = format!("{{\"a\": [\"{}\"]}}", "x".repeat(5000));
    assert!(EventPattern::parse(&long).is_err());
    // Non-object events match only patterns that absence satisfies.
    let absent = EventPattern::parse(r#"{"a": [{"exists": false}]}"#).expect("valid");
    for event in [
        Value::Null,
        Value::from(1),
        Value::from("s"),
        serde_json::json!([1, {"a": 1}]),
    ] {
        assert!(absent.matches(&event));
        assert!(
            !EventPattern::parse(r#"{"a": [1]}"#)
                .expect("valid")
                .matches(&event)
        );
    }
}
