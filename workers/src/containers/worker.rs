//! The [`TaskWorker`] for `arn:aws:states:::ecs:runTask`, `.sync` and `.waitForTaskToken`,
//! reading ECS's `Parameters`:
//!
//! ```json
//! { "TaskDefinition": "scan:2",
//!   "Overrides": { "ContainerOverrides": [ { "Name": "scan", "Command": ["scan", "--fast"],
//!                                            "Environment": [ { "Name": "MODE", "Value": "fast" } ] } ] },
//!   "Input.$": "$" }
//! ```
//!
//! `Cluster`, `LaunchType`, `NetworkConfiguration` and the like are accepted and ignored.
//! `Input` (a Stepyard addition) is what the container receives; without it, the container
//! receives the whole parameters.

use serde_json::{Value, json};
use stepyard_engine::{TaskError, TaskRequest, TaskWorker};

use crate::containers::Error;
use crate::containers::definitions::{DefinitionStatus, Overrides};
use crate::containers::job::{JobMode, JobOrigin, JobStatus, Outcome};
use crate::containers::runtime::{ContainerRuntime, Resume, RunJob, job_id_for_invocation};

/// The resource prefix the worker serves (the suffixes `.sync` and `.waitForTaskToken` are kept
/// in the request's resource).
pub const ECS_RUN_TASK: &str = "arn:aws:states:::ecs:runTask";

/// ECS's error for a request it cannot act on (bad parameters, unknown task definition).
const CLIENT_ERROR: &str = "ECS.ClientException";

fn client_error(message: impl Into<String>) -> TaskError {
    TaskError::new(CLIENT_ERROR, message)
}

fn mode_of(resource: &str) -> JobMode {
    if resource.ends_with(".sync") {
        JobMode::Sync
    } else if resource.ends_with(".waitForTaskToken") {
        JobMode::Callback
    } else {
        JobMode::Detached
    }
}

/// Reads `TaskDefinition`, `Overrides.ContainerOverrides` and `Input`. Overrides apply when
/// their `Name` is absent or names the family (a task definition has one container).
fn parse_parameters(
    params: &Value,
    family_of: impl Fn(&str) -> Option<String>,
) -> Result<(String, Overrides, Value), TaskError> {
    let definition = params
        .get("TaskDefinition")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            client_error("Parameters.TaskDefinition is required: a task definition family, FAMILY:REVISION or its ARN")
        })?
        .to_string();
    let family = family_of(&definition);
    let mut overrides = Overrides::default();
    let list = params
        .pointer("/Overrides/ContainerOverrides")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let list = list
        .as_array()
        .ok_or_else(|| client_error("Overrides.ContainerOverrides must be an array"))?;
    for item in list {
        if let Some(name) = item.get("Name").and_then(Value::as_str)
            && family.as_deref().is_some_and(|f| f != name)
        {
            return Err(client_error(format!(
                "Overrides.ContainerOverrides names container '{name}', but the task definition's container is '{}'",
                family.unwrap_or_default()
            )));
        }
        if let Some(command) = item.get("Command") {
            let command: Vec<String> = serde_json::from_value(command.clone()).map_err(|_| {
                client_error("ContainerOverrides[].Command must be an array of strings")
            })?;
            overrides.command = Some(command);
        }
        if let Some(env) = item.get("Environment") {
            let pairs = env
                .as_array()
                .ok_or_else(|| client_error("ContainerOverrides[].Environment must be an array"))?;
            for pair in pairs {
                let (Some(name), Some(value)) =
                    (pair.get("Name").and_then(Value::as_str), pair.get("Value"))
                else {
                    return Err(client_error(
                        "ContainerOverrides[].Environment[] entries need Name and Value",
                    ));
                };
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                overrides.environment.insert(name.to_string(), value);
            }
        }
    }
    let input = params
        .get("Input")
        .cloned()
        .unwrap_or_else(|| params.clone());
    Ok((definition, overrides, input))
}

fn task_error_of(e: Error) -> TaskError {
    match e {
        Error::InvalidReference(_)
        | Error::DefinitionNotFound(_)
        | Error::DefinitionInactive(_)
        | Error::InvalidDefinition { .. } => client_error(e.to_string()),
        other => TaskError::new("States.TaskFailed", other.to_string()),
    }
}

