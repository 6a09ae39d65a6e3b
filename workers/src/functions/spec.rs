//! What a function is: its runtime, handler, environment and limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::functions::{Error, Result};

pub const DEFAULT_TIMEOUT_SECONDS: u32 = 3;
pub const MAX_TIMEOUT_SECONDS: u32 = 900;
pub const DEFAULT_MEMORY_MB: u32 = 128;
const MIN_MEMORY_MB: u32 = 128;
const MAX_MEMORY_MB: u32 = 10_240;

/// Variables Lambda sets itself; a function's environment cannot override them.
const RESERVED_VARIABLES: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// How a function's code runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FunctionRuntime {
    /// `command` started in `code_dir`, speaking the Lambda Runtime API.
    Process {
        command: Vec<String>,
        code_dir: PathBuf,
    },
    /// An endpoint POSTed the event as JSON; its response body is the result.
    Http { url: String },
}

/// A function as its author describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub name: String,
    pub description: String,
    pub runtime: FunctionRuntime,
    /// `_HANDLER` (e.g. `app.handler`).
    pub handler: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: u32,
    pub memory_size_mb: u32,
    /// Sandboxes at once; `0` throttles every invocation, as on AWS.
    pub reserved_concurrency: Option<u32>,
}

impl FunctionSpec {
    /// A `process` function with the defaults (3 s timeout, 128 MB).
    pub fn process(
        name: impl Into<String>,
        command: Vec<String>,
        code_dir: impl Into<PathBuf>,
    ) -> Self {
        FunctionSpec::with_runtime(
            name,
            FunctionRuntime::Process {
                command,
                code_dir: code_dir.into(),
            },
        )
    }

    /// An `http` function with the defaults.
    pub fn http(name: impl Into<String>, url: impl Into<String>) -> Self {
        FunctionSpec::with_runtime(name, FunctionRuntime::Http { url: url.into() })
    }

    fn with_runtime(name: impl Into<String>, runtime: FunctionRuntime) -> Self {
        FunctionSpec {
            name: name.into(),
            description: String::new(),
            runtime,
            handler: None,
            environment: BTreeMap::new(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            memory_size_mb: DEFAULT_MEMORY_MB,
            reserved_concurrency: None,
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout_seconds))
    }

    /// Every rule AWS applies that matters here; the first broken one is the error.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        let invalid = |field, message: String| Err(Error::InvalidFunction { field, message });
        if self.description.len() > 256 {
            return invalid("description", "at most 256 characters".into());
        }
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return invalid(
                "timeout_seconds",
                format!(
                    "{} is outside 1..={MAX_TIMEOUT_SECONDS}",
                    self.timeout_seconds
                ),
            );
        }
        if !(MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&self.memory_size_mb) {
            return invalid(
                "memory_size_mb",
                format!(
                    "{} is outside {MIN_MEMORY_MB}..={MAX_MEMORY_MB}",
                    self.memory_size_mb
                ),
            );
        }
        for key in self.environment.keys() {
            let well_formed = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !well_formed {
                return invalid(
                    "environment",
                    format!("'{key}' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"),
                );
            }
            if RESERVED_VARIABLES.contains(&key.as_str()) {
                return invalid(
                    "environment",
                    format!("'{key}' is reserved: Stepyard sets it as Lambda does"),
                );
            }
        }
        if let Some(handler) = &self.handler
            && (handler.is_empty() || handler.len() > 128)
        {
            return invalid("handler", "1 to 128 characters".into());
        }
        match &self.runtime {
            FunctionRuntime::Process { command, code_dir } => {
                if command.is_empty() || command[0].is_empty() {
                    return invalid(
                        "command",
                        "a program and its arguments, e.g. [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]".into(),
                    );
                }
                if !code_dir.is_dir() {
                    return invalid(
                        "code",
                        format!("{} is not a folder on the server", code_dir.display()),
                    );
                }
            }
            FunctionRuntime::Http { url } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return invalid("url", format!("'{url}' is not an http:// or https:// URL"));
                }
            }
        }
        Ok(())
    }
}

/// Lambda's rule: 1 to 64 letters, digits, `-` and `_`.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::InvalidFunction {
            field: "name",
            message: format!("'{name}' must be 1 to 64 letters, digits, '-' or '_'"),
        });
    }
    Ok(())
}

/// A stored function: the spec plus what Stepyard adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    #[serde(flatten)]
    pub spec: FunctionSpec,
    pub arn: String,
    /// +1 per update; running sandboxes of an older revision finish their invocation and stop.
    pub revision: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let dir = std::env::temp_dir();
        let ok = FunctionSpec::process("f-1_x", vec!["python3".into()], &dir);
        assert!(ok.validate().is_ok());
        let cases: Vec<(FunctionSpec, &str)> = vec![
            (
                FunctionSpec {
                    name: "a:b".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                FunctionSpec {
                    timeout_seconds: 0,
                    ..ok.clone()
                },
                "timeout_seconds",
            ),
            (
                FunctionSpec {
                    timeout_seconds: 901,
                    ..ok.clone()
                },
                "timeout_seconds",
            ),
            (
                FunctionSpec {
                    memory_size_mb: 64,
                    ..ok.clone()
                },
                "memory_size_mb",
            ),
            (
                FunctionSpec {
                    environment: [("AWS_LAMBDA_RUNTIME_API".to_string(), "x".to_string())].into(),
                    ..ok.clone()
                },
                "environment",
            ),
            (
                FunctionSpec {
                    environment: [("1X".to_string(), "x".to_string())].into(),
                    ..ok.clone()
                },
                "environment",
            ),
            (FunctionSpec::process("f", vec![], &dir), "command"),
            (
                FunctionSpec::process("f", vec!["x".into()], dir.join("no-such-dir-here")),
                "code",
            ),
            (FunctionSpec::http("f", "ftp://x"), "url"),
        ];
        for (spec, field) in cases {
            match spec.validate() {
                Err(Error::InvalidFunction { field: f, .. }) => assert_eq!(f, field, "{spec:?}"),
                other => panic!("{spec:?}: expected an error on {field}, got {other:?}"),
            }
        }
    }
}
