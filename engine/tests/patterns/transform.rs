//! InputTransformer cases, most from AWS's "Transforming target input" examples.

use serde_json::{Value, json};
use stepyard_engine::bus::transform::{InputTransformer, Reserved};

fn ec2_event() -> Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2015-11-11T21:29:54Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
        "detail": {"instance-id": "i-0123456789", "state": "RUNNING"}
    })
}

const RESERVED: Reserved<'static> = Reserved {
    rule_arn: "arn:aws:events:us-east-1:123456789012:rule/my-rule",
    rule_name: "my-rule",
    ingestion_time: "2015-11-11T21:29:55Z",
};

fn map(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn apply(pairs: &[(&str, &str)], template: &str, event: &Value) -> String {
    InputTransformer::new(&map(pairs), template)
        .unwrap_or_else(|e| panic!("{template:?} refused: {e}"))
        .apply(event, &RESERVED)
        .expect("apply")
}

fn error(pairs: &[(&str, &str)], template: &str) -> String {
    match InputTransformer::new(&map(pairs), template) {
        Ok(_) => panic!("{template:?} accepted"),
        Err(e) => e.message,
    }
}

const EC2_PATHS: &[(&str, &str)] = &[
    ("timestamp", "$.time"),
    ("instance", "$.detail.instance-id"),
    ("state", "$.detail.state"),
];

#[test]
fn json_template_strings_outside_quotes_gain_quotes() {
    let out = apply(
        EC2_PATHS,
        r#"{"timestamp": <timestamp>, "instance_id": <instance>, "state": <state>}"#,
        &ec2_event(),
    );
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("JSON"),
        json!({"timestamp": "2015-11-11T21:29:54Z", "instance_id": "i-0123456789", "state": "RUNNING"})
    );
}

#[test]
fn placeholders_inside_a_string_literal_become_text() {
    let out = apply(
        EC2_PATHS,
        r#"{"message": "instance <instance> is in <state>", "id": <instance>}"#,
        &ec2_event(),
    );
    assert_eq!(
        out,
        r#"{"message": "instance i-0123456789 is in RUNNING", "id": "i-0123456789"}"#
    );
}