#[async_trait::async_trait]
impl TaskWorker for ContainerRuntime {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let mode = mode_of(&request.resource);
        let id = job_id_for_invocation(&request.invocation_id);
        // A re-dispatch after a restart finds the job of its first dispatch.
        let existing = self.store().job(&id).map_err(task_error_of)?;
        let (rec, resume) = match existing {
            Some(rec) => (rec, Resume::Existing),
            None => {
                let (definition, overrides, input) = parse_parameters(&request.input, |r| {
                    self.definition(r).ok().map(|d| d.spec.family)
                })?;
                let def = self.definition(&definition).map_err(task_error_of)?;
                if def.status == DefinitionStatus::Inactive {
                    return Err(task_error_of(Error::DefinitionInactive(def.name())));
                }
                let run = RunJob {
                    definition,
                    overrides,
                    input,
                    timeout: request.timeout,
                };
                let origin = JobOrigin {
                    execution_arn: request.execution_arn.clone(),
                    state_name: request.state_name.clone(),
                    attempt: request.attempt,
                    invocation_id: request.invocation_id.clone(),
                };
                let token = match mode {
                    JobMode::Callback => Some(request.task_token.clone().ok_or_else(|| {
                        TaskError::new(
                            "States.TaskFailed",
                            "a .waitForTaskToken task came without its token",
                        )
                    })?),
                    _ => None,
                };
                let rec = self.new_job(id.clone(), &def, &run, mode, Some(origin), token);
                self.store().put_job(&rec).await.map_err(task_error_of)?;
                (rec, Resume::Fresh)
            }
        };
        if !rec.is_stopped() {
            self.ensure_driver(rec, resume);
        }
        let (region, account) = (&self.config().region, &self.config().account);
        match mode {
            JobMode::Sync => {
                let rec = self
                    .wait_for(&id, |r| r.is_stopped())
                    .await
                    .map_err(task_error_of)?;
                match &rec.outcome {
                    Some(Outcome::Succeeded { .. }) => Ok(rec.ecs_description(region, account)),
                    Some(Outcome::Failed { error, cause }) => {
                        Err(TaskError::new(error.clone(), cause.clone()))
                    }
                    None => Err(TaskError::new(
                        "States.TaskFailed",
                        "the container task ended without an outcome",
                    )),
                }
            }
            JobMode::Callback | JobMode::Detached => {
                let rec = self
                    .wait_for(&id, |r| r.status != JobStatus::Pending)
                    .await
                    .map_err(task_error_of)?;
                if let (None, Some(Outcome::Failed { error, cause })) =
                    (rec.started_ms, &rec.outcome)
                {
                    return Err(TaskError::new(error.clone(), cause.clone()));
                }
                Ok(json!({ "Failures": [], "Tasks": [rec.ecs_description(region, account)] }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_like_ecs() {
        let params = json!({
            "Cluster": "ignored",
            "TaskDefinition": "scan:2",
            "Overrides": {"ContainerOverrides": [{"Name": "scan", "Command": ["a", "b"],
                "Environment": [{"Name": "N", "Value": "1"}, {"Name": "M", "Value": 2}]}]},
            "Input": {"repo": "x"}
        });
        let (def, overrides, input) = parse_parameters(&params, |_| Some("scan".into())).unwrap();
        assert_eq!(def, "scan:2");
        assert_eq!(
            overrides.command,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(overrides.environment["M"], "2");
        assert_eq!(input, json!({"repo": "x"}));
        let err = parse_parameters(&json!({}), |_| None).unwrap_err();
        assert_eq!(err.error, CLIENT_ERROR);
        let wrong = json!({"TaskDefinition": "scan", "Overrides": {"ContainerOverrides": [{"Name": "other"}]}});
        assert!(parse_parameters(&wrong, |_| Some("scan".into())).is_err());
        assert_eq!(mode_of("arn:aws:states:::ecs:runTask.sync"), JobMode::Sync);
        assert_eq!(
            mode_of("arn:aws:states:::ecs:runTask.waitForTaskToken"),
            JobMode::Callback
        );
        assert_eq!(mode_of("arn:aws:states:::ecs:runTask"), JobMode::Detached);
    }
}
