//! Publishing from elsewhere: `arn:aws:states:::sns:publish` Task states and event-bus targets.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::model::{AttributeType, MessageAttribute, PublishRequest};
use super::service::{Topics, WeakTopics};
use crate::bus::{DeliveryError as TargetError, TargetCall, TargetInvoker};
use crate::error::Error;
use crate::worker::{TaskError, TaskRequest, TaskWorker};

/// The Task resource (also with `.waitForTaskToken`: put `$$.Task.Token` in the message).
pub const SNS_PUBLISH: &str = "arn:aws:states:::sns:publish";

fn task_error(e: Error) -> TaskError {
    match e {
        Error::ResourceNotFound(m) => TaskError::new("SNS.NotFoundException", m),
        Error::InvalidParameter { field, message } => TaskError::new(
            "SNS.InvalidParameterException",
            format!("Invalid parameter: {field}: {message}"),
        ),
        other => TaskError::new("SNS.InternalErrorException", other.to_string()),
    }
}

fn invalid(message: impl Into<String>) -> TaskError {
    TaskError::new("SNS.InvalidParameterException", message)
}

/// Reads Publish's `Parameters` as Step Functions passes them: `TopicArn` (or `TargetArn`),
/// `Message` (a string, or JSON that is serialized as SNS does), `Subject`, and
/// `MessageAttributes` as `{name: {DataType, StringValue | BinaryValue}}`.
pub(crate) fn publish_request(input: &Value) -> Result<PublishRequest, TaskError> {
    let topic_arn = input
        .get("TopicArn")
        .or_else(|| input.get("TargetArn"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Parameters need 'TopicArn'"))?
        .to_string();
    let message = match input.get("Message") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => return Err(invalid("Parameters need 'Message'")),
        Some(other) => other.to_string(),
    };
    let subject = match input.get("Subject") {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => None,
        Some(_) => return Err(invalid("'Subject' is a string")),
    };
    let mut message_attributes = BTreeMap::new();
    if let Some(attrs) = input.get("MessageAttributes") {
        let attrs = attrs
            .as_object()
            .ok_or_else(|| invalid("'MessageAttributes' is an object"))?;
        for (name, a) in attrs {
            let data_type = a
                .get("DataType")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("message attribute '{name}' needs a 'DataType'")))?;
            let kind = AttributeType::parse(data_type).ok_or_else(|| {
                invalid(format!(
                    "message attribute '{name}' has the unknown DataType '{data_type}'"
                ))
            })?;
            let value = match (kind, a.get("StringValue"), a.get("BinaryValue")) {
                (AttributeType::Binary, _, Some(Value::String(b))) => b.clone(),
                (_, Some(Value::String(s)), _) => s.clone(),
                // A number or an array given as JSON is taken as its text.
                (_, Some(v @ (Value::Number(_) | Value::Array(_))), _) => v.to_string(),
                _ => {
                    return Err(invalid(format!(
                        "message attribute '{name}' needs a 'StringValue'"
                    )));
                }
            };
            message_attributes.insert(name.clone(), MessageAttribute { kind, value });
        }
    }
    Ok(PublishRequest {
        topic_arn,
        message,
        subject,
        message_attributes,
    })
}

impl Topics {
    /// The worker for `arn:aws:states:::sns:publish` (and `.waitForTaskToken`) Task states:
    /// register it with `engine.register_worker(SNS_PUBLISH, topics.task_worker())`. It holds
    /// topics weakly (the engine holds its workers, and topics hold the engine).
    pub fn task_worker(&self) -> Arc<dyn TaskWorker> {
        Arc::new(PublishWorker(self.downgrade()))
    }

    /// Topics as event-bus targets (`arn:aws:sns:...`), for `bus.register_target`: the
    /// target's input is published as the message. Held weakly, as [`Topics::task_worker`].
    pub fn target_invoker(&self) -> Arc<dyn TargetInvoker> {
        Arc::new(PublishWorker(self.downgrade()))
    }
}

struct PublishWorker(WeakTopics);

impl PublishWorker {
    fn topics(&self) -> Result<Topics, Error> {
        self.0.upgrade().ok_or(Error::ShuttingDown)
    }
}

#[async_trait]
impl TaskWorker for PublishWorker {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let req = publish_request(&request.input)?;
        let topics = self.topics().map_err(task_error)?;
        let message_id = topics.publish(req).await.map_err(task_error)?;
        Ok(json!({ "MessageId": message_id }))
    }
}

#[async_trait]
impl TargetInvoker for PublishWorker {
    async fn deliver(&self, call: TargetCall) -> Result<(), TargetError> {
        let req = PublishRequest {
            topic_arn: call.target_arn.clone(),
            message: call.input,
            ..PublishRequest::default()
        };
        let topics = self
            .topics()
            .map_err(|e| TargetError::retryable("SDK_CLIENT_ERROR", e.to_string()))?;
        match topics.publish(req).await {
            Ok(_) => Ok(()),
            Err(e @ (Error::ResourceNotFound(_) | Error::InvalidParameter { .. })) => {
                Err(TargetError::permanent("SDK_CLIENT_ERROR", e.to_string()))
            }
            Err(e) => Err(TargetError::retryable("SDK_CLIENT_ERROR", e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_parameters_are_read_as_step_functions_passes_them() {
        let req = publish_request(&json!({
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": {"verdict": "clean", "n": 1},
            "Subject": "Scan",
            "MessageAttributes": {
                "kind": {"DataType": "String", "StringValue": "scan"},
                "score": {"DataType": "Number", "StringValue": "7"},
                "labels": {"DataType": "String.Array", "StringValue": "[\"a\"]"},
            }
        }))
        .unwrap();
        assert_eq!(req.message, r#"{"verdict":"clean","n":1}"#);
        assert_eq!(req.subject.as_deref(), Some("Scan"));
        assert_eq!(req.message_attributes["score"].kind, AttributeType::Number);
        assert_eq!(req.message_attributes["labels"].value, "[\"a\"]");
        let err = publish_request(&json!({"Message": "x"})).unwrap_err();
        assert_eq!(err.error, "SNS.InvalidParameterException");
        let err = publish_request(&json!({
            "TopicArn": "t", "Message": "x",
            "MessageAttributes": {"a": {"DataType": "Blob", "StringValue": "1"}}
        }))
        .unwrap_err();
        assert!(err.cause.contains("Blob"), "{err:?}");
    }
}