#[test]
fn api_reference_examples() {
    let paths = &[
        ("instance", "$.detail.instance-id"),
        ("status", "$.detail.state"),
    ];
    assert_eq!(
        apply(paths, "<instance> is in state <status>", &ec2_event()),
        "i-0123456789 is in state RUNNING"
    );
    assert_eq!(
        apply(paths, r#"<instance> is in state "<status>""#, &ec2_event()),
        r#"i-0123456789 is in state "RUNNING""#
    );
    assert_eq!(
        apply(
            paths,
            r#"{"myInstance": <instance>,"myStatus": "<instance> is in state \"<status>\""}"#,
            &ec2_event()
        ),
        r#"{"myInstance": "i-0123456789","myStatus": "i-0123456789 is in state \"RUNNING\""}"#
    );
}

#[test]
fn a_quoted_string_template_is_a_json_string() {
    let out = apply(
        EC2_PATHS,
        r#""instance <instance> is in <state>""#,
        &ec2_event(),
    );
    assert_eq!(out, r#""instance i-0123456789 is in RUNNING""#);
}

#[test]
fn objects_and_arrays_outside_quotes_are_json_inside_quotes_lose_inner_quotes() {
    let event = json!({"detail": {"key1": "value1"}, "resources": ["a", "b"], "n": 5, "ok": true});
    let paths = &[
        ("detail", "$.detail"),
        ("resources", "$.resources"),
        ("n", "$.n"),
        ("ok", "$.ok"),
    ];
    assert_eq!(
        apply(
            paths,
            r#"{"d": <detail>, "r": <resources>, "n": <n>, "ok": <ok>}"#,
            &event
        ),
        r#"{"d": {"key1":"value1"}, "r": ["a","b"], "n": 5, "ok": true}"#
    );
    assert_eq!(
        apply(
            paths,
            r#"{"text": "Detail is <detail>, <resources>, <n>, <ok>"}"#,
            &event
        ),
        r#"{"text": "Detail is {key1:value1}, [a,b], 5, true"}"#
    );
}

#[test]
fn missing_paths_give_null_outside_quotes_and_nothing_inside() {
    let paths = &[("missing", "$.detail.nope"), ("state", "$.detail.state")];
    assert_eq!(
        apply(
            paths,
            r#"{"a": <missing>, "b": "[<missing>]", "c": <state>}"#,
            &ec2_event()
        ),
        r#"{"a": null, "b": "[]", "c": "RUNNING"}"#
    );
    assert_eq!(
        apply(paths, "x<missing>y <state>", &ec2_event()),
        "xy RUNNING"
    );
}

#[test]
fn values_inside_quotes_are_escaped_for_json() {
    let event = json!({"detail": {"msg": "say \"hi\"\\now\n"}});
    let out = apply(&[("msg", "$.detail.msg")], r#"{"m": "<msg>"}"#, &event);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("valid JSON"),
        json!({"m": "say \"hi\"\\now\n"})
    );
}

#[test]
fn reserved_variables() {
    let event = ec2_event();
    let out = apply(
        &[],
        r#"{"arn": <aws.events.rule-arn>, "name": "rule <aws.events.rule-name>", "at": <aws.events.event.ingestion-time>, "event": <aws.events.event>, "full": <aws.events.event.json>}"#,
        &event,
    );
    let out: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(out["arn"], json!(RESERVED.rule_arn));
    assert_eq!(out["name"], json!("rule my-rule"));
    assert_eq!(out["at"], json!("2015-11-11T21:29:55Z"));
    assert_eq!(out["full"], event);
    let mut without_detail = event.clone();
    without_detail
        .as_object_mut()
        .expect("object")
        .remove("detail");
    assert_eq!(out["event"], without_detail);
    // The whole event as the whole template.
    let whole: Value =
        serde_json::from_str(&apply(&[], "<aws.events.event.json>", &event)).expect("JSON");
    assert_eq!(whole, event);
}

#[test]
fn wildcards_and_indices() {
    let event = json!({"detail": {"items": [{"id": 1}, {"id": 2}], "path/with": "slash"}});
    let paths = &[
        ("ids", "$.detail.items[*].id"),
        ("first", "$.detail.items[0].id"),
        ("s", "$.detail.path/with"),
    ];
    assert_eq!(
        apply(
            paths,
            r#"{"ids": <ids>, "first": <first>, "s": <s>}"#,
            &event
        ),
        r#"{"ids": [1,2], "first": 1, "s": "slash"}"#
    );
}

#[test]
fn unknown_angle_brackets_stay_text() {
    assert_eq!(
        apply(
            &[("state", "$.detail.state")],
            "<b>state</b> <state> <nope>",
            &ec2_event()
        ),
        "<b>state</b> RUNNING <nope>"
    );
}

#[test]
fn validation() {
    let many: Vec<(String, String)> = (0..101)
        .map(|i| (format!("k{i}"), "$.a".to_owned()))
        .collect();
    let e = InputTransformer::new(&many, "x").expect_err("101 keys");
    assert!(e.message.contains("at most 100"), "{}", e.message);
    let hundred: Vec<(String, String)> = (0..100)
        .map(|i| (format!("k{i}"), "$.a".to_owned()))
        .collect();
    assert!(InputTransformer::new(&hundred, "x").is_ok());
    assert!(error(&[("aws.events.rule-arn", "$.a")], "x").contains("reserved"));
    assert!(error(&[("AWSthing", "$.a")], "x").contains("cannot start with \"AWS\""));
    assert!(error(&[("bad key", "$.a")], "x").contains("[A-Za-z0-9_-]"));
    assert!(error(&[("", "$.a")], "x").contains("[A-Za-z0-9_-]"));
    for path in [
        "detail", "$.", "$..a", "$.a[", "$.a[x]", "$['a']", "$.a b", "$.a*",
    ] {
        assert!(
            error(&[("k", path)], "x").contains("is not a valid JSON path"),
            "{path}"
        );
    }
    assert!(error(&[], "").contains("between 1 and 8192"));
    assert!(error(&[], &"x".repeat(8193)).contains("between 1 and 8192"));
    assert!(error(&[("k", "$.a")], r#"{"a": <k>"#).contains("not valid JSON"));
    assert!(error(&[("k", "$.a")], r#"{<k>: 1}"#).contains("object key"));
    assert!(error(&[("k", "$.a")], r#"{"<k>": 1}"#).contains("object key"));
    assert!(error(&[("k", "$.a"), ("k", "$.b")], "x").contains("twice"));
}

#[test]
fn garbage_never_panics() {
    let event = json!({"a": [1, {"b": null}], "detail": "x"});
    for template in [
        "<",
        ">",
        "<<k>>",
        "\"<k>",
        "\\",
        "{\"a\":\"\\<k>\"}",
        "<k",
        "\u{0}<k>\u{10FFFF}",
        "[<k>,<k>]",
    ] {
        if let Ok(t) = InputTransformer::new(&map(&[("k", "$.a")]), template) {
            let _ = t.apply(&event, &RESERVED);
            let _ = t.apply(&Value::Null, &RESERVED);
        }
    }
}
