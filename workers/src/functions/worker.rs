//! The engine's [`TaskWorker`] for Lambda resources: both
//! `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` and `arn:aws:states:::lambda:invoke`
//! arrive with `function_name` set (the engine normalises them and wraps `lambda:invoke`'s
//! result as `{"ExecutedVersion", "Payload", "StatusCode"}`).

use bytes::Bytes;
use serde_json::Value;
use stepyard_engine::{TaskError, TaskRequest, TaskWorker};

use crate::functions::service::{Functions, Invoke, TaskOrigin};
use crate::functions::{Error, LATEST};

/// Serves every `arn:aws:lambda:` resource from [`Functions`].
pub struct FunctionWorker {
    functions: Functions,
}

/// The prefix the engine matches this worker on.
pub const LAMBDA_PREFIX: &str = "arn:aws:lambda:";

impl Functions {
    /// The engine worker for Lambda Task resources:
    /// `engine.register_worker(LAMBDA_PREFIX, functions.task_worker())`.
    pub fn task_worker(&self) -> std::sync::Arc<dyn TaskWorker> {
        std::sync::Arc::new(FunctionWorker {
            functions: self.clone(),
        })
    }
}

/// `NAME` out of `arn:aws:lambda:R:A:function:NAME[:QUALIFIER]`.
fn function_of(resource: &str) -> Option<(&str, Option<&str>)> {
    let rest = resource.split(":function:").nth(1)?;
    let mut parts = rest.splitn(2, ':');
    let name = parts.next()?;
    Some((name, parts.next()))
}

#[async_trait::async_trait]
impl TaskWorker for FunctionWorker {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let (name, qualifier) = match &request.function_name {
            Some(name) => (
                name.as_str(),
                function_of(&request.resource).and_then(|(_, q)| q),
            ),
            None => function_of(&request.resource).ok_or_else(|| {
                TaskError::new(
                    "States.TaskFailed",
                    format!("'{}' names no function", request.resource),
                )
            })?,
        };
        if let Some(qualifier) = qualifier
            && qualifier != LATEST
        {
            return Err(TaskError::new(
                "Lambda.ResourceNotFoundException",
                format!(
                    "Function not found: {} (only {LATEST} exists: versions and aliases are not published)",
                    request.resource
                ),
            ));
        }
        let payload = Bytes::from(serde_json::to_vec(&request.input).unwrap_or_default());
        let invoke = Invoke {
            payload,
            client_context: None,
            request_id: Some(request.invocation_id.clone()),
            origin: Some(TaskOrigin {
                execution_arn: request.execution_arn.clone(),
                state_name: request.state_name.clone(),
                attempt: request.attempt,
            }),
        };
        let output = self
            .functions
            .invoke(name, invoke)
            .await
            .map_err(|e| match e {
                Error::NotFound(arn) => TaskError::new(
                    "Lambda.ResourceNotFoundException",
                    format!("Function not found: {arn}"),
                ),
                Error::TooManyRequests(message) => TaskError::new(
                    "Lambda.TooManyRequestsException",
                    format!("Rate Exceeded. {message}"),
                ),
                other => TaskError::new("Lambda.ServiceException", other.to_string()),
            })?;
        match output.result {
            Ok(body) => Ok(serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))),
            Err(error) => Err(TaskError::new(error.error_type.clone(), error.cause())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn function_and_qualifier_of_an_arn() {
        assert_eq!(
            super::function_of("arn:aws:lambda:us-east-1:123456789012:function:f"),
            Some(("f", None))
        );
        assert_eq!(
            super::function_of("arn:aws:lambda:us-east-1:123456789012:function:f:prod"),
            Some(("f", Some("prod")))
        );
    }
}
