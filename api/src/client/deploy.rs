//! `stepyard apply DIR` and `stepyard delete DIR`: a [`Resolved`] manifest made true on a
//! server through its REST API, one resource at a time.
//!
//! Apply is idempotent: each resource is read first and compared with what the manifest asks
//! for (with the server's defaults filled in), and only a difference is written. So a second
//! apply reports every resource `unchanged` and makes no new revision of anything.
//!
//! Order: buses, functions, task definitions, topics (and their subscriptions), state machines,
//! rules (and their targets), so that every name a later resource uses exists when it is
//! written. Delete goes the other way and counts a resource that is already gone as done.
//!
//! A function's code folder is hashed into its environment (`STEPYARD_CODE_SHA256`): editing
//! the code is a difference, so apply updates the function and its next invocation starts a
//! fresh sandbox on the new code.

use std::fmt;
use std::path::Path;

use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use stepyard_workers::functions::{DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SECONDS};

use super::manifest::{
    FunctionDecl, Resolved, RuleDecl, SubscriptionDecl, TargetDecl, TargetRef, TaskDefinitionDecl,
};
use super::{Client, Error, Result};

/// The environment variable that carries a function's code hash.
pub const CODE_HASH_VARIABLE: &str = "STEPYARD_CODE_SHA256";

/// EventBridge's defaults for a target's retry policy (what the server fills in).
const DEFAULT_RETRY_ATTEMPTS: u32 = 185;
const DEFAULT_EVENT_AGE_SECONDS: u32 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Deleted,
    /// `delete` found nothing to delete.
    AlreadyGone,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::AlreadyGone => "already gone",
        }
    }
}

/// One line of apply's or delete's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `function`, `task definition`, `topic`, `subscription`, `state machine`, `event bus`,
    /// `rule`, `target`.
    pub kind: &'static str,
    pub name: String,
    pub action: Action,
    /// What changed, or the revision made.
    pub note: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.name, self.action.as_str())?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// A summary line: `2 created, 1 updated, 5 unchanged`, or `nothing changed`.
pub fn summary(changes: &[Change]) -> String {
    let count = |action| changes.iter().filter(|c| c.action == action).count();
    let parts: Vec<String> = [
        Action::Created,
        Action::Updated,
        Action::Deleted,
        Action::AlreadyGone,
    ]
    .into_iter()
    .filter(|a| count(*a) > 0)
    .map(|a| format!("{} {}", count(a), a.as_str()))
    .collect();
    if parts.is_empty() {
        format!("nothing changed ({} unchanged)", count(Action::Unchanged))
    } else {
        let unchanged = count(Action::Unchanged);
        if unchanged > 0 {
            format!("{}, {unchanged} unchanged", parts.join(", "))
        } else {
            parts.join(", ")
        }
    }
}

/// Reports each change as it is made (the CLI prints it), and keeps them.
struct Report<'a> {
    on_change: &'a mut dyn FnMut(&Change),
    changes: Vec<Change>,
}

impl Report<'_> {
    fn add(
        &mut self,
        kind: &'static str,
        name: impl Into<String>,
        action: Action,
        note: Option<String>,
    ) {
        let change = Change {
            kind,
            name: name.into(),
            action,
            note,
        };
        (self.on_change)(&change);
        self.changes.push(change);
    }
}

