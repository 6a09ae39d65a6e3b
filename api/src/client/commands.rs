//! `stepyard events put` and `stepyard executions list / describe / history`: the common loop
//! in a terminal. Each prints readable lines, or the server's JSON with `--json`; the
//! formatting is pure (`format_*`) so it is tested without a server.

use reqwest::Method;
use serde_json::{Value, json};

use super::deploy::segment;
use super::{Client, Error, Result};

/// `SM/NAME` or an execution ARN (`arn:aws:states:R:A:execution:SM:NAME`) → (SM, NAME).
pub fn execution_ref(text: &str) -> Result<(String, String)> {
    if let Some(rest) = text.split_once(":execution:").map(|(_, rest)| rest)
        && text.starts_with("arn:")
        && let Some((machine, name)) = rest.split_once(':')
    {
        return Ok((machine.to_string(), name.to_string()));
    }
    match text.split_once('/') {
        Some((machine, name)) if !machine.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((machine.to_string(), name.to_string()))
        }
        _ => Err(Error::Usage(format!(
            "'{text}' is neither STATE_MACHINE/EXECUTION nor an execution ARN"
        ))),
    }
}

/// PutEvents of one event; the answer's entry (its `event_id`, or why it failed).
pub async fn put_event(
    client: &Client,
    bus: &str,
    source: &str,
    detail_type: &str,
    detail: &Value,
    resources: &[String],
) -> Result<Value> {
    let answer = client
        .post(
            &format!("/v1/event-buses/{}/events", segment(bus)),
            &json!({"entries": [{
                "source": source, "detail_type": detail_type,
                "detail": detail, "resources": resources,
            }]}),
        )
        .await?;
    let entry = answer["entries"][0].clone();
    if let Some(code) = entry["error_code"].as_str() {
        return Err(Error::Usage(format!(
            "the event was refused: {code}: {}",
            entry["error_message"].as_str().unwrap_or_default()
        )));
    }
    Ok(entry)
}

