//! Property tests over a small universe of values, so that patterns and events collide often:
//! the index agrees with testing every pattern one by one, and the matcher agrees with a
//! flattening reference matcher (written here, the way AWS's Ruler sees events) for exact,
//! prefix, anything-but, numeric and exists.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use stepyard_engine::bus::pattern::{EventPattern, PatternIndex};

const STRINGS: &[&str] = &["", "a", "ab", "abc", "b", "ba"];
const NUMBERS: &[i64] = &[-1, 0, 1, 2, 10];

fn string() -> impl Strategy<Value = String> {
    prop::sample::select(STRINGS).prop_map(str::to_owned)
}

fn number() -> impl Strategy<Value = i64> {
    prop::sample::select(NUMBERS)
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => string().prop_map(Value::from),
        3 => number().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
    ]
}

/// An event field value: a scalar or an array of scalars.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::from),
    ]
}

/// One matcher of the subset the reference understands.
fn matcher() -> impl Strategy<Value = Value> {
    let numeric = (
        prop::sample::select(&["<", "<=", "=", ">", ">="][..]),
        number(),
    )
        .prop_map(|(op, n)| json!({"numeric": [op, n]}));
    let range = (number(), number())
        .prop_filter("bounds in order", |(a, b)| a < b)
        .prop_map(|(a, b)| json!({"numeric": [">=", a, "<", b]}));
    prop_oneof![
        4 => string().prop_map(Value::from),
        2 => number().prop_map(Value::from),
        1 => Just(Value::Null),
        2 => string().prop_map(|s| json!({"prefix": s})),
        2 => string().prop_map(|s| json!({"anything-but": s})),
        1 => prop::collection::vec(string(), 1..3).prop_map(|v| json!({"anything-but": v})),
        1 => number().prop_map(|n| json!({"anything-but": n})),
        2 => numeric,
        1 => range,
        1 => any::<bool>().prop_map(|b| json!({"exists": b})),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop::collection::vec(matcher(), 1..3).prop_map(Value::from)
}

const FIELDS: &[&str] = &["source", "detail-type"];
const DETAIL_FIELDS: &[&str] = &["x", "y"];

/// A pattern over `source`, `detail-type` and `detail.{x,y}` (no `$or`).
fn simple_pattern() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(prop::sample::select(FIELDS), leaf(), 0..3),
        prop::collection::btree_map(prop::sample::select(DETAIL_FIELDS), leaf(), 0..3),
    )
        .prop_filter_map("not empty", |(top, detail)| {
            let mut map: Map<String, Value> =
                top.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if !detail.is_empty() {
                let detail: Map<String, Value> =
                    detail.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                map.insert("detail".into(), Value::Object(detail));
            }
            (!map.is_empty()).then_some(Value::Object(map))
        })
}

/// Simple patterns, sometimes with exact-only `source` (so they are indexed) or a `$or`.
fn any_pattern() -> impl Strategy<Value = Value> {
    let exact_source =
        (prop::collection::vec(string(), 1..3), simple_pattern()).prop_map(|(sources, mut p)| {
            p["source"] = Value::from(sources);
            p
        });
    let with_or = (
        simple_pattern(),
        simple_pattern(),
        prop::option::of(string()),
    )
        .prop_map(|(a, b, source)| {
            let mut p = json!({"$or": [a, b]});
            if let Some(s) = source {
                p["source"] = json!([s]);
            }
            p
        });
    prop_oneof![3 => simple_pattern(), 3 => exact_source, 1 => with_or]
}

fn event() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(prop::sample::select(FIELDS), field_value(), 0..3),
        prop::option::of(prop::collection::btree_map(
            prop::sample::select(DETAIL_FIELDS),
            field_value(),
            0..3,
        )),
    )
        .prop_map(|(top, detail)| {
            let mut map: Map<String, Value> =
                top.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Some(detail) = detail {
                let detail: Map<String, Value> =
                    detail.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                map.insert("detail".into(), Value::Object(detail));
            }
            Value::Object(map)
        })
}

// ---------------------------------------------------------------------------------------------
// The reference: flatten the event to `path -> leaves`, then check each leaf list of the pattern.