/// Percent-encodes one path segment (names are validated by the server; this keeps a typo
/// from turning into another route).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The keys of `desired` whose value differs from `current`'s (a missing key is `null`).
fn differing(current: &Value, desired: &Map<String, Value>) -> Vec<String> {
    desired
        .iter()
        .filter(|(key, want)| current.get(key.as_str()).unwrap_or(&Value::Null) != *want)
        .map(|(key, _)| key.clone())
        .collect()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Deploys everything `resolved` declares.
pub async fn apply(
    client: &Client,
    resolved: &Resolved,
    on_change: &mut dyn FnMut(&Change),
) -> Result<Vec<Change>> {
    let mut report = Report {
        on_change,
        changes: Vec::new(),
    };
    let manifest = &resolved.manifest;
    for bus in &manifest.event_buses {
        if bus.name == "default" {
            continue;
        }
        let path = format!("/v1/event-buses/{}", segment(&bus.name));
        if client.get_optional(&path).await?.is_some() {
            report.add("event bus", &bus.name, Action::Unchanged, None);
        } else {
            client
                .post(
                    "/v1/event-buses",
                    &json!({"name": bus.name, "description": bus.description}),
                )
                .await?;
            report.add("event bus", &bus.name, Action::Created, None);
        }
    }
    for function in &manifest.functions {
        apply_function(client, function, &mut report).await?;
    }
    for definition in &manifest.task_definitions {
        apply_task_definition(client, definition, &mut report).await?;
    }
    for topic in &manifest.topics {
        let path = format!("/v1/topics/{}", segment(&topic.name));
        if client.get_optional(&path).await?.is_some() {
            report.add("topic", &topic.name, Action::Unchanged, None);
        } else {
            client
                .post("/v1/topics", &json!({"name": topic.name}))
                .await?;
            report.add("topic", &topic.name, Action::Created, None);
        }
        apply_subscriptions(client, &topic.name, &topic.subscriptions, &mut report).await?;
    }
    for (machine, definition) in manifest.state_machines.iter().zip(&resolved.definitions) {
        let kind = machine.kind.clone().unwrap_or_else(|| "STANDARD".into());
        let path = format!("/v1/state-machines/{}", segment(&machine.name));
        match client.get_optional(&path).await? {
            None => {
                client
                    .post(
                        "/v1/state-machines",
                        &json!({"name": machine.name, "definition": definition, "type": kind}),
                    )
                    .await?;
                report.add("state machine", &machine.name, Action::Created, None);
            }
            Some(current) => {
                if current["type"] != Value::String(kind.clone()) {
                    return Err(Error::Usage(format!(
                        "state machine '{}' is {} on the server but {kind} in the manifest; a state machine's type cannot change: delete it first",
                        machine.name,
                        current["type"].as_str().unwrap_or("?")
                    )));
                }
                if &current["definition"] == definition {
                    report.add("state machine", &machine.name, Action::Unchanged, None);
                } else {
                    client
                        .put(&path, &json!({"definition": definition}))
                        .await?;
                    report.add(
                        "state machine",
                        &machine.name,
                        Action::Updated,
                        Some("definition".into()),
                    );
                }
            }
        }
    }
    for rule in &manifest.rules {
        apply_rule(client, rule, &mut report).await?;
    }
    Ok(report.changes)
}

/// The hash of a code folder: every file's relative path and bytes, in path order. Hidden
/// entries and build or cache folders (`__pycache__`, `target`, `node_modules`) are skipped,
/// because running the code writes them.
pub fn code_hash(dir: &Path) -> std::io::Result<String> {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.')
                || matches!(name.as_ref(), "__pycache__" | "target" | "node_modules")
                || name.ends_with(".pyc")
            {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), files)?;
            } else if kind.is_file() || kind.is_symlink() {
                files.push(entry.path());
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        let bytes = std::fs::read(&file)?;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

async fn apply_function(
    client: &Client,
    function: &FunctionDecl,
    report: &mut Report<'_>,
) -> Result<()> {
    let mut environment = function.environment.clone();
    if let Some(code) = &function.code {
        let hash = code_hash(code).map_err(|e| {
            Error::Usage(format!(
                "function '{}': cannot read {}: {e}",
                function.name,
                code.display()
            ))
        })?;
        environment.insert(CODE_HASH_VARIABLE.into(), hash);
    }
    let desired = object(json!({
        "description": function.description,
        "runtime": function.runtime,
        "command": function.command,
        "code": function.code.as_ref().map(|c| c.display().to_string()),
        "url": function.url,
        "handler": function.handler,
        "environment": environment,
        "timeout_seconds": function.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        "memory_size_mb": function.memory_size_mb.unwrap_or(DEFAULT_MEMORY_MB),
        "reserved_concurrency": function.reserved_concurrency,
    }));
    let mut body = desired.clone();
    body.insert("name".into(), Value::String(function.name.clone()));
    let body = Value::Object(body);
    let path = format!("/v1/functions/{}", segment(&function.name));
    match client.get_optional(&path).await? {
        None => {
            client.post("/v1/functions", &body).await?;
            report.add("function", &function.name, Action::Created, None);
        }
        Some(current) => {
            let changed = differing(&current, &desired);
            if changed.is_empty() {
                report.add("function", &function.name, Action::Unchanged, None);
            } else {
                client.put(&path, &body).await?;
                let changed = changed
                    .iter()
                    .map(|key| {
                        if key == "environment"
                            && current["environment"][CODE_HASH_VARIABLE]
                                != desired["environment"][CODE_HASH_VARIABLE]
                        {
                            "code".to_string()
                        } else {
                            key.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                report.add("function", &function.name, Action::Updated, Some(changed));
            }
        }
    }
    Ok(())
}

fn task_definition_body(definition: &TaskDefinitionDecl) -> Map<String, Value> {
    let mounts: Vec<Value> = definition
        .mounts
        .iter()
        .map(|m| json!({"source": m.source.display().to_string(), "target": m.target}))
        .collect();
    object(json!({
        "family": definition.family,
        "image": definition.image,
        "command": definition.command,
        "entrypoint": definition.entrypoint,
        "environment": definition.environment,
        "working_dir": definition.working_dir,
        "cpu": definition.cpu,
        "memory_mib": definition.memory_mib,
        "pids_limit": definition.pids_limit,
        "network_mode": definition.network_mode.clone().unwrap_or_else(|| "none".into()),
        "mounts": mounts,
        "timeout_seconds": definition.timeout_seconds,
        "result": definition.result.clone().unwrap_or_else(|| "auto".into()),
    }))
}

/// The latest ACTIVE revision of a family, if any.
async fn active_revision(client: &Client, family: &str) -> Result<Option<Value>> {
    let path = format!("/v1/task-definitions/{}", segment(family));
    let Some(list) = client.get_optional(&path).await? else {
        return Ok(None);
    };
    Ok(list["task_definitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["status"] == "ACTIVE")
        .max_by_key(|d| d["revision"].as_u64().unwrap_or(0))
        .cloned())
}

async fn apply_task_definition(
    client: &Client,
    definition: &TaskDefinitionDecl,
    report: &mut Report<'_>,
) -> Result<()> {
    let desired = task_definition_body(definition);
    let body = Value::Object(desired.clone());
    match active_revision(client, &definition.family).await? {
        None => {
            let made = client.post("/v1/task-definitions", &body).await?;
            report.add(
                "task definition",
                &definition.family,
                Action::Created,
                made["name"].as_str().map(str::to_string),
            );
        }
        Some(current) => {
            let changed = differing(&current, &desired);
            if changed.is_empty() {
                report.add(
                    "task definition",
                    &definition.family,
                    Action::Unchanged,
                    current["name"].as_str().map(str::to_string),
                );
            } else {
                let made = client.post("/v1/task-definitions", &body).await?;
                report.add(
                    "task definition",
                    &definition.family,
                    Action::Updated,
                    Some(format!(
                        "{}; new revision {}",
                        changed.join(", "),
                        made["name"].as_str().unwrap_or("?")
                    )),
                );
            }
        }
    }
    Ok(())
}

/// Every page of a list.
async fn list_all(client: &Client, path: &str, field: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut query = vec![("max_results", "1000".to_string())];
        if let Some(token) = &next {
            query.push(("next_token", token.clone()));
        }
        let page = client.request(Method::GET, path, &query, None).await?;
        items.extend(page[field].as_array().cloned().unwrap_or_default());
        match page["next_token"].as_str() {
            Some(token) if !token.is_empty() => next = Some(token.to_string()),
            _ => return Ok(items),
        }
    }
}

fn subscription_body(sub: &SubscriptionDecl) -> Value {
    let mut body = json!({
        "protocol": sub.protocol,
        "endpoint": sub.endpoint,
        "raw_message_delivery": sub.raw_message_delivery,
    });
    if let Some(filter) = &sub.filter_policy {
        body["filter_policy"] = filter.clone();
    }
    if let Some(policy) = &sub.delivery_policy {
        body["delivery_policy"] = json!(policy);
    }
    body
}

fn subscription_matches(current: &Value, sub: &SubscriptionDecl) -> bool {
    current["filter_policy"] == sub.filter_policy.clone().unwrap_or(Value::Null)
        && current["raw_message_delivery"] == sub.raw_message_delivery
        && sub
            .delivery_policy
            .as_ref()
            .is_none_or(|p| current["delivery_policy"] == json!(p))
}

async fn apply_subscriptions(
    client: &Client,
    topic: &str,
    subscriptions: &[SubscriptionDecl],
    report: &mut Report<'_>,
) -> Result<()> {
    let path = format!("/v1/topics/{}/subscriptions", segment(topic));
    let existing = list_all(client, &path, "subscriptions").await?;
    let name_of = |protocol: &str, endpoint: &str| format!("{topic} {protocol} {endpoint}");
    for sub in subscriptions {
        let found = existing.iter().find(|s| {
            s["protocol"] == sub.protocol.as_str() && s["endpoint"] == sub.endpoint.as_str()
        });
        let name = name_of(&sub.protocol, &sub.endpoint);
        match found {
            Some(current) if subscription_matches(current, sub) => {
                report.add("subscription", name, Action::Unchanged, None);
            }
            Some(current) => {
                let id = current["id"].as_str().unwrap_or_default();
                client
                    .delete(&format!("/v1/subscriptions/{}", segment(id)))
                    .await?;
                client.post(&path, &subscription_body(sub)).await?;
                report.add(
                    "subscription",
                    name,
                    Action::Updated,
                    Some("settings".into()),
                );
            }
            None => {
                client.post(&path, &subscription_body(sub)).await?;
                report.add("subscription", name, Action::Created, None);
            }
        }
    }
    for current in &existing {
        let declared = subscriptions.iter().any(|s| {
            current["protocol"] == s.protocol.as_str() && current["endpoint"] == s.endpoint.as_str()
        });
        if !declared {
            let id = current["id"].as_str().unwrap_or_default();
            client
                .delete(&format!("/v1/subscriptions/{}", segment(id)))
                .await?;
            report.add(
                "subscription",
                name_of(
                    current["protocol"].as_str().unwrap_or("?"),
                    current["endpoint"].as_str().unwrap_or("?"),
                ),
                Action::Deleted,
                Some("not in the manifest".into()),
            );
        }
    }
    Ok(())
}

async fn target_arn(client: &Client, target: &TargetDecl) -> Result<String> {
    let reference = target.reference().map_err(Error::Usage)?;
    let (path, what, name) = match &reference {
        TargetRef::Arn(arn) => return Ok(arn.clone()),
        TargetRef::StateMachine(n) => (
            format!("/v1/state-machines/{}", segment(n)),
            "state machine",
            n,
        ),
        TargetRef::Function(n) => (format!("/v1/functions/{}", segment(n)), "function", n),
        TargetRef::Topic(n) => (format!("/v1/topics/{}", segment(n)), "topic", n),
        TargetRef::EventBus(n) => (format!("/v1/event-buses/{}", segment(n)), "event bus", n),
    };
    let found = client.get_optional(&path).await?.ok_or_else(|| {
        Error::Usage(format!(
            "target '{}' names {what} '{name}', which is not on the server (declare it in the manifest)",
            target.id
        ))
    })?;
    found["arn"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Usage(format!("the server's {what} '{name}' has no arn")))
}

/// A target as the server lists it (absent fields left out, retry defaults filled in).
async fn target_body(client: &Client, target: &TargetDecl) -> Result<Value> {
    let mut body = json!({"id": target.id, "arn": target_arn(client, target).await?});
    if let Some(input) = &target.input {
        body["input"] = input.clone();
    }
    if let Some(path) = &target.input_path {
        body["input_path"] = json!(path);
    }
    if let Some(transformer) = &target.input_transformer {
        body["input_transformer"] = json!({
            "input_paths_map": transformer.input_paths_map,
            "input_template": transformer.input_template,
        });
    }
    if let Some(policy) = &target.retry_policy {
        body["retry_policy"] = json!({
            "maximum_retry_attempts": policy.maximum_retry_attempts.unwrap_or(DEFAULT_RETRY_ATTEMPTS),
            "maximum_event_age_seconds": policy.maximum_event_age_seconds.unwrap_or(DEFAULT_EVENT_AGE_SECONDS),
        });
    }
    Ok(body)
}

async fn apply_rule(client: &Client, rule: &RuleDecl, report: &mut Report<'_>) -> Result<()> {
    let path = format!(
        "/v1/event-buses/{}/rules/{}",
        segment(&rule.bus),
        segment(&rule.name)
    );
    let name = format!("{}/{}", rule.bus, rule.name);
    let desired = object(json!({
        "event_pattern": rule.event_pattern,
        "schedule_expression": rule.schedule,
        "state": rule.state.clone().unwrap_or_else(|| "ENABLED".into()),
        "description": rule.description,
    }));
    let body = Value::Object(desired.clone());
    match client.get_optional(&path).await? {
        None => {
            client.put(&path, &body).await?;
            report.add("rule", &name, Action::Created, None);
        }
        Some(current) => {
            let changed = differing(&current, &desired);
            if changed.is_empty() {
                report.add("rule", &name, Action::Unchanged, None);
            } else {
                client.put(&path, &body).await?;
                report.add("rule", &name, Action::Updated, Some(changed.join(", ")));
            }
        }
    }
    let targets_path = format!("{path}/targets");
    let existing = client.get(&targets_path).await?;
    let existing = existing["targets"].as_array().cloned().unwrap_or_default();
    let mut to_put = Vec::new();
    for target in &rule.targets {
        let desired = target_body(client, target).await?;
        let current = existing.iter().find(|t| t["id"] == target.id.as_str());
        let target_name = format!("{name}/{}", target.id);
        match current {
            Some(current) if *current == desired => {
                report.add("target", target_name, Action::Unchanged, None);
            }
            Some(_) => {
                to_put.push(desired);
                report.add("target", target_name, Action::Updated, None);
            }
            None => {
                to_put.push(desired);
                report.add("target", target_name, Action::Created, None);
            }
        }
    }
    if !to_put.is_empty() {
        let answer = client
            .put(&targets_path, &json!({"targets": to_put}))
            .await?;
        if let Some(failure) = answer["failed"].as_array().and_then(|f| f.first()) {
            return Err(Error::Usage(format!(
                "rule {name}: target '{}' was refused: {} {}",
                failure["target_id"].as_str().unwrap_or("?"),
                failure["error_code"].as_str().unwrap_or("?"),
                failure["error_message"].as_str().unwrap_or("")
            )));
        }
    }
    for current in &existing {
        let id = current["id"].as_str().unwrap_or_default();
        if !rule.targets.iter().any(|t| t.id == id) {
            client
                .delete(&format!("{targets_path}/{}", segment(id)))
                .await?;
            report.add(
                "target",
                format!("{name}/{id}"),
                Action::Deleted,
                Some("not in the manifest".into()),
            );
        }
    }
    Ok(())
}

/// Removes everything `resolved` declares, in reverse order; what is already gone is reported
/// as such, not as an error.
pub async fn delete(
    client: &Client,
    resolved: &Resolved,
    on_change: &mut dyn FnMut(&Change),
) -> Result<Vec<Change>> {
    let mut report = Report {
        on_change,
        changes: Vec::new(),
    };
    let manifest = &resolved.manifest;
    for rule in manifest.rules.iter().rev() {
        let path = format!(
            "/v1/event-buses/{}/rules/{}",
            segment(&rule.bus),
            segment(&rule.name)
        );
        let name = format!("{}/{}", rule.bus, rule.name);
        if client.get_optional(&path).await?.is_none() {
            report.add("rule", name, Action::AlreadyGone, None);
            continue;
        }
        // `force` takes the targets with it.
        match client
            .request(Method::DELETE, &path, &[("force", "true".into())], None)
            .await
        {
            Ok(_) => report.add("rule", name, Action::Deleted, None),
            Err(e) if e.is_not_found() => report.add("rule", name, Action::AlreadyGone, None),
            Err(e) => return Err(e),
        }
    }
    for machine in manifest.state_machines.iter().rev() {
        let path = format!("/v1/state-machines/{}", segment(&machine.name));
        let action = gone_or_deleted(client, &path).await?;
        report.add("state machine", &machine.name, action, None);
    }
    for topic in manifest.topics.iter().rev() {
        let path = format!("/v1/topics/{}", segment(&topic.name));
        let action = gone_or_deleted(client, &path).await?;
        report.add(
            "topic",
            &topic.name,
            action,
            Some("with its subscriptions".into()).filter(|_| action == Action::Deleted),
        );
    }
    for definition in manifest.task_definitions.iter().rev() {
        let mut deregistered = Vec::new();
        while let Some(current) = active_revision(client, &definition.family).await? {
            let revision = current["revision"].as_u64().unwrap_or(0);
            let path = format!(
                "/v1/task-definitions/{}/{revision}",
                segment(&definition.family)
            );
            client.delete(&path).await?;
            deregistered.push(current["name"].as_str().unwrap_or("?").to_string());
        }
        if deregistered.is_empty() {
            report.add(
                "task definition",
                &definition.family,
                Action::AlreadyGone,
                None,
            );
        } else {
            report.add(
                "task definition",
                &definition.family,
                Action::Deleted,
                Some(format!("deregistered {}", deregistered.join(", "))),
            );
        }
    }
    for function in manifest.functions.iter().rev() {
        let path = format!("/v1/functions/{}", segment(&function.name));
        let action = gone_or_deleted(client, &path).await?;
        report.add("function", &function.name, action, None);
    }
    for bus in manifest.event_buses.iter().rev() {
        if bus.name == "default" {
            continue;
        }
        let path = format!("/v1/event-buses/{}", segment(&bus.name));
        let action = gone_or_deleted(client, &path).await?;
        report.add("event bus", &bus.name, action, None);
    }
    Ok(report.changes)
}

/// Reads first: some deletes answer success for what does not exist (as AWS's do).
async fn gone_or_deleted(client: &Client, path: &str) -> Result<Action> {
    if client.get_optional(path).await?.is_none() {
        return Ok(Action::AlreadyGone);
    }
    Ok(if client.delete(path).await? {
        Action::Deleted
    } else {
        Action::AlreadyGone
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_one_line_each_and_a_summary() {
        let change = Change {
            kind: "task definition",
            name: "scan".into(),
            action: Action::Updated,
            note: Some("image; new revision scan:2".into()),
        };
        assert_eq!(
            change.to_string(),
            "task definition scan: updated (image; new revision scan:2)"
        );
        let unchanged = Change {
            action: Action::Unchanged,
            note: None,
            ..change.clone()
        };
        assert_eq!(
            summary(&[unchanged.clone(), unchanged.clone()]),
            "nothing changed (2 unchanged)"
        );
        assert_eq!(summary(&[change, unchanged]), "1 updated, 1 unchanged");
    }

    #[test]
    fn differences_count_a_missing_field_as_null() {
        let current = json!({"a": 1, "b": null, "extra": true});
        let desired = object(json!({"a": 1, "b": null, "c": null}));
        assert!(differing(&current, &desired).is_empty());
        let desired = object(json!({"a": 2, "c": "x"}));
        assert_eq!(differing(&current, &desired), vec!["a", "c"]);
    }

    #[test]
    fn the_code_hash_follows_the_code_and_ignores_caches() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("app.py"), "def handler(e, c): return 1\n").unwrap();
        let first = code_hash(temp.path()).unwrap();
        std::fs::create_dir(temp.path().join("__pycache__")).unwrap();
        std::fs::write(temp.path().join("__pycache__/app.cpython-311.pyc"), "x").unwrap();
        assert_eq!(code_hash(temp.path()).unwrap(), first);
        std::fs::write(temp.path().join("app.py"), "def handler(e, c): return 2\n").unwrap();
        assert_ne!(code_hash(temp.path()).unwrap(), first);
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("scan-prs_1"), "scan-prs_1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
