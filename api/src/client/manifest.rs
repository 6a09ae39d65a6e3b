//! `stepyard.toml`: what `stepyard apply DIR` deploys, and how it is read.
//!
//! Reading is two steps, both without I/O to the server:
//!
//! 1. [`Manifest::parse`]: the TOML text, with `${VAR}` / `${VAR:-default}` in any string value
//!    replaced from the environment (`$${` is a literal `${`), into typed declarations. Unknown
//!    keys are refused, so a typo is an error and not a silently ignored setting.
//! 2. [`Manifest::resolve`]: relative paths (function code folders, bind-mount sources, ASL
//!    files) against the manifest's folder, made absolute and checked to exist; ASL files read
//!    and parsed as JSON. ASL files are taken verbatim (no `${...}`): they stay as written for AWS.
//!
//! Nothing in a manifest is AWS-specific: targets name a state machine, function, topic or bus
//! by name, and the server's ARNs are looked up when applying.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The file `apply DIR` reads.
pub const MANIFEST_FILE: &str = "stepyard.toml";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub event_buses: Vec<EventBusDecl>,
    #[serde(default)]
    pub functions: Vec<FunctionDecl>,
    #[serde(default)]
    pub task_definitions: Vec<TaskDefinitionDecl>,
    #[serde(default)]
    pub topics: Vec<TopicDecl>,
    #[serde(default)]
    pub state_machines: Vec<StateMachineDecl>,
    #[serde(default)]
    pub rules: Vec<RuleDecl>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBusDecl {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionDecl {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `process` (default: `command` run in `code`) or `http` (`url`).
    #[serde(default = "process")]
    pub runtime: String,
    pub command: Option<Vec<String>>,
    /// The code folder, relative to the manifest's folder.
    pub code: Option<PathBuf>,
    pub url: Option<String>,
    pub handler: Option<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: Option<u32>,
    pub memory_size_mb: Option<u32>,
    pub reserved_concurrency: Option<u32>,
}

fn process() -> String {
    "process".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountDecl {
    /// A host folder, relative to the manifest's folder.
    pub source: PathBuf,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinitionDecl {
    pub family: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub cpu: Option<u32>,
    pub memory_mib: Option<u64>,
    pub pids_limit: Option<i64>,
    pub network_mode: Option<String>,
    #[serde(default)]
    pub mounts: Vec<MountDecl>,
    pub timeout_seconds: Option<u64>,
    pub result: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicDecl {
    pub name: String,
    /// The topic's subscriptions; on apply, subscriptions of the topic not listed here are removed.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionDecl>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDecl {
    /// `http`, `https`, `email`, `function` or `eventbus`.
    pub protocol: String,
    pub endpoint: String,
    pub filter_policy: Option<Value>,
    pub delivery_policy: Option<DeliveryPolicyDecl>,
    #[serde(default)]
    pub raw_message_delivery: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPolicyDecl {
    pub num_retries: u32,
    pub min_delay_seconds: u32,
    pub max_delay_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateMachineDecl {
    pub name: String,
    /// The ASL file, relative to the manifest's folder.
    pub definition: PathBuf,
    /// `STANDARD` (default) or `EXPRESS`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDecl {
    pub name: String,
    /// The bus (default `default`).
    #[serde(default = "default_bus")]
    pub bus: String,
    pub event_pattern: Option<Value>,
    /// `rate(...)`, `cron(...)` or `at(...)`.
    pub schedule: Option<String>,
    /// `ENABLED` (default) or `DISABLED`.
    pub state: Option<String>,
    pub description: Option<String>,
    /// On apply, targets of the rule not listed here are removed.
    #[serde(default)]
    pub targets: Vec<TargetDecl>,
}

fn default_bus() -> String {
    "default".into()
}

/// What a target points at: exactly one of the name fields or `arn`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDecl {
    pub id: String,
    pub state_machine: Option<String>,
    pub function: Option<String>,
    pub topic: Option<String>,
    pub event_bus: Option<String>,
    pub arn: Option<String>,
    pub input: Option<Value>,
    pub input_path: Option<String>,
    pub input_transformer: Option<InputTransformerDecl>,
    pub retry_policy: Option<RetryPolicyDecl>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputTransformerDecl {
    #[serde(default)]
    pub input_paths_map: BTreeMap<String, String>,
    pub input_template: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyDecl {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_seconds: Option<u32>,
}

/// What a target resolves to once the server's ARNs are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    StateMachine(String),
    Function(String),
    Topic(String),
    EventBus(String),
    Arn(String),
}

impl TargetDecl {
    pub fn reference(&self) -> Result<TargetRef, String> {
        let given: Vec<TargetRef> = [
            self.state_machine.clone().map(TargetRef::StateMachine),
            self.function.clone().map(TargetRef::Function),
            self.topic.clone().map(TargetRef::Topic),
            self.event_bus.clone().map(TargetRef::EventBus),
            self.arn.clone().map(TargetRef::Arn),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[TargetRef; 1]>::try_from(given) {
            Ok([one]) => Ok(one),
            Err(_) => Err(format!(
                "target '{}' needs exactly one of state_machine, function, topic, event_bus or arn",
                self.id
            )),
        }
    }
}

/// A manifest whose paths are absolute and whose ASL files are loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The ASL of each state machine, in `manifest.state_machines` order.
    pub definitions: Vec<Value>,
}

impl Manifest {
    /// Reads `DIR/stepyard.toml` and resolves it against `DIR`.
    pub fn load(
        dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        let manifest = Manifest::parse(&text, env).map_err(|message| ManifestError::Invalid {
            path: path.clone(),
            message,
        })?;
        manifest.resolve(dir)
    }

    /// The TOML text with `${...}` filled from `env`, checked for duplicate names.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Manifest, String> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
        interpolate_value(&mut value, &env, "")?;
        let manifest = Manifest::deserialize(value).map_err(|e| e.to_string())?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        fn unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
            let mut seen = HashSet::new();
            for name in names {
                if !seen.insert(name) {
                    return Err(format!("{kind} '{name}' is declared twice"));
                }
            }
            Ok(())
        }
        unique(
            "event bus",
            self.event_buses.iter().map(|b| b.name.as_str()),
        )?;
        unique("function", self.functions.iter().map(|f| f.name.as_str()))?;
        unique(
            "task definition",
            self.task_definitions.iter().map(|t| t.family.as_str()),
        )?;
        unique("topic", self.topics.iter().map(|t| t.name.as_str()))?;
        unique(
            "state machine",
            self.state_machines.iter().map(|s| s.name.as_str()),
        )?;
        let rule_keys: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("{}/{}", r.bus, r.name))
            .collect();
        unique("rule", rule_keys.iter().map(String::as_str))?;
        for function in &self.functions {
            match function.runtime.as_str() {
                "process" if function.command.is_none() || function.code.is_none() => {
                    return Err(format!(
                        "function '{}': a process function needs `command` and `code`",
                        function.name
                    ));
                }
                "http" if function.url.is_none() => {
                    return Err(format!(
                        "function '{}': an http function needs `url`",
                        function.name
                    ));
                }
                "process" | "http" => {}
                other => {
                    return Err(format!(
                        "function '{}': runtime '{other}' is neither process nor http",
                        function.name
                    ));
                }
            }
        }
        for topic in &self.topics {
            let keys: Vec<String> = topic
                .subscriptions
                .iter()
                .map(|s| format!("{} {}", s.protocol, s.endpoint))
                .collect();
            unique(
                &format!("subscription of topic '{}'", topic.name),
                keys.iter().map(String::as_str),
            )?;
        }
        for rule in &self.rules {
            if rule.event_pattern.is_some() == rule.schedule.is_some() {
                return Err(format!(
                    "rule '{}' needs exactly one of event_pattern and schedule",
                    rule.name
                ));
            }
            unique(
                &format!("target of rule '{}'", rule.name),
                rule.targets.iter().map(|t| t.id.as_str()),
            )?;
            for target in &rule.targets {
                target.reference()?;
            }
        }
        Ok(())
    }

    /// Makes every path absolute (against `dir`), checks it exists, loads the ASL files.
    pub fn resolve(mut self, dir: &Path) -> Result<Resolved, ManifestError> {
        let dir = dir.canonicalize().map_err(|source| ManifestError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let absolute = |path: &Path| -> Result<PathBuf, ManifestError> {
            let joined = dir.join(path);
            joined.canonicalize().map_err(|source| ManifestError::Read {
                path: joined,
                source,
            })
        };
        for function in &mut self.functions {
            if let Some(code) = &function.code {
                function.code = Some(absolute(code)?);
            }
        }
        for definition in &mut self.task_definitions {
            for mount in &mut definition.mounts {
                mount.source = absolute(&mount.source)?;
            }
        }
        let mut definitions = Vec::with_capacity(self.state_machines.len());
        for machine in &mut self.state_machines {
            let path = absolute(&machine.definition)?;
            let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
                path: path.clone(),
                source,
            })?;
            let value: Value = serde_json::from_str(&text).map_err(|e| ManifestError::Invalid {
                path: path.clone(),
                message: format!("not JSON: {e}"),
            })?;
            machine.definition = path;
            definitions.push(value);
        }
        Ok(Resolved {
            dir,
            manifest: self,
            definitions,
        })
    }
}

fn interpolate_value(
    value: &mut toml::Value,
    env: &impl Fn(&str) -> Option<String>,
    at: &str,
) -> Result<(), String> {
    match value {
        toml::Value::String(text) => {
            *text = interpolate(text, env).map_err(|e| format!("{at}: {e}"))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, env, &format!("{at}[{i}]"))?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let at = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                interpolate_value(item, env, &at)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `${VAR}` is the variable (an error when unset), `${VAR:-default}` the default when it is
/// unset or empty, `$${` a literal `${`. Any other `$` is kept.
pub fn interpolate(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "${{{inner}}} does not name an environment variable"
                ));
            }
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "the environment variable {name} is not set (write ${{{name}:-default}} for a default)"
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK" => Some("http://127.0.0.1:9/hook".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_filled_with_defaults_and_escapes() {
        assert_eq!(
            interpolate("${HOOK}", &env).unwrap(),
            "http://127.0.0.1:9/hook"
        );
        assert_eq!(interpolate("a ${NOPE:-b} c", &env).unwrap(), "a b c");
        assert_eq!(interpolate("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(interpolate("$${HOOK}", &env).unwrap(), "${HOOK}");
        assert_eq!(interpolate("$.detail $5", &env).unwrap(), "$.detail $5");
        assert!(
            interpolate("${NOPE}", &env)
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(interpolate("${A-B}", &env).is_err());
        assert!(interpolate("${HOOK", &env).is_err());
    }

    #[test]
    fn a_manifest_parses_into_declarations_and_refuses_mistakes() {
        let text = r#"
            [[functions]]
            name = "f"
            command = ["python3", "-m", "awslambdaric", "app.handler"]
            code = "fn"

            [[topics]]
            name = "t"
            [[topics.subscriptions]]
            protocol = "http"
            endpoint = "${HOOK}"

            [[rules]]
            name = "r"
            event_pattern = { source = ["github"], "detail-type" = ["pull_request"] }
            [[rules.targets]]
            id = "sm"
            state_machine = "scan"
        "#;
        let manifest = Manifest::parse(text, env).unwrap();
        assert_eq!(manifest.functions[0].runtime, "process");
        assert_eq!(
            manifest.topics[0].subscriptions[0].endpoint,
            "http://127.0.0.1:9/hook"
        );
        assert_eq!(manifest.rules[0].bus, "default");
        assert_eq!(
            manifest.rules[0].event_pattern,
            Some(serde_json::json!({"source": ["github"], "detail-type": ["pull_request"]}))
        );
        assert_eq!(
            manifest.rules[0].targets[0].reference(),
            Ok(TargetRef::StateMachine("scan".into()))
        );

        let typo = "[[functions]]\nname = \"f\"\ncomand = [\"x\"]\ncode = \".\"";
        assert!(Manifest::parse(typo, env).unwrap_err().contains("comand"));
        let twice = "[[topics]]\nname = \"t\"\n[[topics]]\nname = \"t\"";
        assert!(Manifest::parse(twice, env).unwrap_err().contains("twice"));
        let both = "[[rules]]\nname = \"r\"\nschedule = \"rate(1 minute)\"\nevent_pattern = { source = [\"x\"] }";
        assert!(
            Manifest::parse(both, env)
                .unwrap_err()
                .contains("exactly one")
        );
        let no_kind =
            "[[rules]]\nname = \"r\"\nschedule = \"rate(1 minute)\"\n[[rules.targets]]\nid = \"x\"";
        assert!(
            Manifest::parse(no_kind, env)
                .unwrap_err()
                .contains("exactly one of state_machine")
        );
        let unset = "[[topics]]\nname = \"${TOPIC}\"";
        assert!(
            Manifest::parse(unset, env)
                .unwrap_err()
                .contains("topics[0].name")
        );
    }

    #[test]
    fn paths_resolve_against_the_manifest_folder() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir(temp.path().join("fn")).unwrap();
        std::fs::write(
            temp.path().join("m.asl.json"),
            r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#,
        )
        .unwrap();
        std::fs::write(
            temp.path().join(MANIFEST_FILE),
            "[[functions]]\nname = \"f\"\ncommand = [\"x\"]\ncode = \"fn\"\n\
             [[state_machines]]\nname = \"m\"\ndefinition = \"m.asl.json\"\n",
        )
        .unwrap();
        let resolved = Manifest::load(temp.path(), env).unwrap();
        let root = temp.path().canonicalize().unwrap();
        assert_eq!(resolved.manifest.functions[0].code, Some(root.join("fn")));
        assert_eq!(resolved.definitions[0]["StartAt"], "A");

        std::fs::write(
            temp.path().join(MANIFEST_FILE),
            "[[functions]]\nname = \"f\"\ncommand = [\"x\"]\ncode = \"missing\"\n",
        )
        .unwrap();
        let err = Manifest::load(temp.path(), env).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