fn flatten(value: &Value, path: &str, out: &mut BTreeMap<String, Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(v, &p, out);
            }
        }
        Value::Array(items) => {
            out.entry(path.to_owned()).or_default();
            for item in items {
                flatten(item, path, out);
            }
        }
        leaf => out.entry(path.to_owned()).or_default().push(leaf.clone()),
    }
}

fn reference_leaf(matcher: &Value, leaf: &Value) -> bool {
    let num = |v: &Value| v.as_f64();
    match matcher {
        Value::Object(op) => {
            let (name, operand) = op.iter().next().expect("one operator");
            match name.as_str() {
                "prefix" => leaf
                    .as_str()
                    .is_some_and(|s| s.starts_with(operand.as_str().unwrap_or("\u{0}"))),
                "exists" => operand == &Value::Bool(true),
                "anything-but" => {
                    let excluded: Vec<&Value> = match operand {
                        Value::Array(list) => list.iter().collect(),
                        single => vec![single],
                    };
                    !excluded.iter().any(|e| match (num(e), num(leaf)) {
                        (Some(a), Some(b)) => a == b,
                        _ => *e == leaf,
                    })
                }
                "numeric" => {
                    let Some(x) = num(leaf) else { return false };
                    let terms = operand.as_array().expect("numeric array");
                    terms.chunks(2).all(|pair| {
                        let bound = pair[1].as_f64().expect("number");
                        match pair[0].as_str().expect("operator") {
                            "<" => x < bound,
                            "<=" => x <= bound,
                            "=" => x == bound,
                            ">" => x > bound,
                            ">=" => x >= bound,
                            other => panic!("operator {other}"),
                        }
                    })
                }
                other => panic!("the reference does not know {other}"),
            }
        }
        exact => match (num(exact), num(leaf)) {
            (Some(a), Some(b)) => a == b,
            _ => exact == leaf,
        },
    }
}

fn reference_object(
    pattern: &Map<String, Value>,
    path: &str,
    flat: &BTreeMap<String, Vec<Value>>,
) -> bool {
    pattern.iter().all(|(k, v)| {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match v {
            Value::Object(inner) => reference_object(inner, &p, flat),
            Value::Array(matchers) => {
                let leaves = flat.get(&p).map(Vec::as_slice).unwrap_or(&[]);
                if leaves.is_empty() {
                    matchers.iter().any(|m| m == &json!({"exists": false}))
                } else {
                    leaves
                        .iter()
                        .any(|leaf| matchers.iter().any(|m| reference_leaf(m, leaf)))
                }
            }
            _ => panic!("not a pattern"),
        }
    })
}

fn reference(pattern: &Value, event: &Value) -> bool {
    let mut flat = BTreeMap::new();
    flatten(event, "", &mut flat);
    reference_object(pattern.as_object().expect("object pattern"), "", &flat)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn matcher_agrees_with_the_reference(pattern in simple_pattern(), events in prop::collection::vec(event(), 1..8)) {
        let compiled = EventPattern::from_value(&pattern).expect("generated patterns are valid");
        for event in &events {
            prop_assert_eq!(compiled.matches(event), reference(&pattern, event), "pattern {} event {}", pattern, event);
        }
    }

    #[test]
    fn index_agrees_with_one_by_one(
        patterns in prop::collection::vec(any_pattern(), 1..40),
        events in prop::collection::vec(event(), 1..10),
        removed in prop::collection::vec(0usize..40, 0..10),
    ) {
        let compiled: Vec<EventPattern> = patterns
            .iter()
            .map(|p| EventPattern::from_value(p).expect("generated patterns are valid"))
            .collect();
        let mut index = PatternIndex::new();
        for (key, p) in compiled.iter().enumerate() {
            index.insert(key, p.clone());
        }
        // Re-inserting under a key replaces; removing takes the key out.
        for &key in &removed {
            if key < compiled.len() && key % 2 == 0 {
                index.insert(key, compiled[key].clone());
            } else {
                index.remove(&key);
            }
        }
        let live: Vec<usize> = (0..compiled.len())
            .filter(|k| !removed.iter().any(|r| r == k && k % 2 == 1))
            .collect();
        prop_assert_eq!(index.len(), live.len());
        for event in &events {
            let expected: Vec<usize> = live.iter().copied().filter(|&k| compiled[k].matches(event)).collect();
            prop_assert_eq!(index.matching(event), expected, "event {}", event);
        }
    }
}