/// Executions, newest first: of one state machine, or of every one, optionally with one
/// status, at most `limit` in all.
pub async fn list_executions(
    client: &Client,
    state_machine: Option<&str>,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<Value>> {
    let machines: Vec<String> = match state_machine {
        Some(name) => vec![name.to_string()],
        None => {
            let list = client
                .request(
                    Method::GET,
                    "/v1/state-machines",
                    &[("max_results", "1000".into())],
                    None,
                )
                .await?;
            list["state_machines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["name"].as_str().map(str::to_string))
                .collect()
        }
    };
    let mut all = Vec::new();
    for machine in machines {
        // Up to `limit` of each machine, so the newest `limit` of all are among them.
        let mut fetched = 0;
        let mut next: Option<String> = None;
        loop {
            let remaining = limit.saturating_sub(fetched);
            if remaining == 0 {
                break;
            }
            let mut query = vec![("max_results", remaining.min(1000).to_string())];
            if let Some(status) = status {
                query.push(("status", status.to_string()));
            }
            if let Some(token) = &next {
                query.push(("next_token", token.clone()));
            }
            let page = client
                .request(
                    Method::GET,
                    &format!("/v1/state-machines/{}/executions", segment(&machine)),
                    &query,
                    None,
                )
                .await?;
            let items = page["executions"].as_array().cloned().unwrap_or_default();
            fetched += items.len();
            all.extend(items);
            match page["next_token"].as_str() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
    }
    // RFC 3339 times of one format sort as text.
    all.sort_by(|a, b| text(&b["started_at"]).cmp(text(&a["started_at"])));
    all.truncate(limit);
    Ok(all)
}

pub async fn describe_execution(client: &Client, reference: &str) -> Result<Value> {
    let (machine, name) = execution_ref(reference)?;
    client
        .get(&format!(
            "/v1/state-machines/{}/executions/{}",
            segment(&machine),
            segment(&name)
        ))
        .await
}

/// Every history event, oldest first (all pages).
pub async fn execution_history(client: &Client, reference: &str) -> Result<Vec<Value>> {
    let (machine, name) = execution_ref(reference)?;
    let path = format!(
        "/v1/state-machines/{}/executions/{}/history",
        segment(&machine),
        segment(&name)
    );
    let mut events = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut query = vec![("max_results", "1000".to_string())];
        if let Some(token) = &next {
            query.push(("next_token", token.clone()));
        }
        let page = client.request(Method::GET, &path, &query, None).await?;
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["next_token"].as_str() {
            Some(token) if !token.is_empty() => next = Some(token.to_string()),
            _ => return Ok(events),
        }
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// A state machine's name out of its ARN (`...:stateMachine:NAME`).
fn machine_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// A table: one execution a line, columns padded to their widest cell.
pub fn format_executions(executions: &[Value]) -> String {
    if executions.is_empty() {
        return "no executions\n".into();
    }
    let mut rows = vec![[
        "STATE MACHINE".to_string(),
        "EXECUTION".to_string(),
        "STATUS".to_string(),
        "STARTED".to_string(),
        "STOPPED".to_string(),
    ]];
    for e in executions {
        rows.push([
            machine_of(text(&e["state_machine_arn"])).to_string(),
            text(&e["name"]).to_string(),
            text(&e["status"]).to_string(),
            text(&e["started_at"]).to_string(),
            text(&e["stopped_at"]).to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// JSON on one line, shortened past `max` characters.
fn short(value: &Value, max: usize) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > max {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// `key: value` lines; input and output pretty-printed.
pub fn format_execution(e: &Value) -> String {
    let mut out = String::new();
    for (label, key) in [
        ("execution", "arn"),
        ("status", "status"),
        ("started", "started_at"),
        ("stopped", "stopped_at"),
        ("error", "error"),
        ("cause", "cause"),
    ] {
        if let Some(value) = e.get(key).filter(|v| !v.is_null()) {
            out.push_str(&format!("{label:<10}{}\n", text(value)));
        }
    }
    for (label, key) in [("input", "input"), ("output", "output")] {
        if let Some(value) = e.get(key) {
            let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
            out.push_str(&format!("{label}:\n"));
            for line in pretty.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

/// One line per event: id, time, type, and what it is about (state name, error, output).
pub fn format_history(events: &[Value]) -> String {
    let mut out = String::new();
    for event in events {
        let details = &event["details"];
        let mut about = Vec::new();
        if let Some(name) = details["name"].as_str() {
            about.push(name.to_string());
        }
        if let Some(resource) = details["resource"].as_str() {
            let kind = details["resourceType"].as_str().unwrap_or_default();
            about.push(
                format!("{kind}:{resource}")
                    .trim_start_matches(':')
                    .to_string(),
            );
        }
        if let Some(error) = details["error"].as_str() {
            about.push(format!("error={error}"));
        }
        if let Some(cause) = details.get("cause").filter(|c| !c.is_null()) {
            about.push(format!("cause={}", short(cause, 80)));
        }
        if let Some(index) = details["index"].as_u64() {
            about.push(format!("index={index}"));
        }
        if let Some(output) = details.get("output").filter(|o| !o.is_null()) {
            about.push(format!("output={}", short(output, 80)));
        }
        let line = format!(
            "{:>4}  {}  {:<28}  {}",
            event["id"].as_u64().unwrap_or(0),
            text(&event["timestamp"]),
            text(&event["type"]),
            about.join("  ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_are_named_by_state_machine_and_name_or_by_arn() {
        assert_eq!(
            execution_ref("scan/run-1").unwrap(),
            ("scan".to_string(), "run-1".to_string())
        );
        assert_eq!(
            execution_ref("arn:aws:states:us-east-1:123456789012:execution:scan:run-1").unwrap(),
            ("scan".to_string(), "run-1".to_string())
        );
        assert!(execution_ref("scan").is_err());
        assert!(execution_ref("a/b/c").is_err());
    }

    #[test]
    fn a_list_is_a_padded_table() {
        let table = format_executions(&[
            json!({"state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:scan",
                   "name": "a", "status": "SUCCEEDED", "started_at": "t1", "stopped_at": "t2"}),
            json!({"state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:code-scanning",
                   "name": "long-name", "status": "RUNNING", "started_at": "t3"}),
        ]);
        assert_eq!(
            table,
            "STATE MACHINE  EXECUTION  STATUS     STARTED  STOPPED\n\
             scan           a          SUCCEEDED  t1       t2\n\
             code-scanning  long-name  RUNNING    t3       -\n"
        );
        assert_eq!(format_executions(&[]), "no executions\n");
    }

    #[test]
    fn history_lines_say_what_each_event_is_about() {
        let lines = format_history(&[
            json!({"id": 2, "timestamp": "t", "type": "TaskStateEntered",
                   "details": {"name": "Parse", "input": "{}"}}),
            json!({"id": 3, "timestamp": "t", "type": "TaskScheduled",
                   "details": {"resource": "invoke", "resourceType": "lambda"}}),
            json!({"id": 9, "timestamp": "t", "type": "ExecutionFailed",
                   "details": {"error": "States.TaskFailed", "cause": "boom"}}),
        ]);
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[0], "   2  t  TaskStateEntered              Parse");
        assert_eq!(
            lines[1],
            "   3  t  TaskScheduled                 lambda:invoke"
        );
        assert_eq!(
            lines[2],
            "   9  t  ExecutionFailed               error=States.TaskFailed  cause=boom"
        );
    }

    #[test]
    fn a_description_lists_fields_then_input_and_output() {
        let text = format_execution(&json!({"arn": "arn:x", "status": "SUCCEEDED",
            "started_at": "t1", "stopped_at": "t2", "input": {"a": 1}, "output": [1]}));
        assert_eq!(
            text,
            "execution arn:x\nstatus    SUCCEEDED\nstarted   t1\nstopped   t2\ninput:\n  {\n    \"a\": 1\n  }\noutput:\n  [\n    1\n  ]\n"
        );
    }
}
