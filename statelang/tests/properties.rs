//! Property tests: paths and payload templates against simple reference models,
//! the intrinsic-call parser against its printer, and "no input panics".

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use stepyard_statelang::intrinsic::{self, Arg, Call, Function};
use stepyard_statelang::{
    ErrorName, FixedEnv, Path, Scope, Segment, enter, parse, parse_value, string_matches, validate,
};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Seg {
    Field(String),
    Index(i64),
}

fn arb_segments() -> impl Strategy<Value = Vec<Seg>> {
    prop::collection::vec(
        prop_oneof![
            "[a-c]{1,2}".prop_map(Seg::Field),
            (-3i64..4).prop_map(Seg::Index),
        ],
        0..5,
    )
}

/// Renders segments as AWS writes them, mixing dot and bracket notation.
fn render(segments: &[Seg], brackets: bool) -> String {
    let mut out = String::from("$");
    for s in segments {
        match s {
            Seg::Field(f) if brackets => out.push_str(&format!("['{f}']")),
            Seg::Field(f) => out.push_str(&format!(".{f}")),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The reference: walk the value one segment at a time.
fn reference_walk<'a>(mut v: &'a Value, segments: &[Seg]) -> Option<&'a Value> {
    for s in segments {
        v = match (s, v) {
            (Seg::Field(f), Value::Object(m)) => m.get(f)?,
            (Seg::Index(i), Value::Array(a)) => {
                let idx = if *i >= 0 {
                    usize::try_from(*i).ok()?
                } else {
                    a.len()
                        .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                };
                a.get(idx)?
            }
            _ => return None,
        };
    }
    Some(v)
}

fn arb_literal_string() -> impl Strategy<Value = String> {
    "[a-z {}'\\\\]{0,8}"
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '\'' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn arb_arg() -> impl Strategy<Value = Arg> {
    let leaf = prop_oneof![
        arb_literal_string().prop_map(|value| Arg::String {
            raw: escape(&value),
            value
        }),
        any::<i32>().prop_map(|n| Arg::Number(n.into())),
        any::<bool>().prop_map(Arg::Bool),
        Just(Arg::Null),
        arb_segments().prop_map(|s| Arg::Path(Path::parse(&render(&s, false)).expect("valid"))),
    ];
    leaf.prop_recursive(3, 20, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|args| {
            Arg::Call(Call {
                function: Function::Array,
                args,
            })
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reference_paths_select_what_a_plain_walk_finds(value in arb_json(), segments in arb_segments(), brackets in any::<bool>()) {
        let path = Path::parse_reference(&render(&segments, brackets)).expect("valid reference path");
        let got = path.select(&value, &Scope::context_only(&Value::Null)).map(|v| v.into_owned());
        prop_assert_eq!(got, reference_walk(&value, &segments).cloned());
    }

    #[test]
    fn assign_then_select_reads_back_the_value(value in arb_json(), fields in prop::collection::vec("[a-c]{1,2}", 1..4), new in arb_json()) {
        let segments: Vec<Seg> = fields.into_iter().map(Seg::Field).collect();
        let path = Path::parse_reference(&render(&segments, false)).expect("valid");
        let mut target = value.clone();
        match path.assign(&mut target, new.clone()) {
            Ok(()) => prop_assert_eq!(path.select(&target, &Scope::context_only(&Value::Null)).map(|v| v.into_owned()), Some(new)),
            // Assignment only fails when something other than an object (or null) is in the way.
            Err(_) => prop_assert!(!value.is_object() || segments.len() > 1),
        }
    }

    #[test]
    fn parsed_paths_keep_their_segments(segments in arb_segments()) {
        let path = Path::parse(&render(&segments, false)).expect("valid");
        let expected: Vec<Segment> = segments.iter().map(|s| match s {
            Seg::Field(f) => Segment::Field(f.clone()),
            Seg::Index(i) => Segment::Index(*i),
        }).collect();
        prop_assert_eq!(path.segments(), Some(expected.as_slice()));
    }

    #[test]
    fn intrinsic_calls_round_trip_through_display(args in prop::collection::vec(arb_arg(), 0..5)) {
        let call = Call { function: Function::Array, args };
        let printed = call.to_string();
        let reparsed = intrinsic::parse(&printed).expect("printed calls parse");
        prop_assert_eq!(reparsed, call);
    }

    #[test]
    fn format_with_escaped_literals_reproduces_the_text(text in arb_literal_string()) {
        let expr = format!("States.Format('{}')", escape(&text));
        let call = intrinsic::parse(&expr).expect("parses");
        let out = intrinsic::evaluate(&call, &Value::Null, &Scope::context_only(&Value::Null), &mut FixedEnv::default()).expect("evaluates");
        prop_assert_eq!(out, Value::String(text));
    }

    #[test]
    fn templates_without_dollar_keys_are_copied(value in arb_json()) {
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v": value}, "End": true}}});
        let machine = parse_value(&def).expect("valid");
        let out = enter(&machine.states["P"], &json!({}), &Scope::context_only(&json!({})), &mut FixedEnv::default()).expect("runs");
        prop_assert_eq!(out, stepyard_statelang::Entered::End { output: json!({"v": value}), assigned: Default::default() });
    }

    #[test]
    fn template_paths_substitute_the_selected_values(input in arb_json(), keys in prop::collection::vec("[a-c]{1,2}", 1..4)) {
        let mut params = Map::new();
        let mut expected = Map::new();
        for k in &keys {
            params.insert(format!("{k}.$"), json!(format!("$.{k}")));
        }
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": params, "End": true}}});
        let machine = parse_value(&def).expect("valid");
        let result = enter(&machine.states["P"], &input, &Scope::context_only(&json!({})), &mut FixedEnv::default());
        let all_present = keys.iter().all(|k| input.get(k).is_some());
        if all_present {
            for k in &keys {
                expected.insert(k.clone(), input[k.as_str()].clone());
            }
            prop_assert_eq!(result.expect("runs"), stepyard_statelang::Entered::End { output: Value::Object(expected), assigned: Default::default() });
        } else {
            let error = result.expect_err("a missing path fails");
            prop_assert_eq!(error.error, ErrorName::Runtime);
        }
    }

    #[test]
    fn star_patterns_match_like_a_reference_matcher(text in "[ab*]{0,8}", pattern in "[ab*]{0,6}") {
        fn reference(t: &[char], p: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| reference(&t[i..], rest)),
                Some((c, rest)) => t.first() == Some(c) && reference(&t[1..], rest),
            }
        }
        let t: Vec<char> = text.chars().collect();
        let p: Vec<char> = pattern.chars().collect();
        prop_assert_eq!(string_matches(&text, &pattern), reference(&t, &p));
    }

    #[test]
    fn error_names_round_trip(name in "(States\\.)?[A-Za-z.]{0,20}") {
        let parsed: ErrorName = name.parse().expect("infallible");
        prop_assert_eq!(parsed.to_string(), name);
    }

    #[test]
    fn parse_never_panics_on_text(text in "\\PC{0,200}") {
        let _ = validate(&text);
    }

    #[test]
    fn parse_never_panics_on_asl_shaped_json(states in prop::collection::vec(arb_state(), 1..4)) {
        let mut map = Map::new();
        for (i, s) in states.into_iter().enumerate() {
            map.insert(format!("S{i}"), s);
        }
        let def = json!({"StartAt": "S0", "States": map});
        let _ = parse(&def.to_string());
    }
}

/// Random states built from real ASL field names and plausible or wrong values.
fn arb_state() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("Type"),
        Just("Next"),
        Just("End"),
        Just("InputPath"),
        Just("OutputPath"),
        Just("ResultPath"),
        Just("Parameters"),
        Just("Result"),
        Just("Resource"),
        Just("Choices"),
        Just("Default"),
        Just("Seconds"),
        Just("SecondsPath"),
        Just("Timestamp"),
        Just("Error"),
        Just("CausePath"),
        Just("Branches"),
        Just("ItemProcessor"),
        Just("Retry"),
        Just("Catch"),
        Just("ItemSelector"),
        Just("ItemsPath"),
        Just("MaxConcurrency"),
        Just("Variable"),
    ];
    let value = prop_oneof![
        prop_oneof![
            Just("Pass"),
            Just("Task"),
            Just("Choice"),
            Just("Wait"),
            Just("Succeed"),
            Just("Fail"),
            Just("Parallel"),
            Just("Map")
        ]
        .prop_map(|s| json!(s)),
        prop_oneof![
            Just("$"),
            Just("$.a"),
            Just("$$.x"),
            Just("$.a[*]"),
            Just("S0"),
            Just("S1"),
            Just("States.Format('{}', $.a)"),
            Just("$["),
            Just("")
        ]
        .prop_map(|s| json!(s)),
        arb_json(),
        Just(json!([{"ErrorEquals": ["States.ALL"], "Next": "S0"}])),
        Just(json!([{"Variable": "$.a", "StringEquals": "x", "Next": "S1"}])),
        Just(json!({"StartAt": "S0", "States": {"S0": {"Type": "Succeed"}}})),
        Just(json!({"x.$": "$.a", "y.$": "States.Array(1, $.b)"})),
    ];
    prop::collection::vec((field, value), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}
