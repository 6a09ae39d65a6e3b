//! The `stepyard` subcommands other than `serve`.

mod common;

use std::process::{Command, Stdio};

fn stepyard(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(common::binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_a_valid_definition() {
    let definition = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#;
    let (code, stdout, _) = stepyard(&["validate", "-"], Some(definition));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("valid"));
}

#[test]
fn validate_lists_every_problem_with_its_pointer() {
    let definition = r#"{
      "StartAt": "Check",
      "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Nowhere"}], "Default": "Done"},
        "Done": {"Type": "Succeed"},
        "Orphan": {"Type": "Pass"}
      }
    }"#;
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("bad.asl.json");
    std::fs::write(&file, definition).unwrap();
    let (code, stdout, stderr) = stepyard(&["validate", file.to_str().unwrap()], None);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("/States/Check/Choices/0/Next"), "{stdout}");
    assert!(stdout.contains("/States/Orphan"), "{stdout}");

    let (code, stdout, _) = stepyard(&["validate", "--json", file.to_str().unwrap()], None);
    assert_eq!(code, 1);
    let problems: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let pointers: Vec<&str> = problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/States/Check/Choices/0/Next"),
        "{pointers:?}"
    );
    assert!(
        problems[0]["code"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_')
    );
}

#[test]
fn validate_of_a_missing_file_is_a_clear_error() {
    let (code, _, stderr) = stepyard(&["validate", "/nonexistent/x.json"], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/x.json"), "{stderr}");
}

#[test]
fn run_prints_the_result_like_describe_execution() {
    let definition = r#"{
      "StartAt": "Add",
      "States": {
        "Add": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "Next": "Big?"},
        "Big?": {"Type": "Choice", "Choices": [{"Variable": "$.sum", "NumericGreaterThan": 10, "Next": "Big"}], "Default": "Small"},
        "Big": {"Type": "Fail", "Error": "TooBig", "Cause": "sum over 10"},
        "Small": {"Type": "Succeed"}
      }
    }"#;
    let (code, stdout, stderr) = stepyard(
        &["run", "-", "--input", r#"{"a": 2, "b": 3}"#],
        Some(definition),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(result["output"], serde_json::json!({"sum": 5}));

    let (code, stdout, _) = stepyard(
        &["run", "-", "--input", r#"{"a": 20, "b": 3}"#],
        Some(definition),
    );
    assert_eq!(code, 1);
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["status"], "FAILED");
    assert_eq!(result["error"], "TooBig");
    assert_eq!(result["cause"], "sum over 10");

    let (code, _, stderr) = stepyard(&["run", "-"], Some(r#"{"StartAt": "Nope", "States": {}}"#));
    assert_eq!(code, 2);
    assert!(stderr.contains("StartAt"), "{stderr}");
}
