//! The AWS JSON protocol on `POST /`: `X-Amz-Target` names the service and operation.
//!
//! Step Functions speaks JSON 1.0 (`AWSStepFunctions.<Operation>`), EventBridge JSON 1.1
//! (`AWSEvents.<Operation>`). Errors answer `{"__type": NAME, "message": TEXT}` with AWS's status
//! codes, so SDKs raise their modelled exceptions (`StateMachineDoesNotExist`, ...).

pub mod events;
pub mod sfn;
pub mod sigv4;
pub mod test_state;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stepyard_engine::Error as EngineError;

use crate::state::AppState;

const JSON_1_0: &str = "application/x-amz-json-1.0";
const JSON_1_1: &str = "application/x-amz-json-1.1";

/// An error as the AWS JSON protocol reports it.
#[derive(Debug)]
pub struct AwsError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        AwsError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("the request body is not valid JSON: {}", message.into()),
        )
    }

    pub fn unknown_operation(operation: &str) -> Self {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("unknown operation {operation:?}"),
        )
    }
}

impl From<EngineError> for AwsError {
    fn from(err: EngineError) -> Self {
        let bad = StatusCode::BAD_REQUEST;
        let kind = match &err {
            EngineError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            EngineError::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            EngineError::StateMachineDeleting(_) => "StateMachineDeleting",
            EngineError::InvalidDefinition(_) => "InvalidDefinition",
            EngineError::InvalidArn(_) => "InvalidArn",
            EngineError::InvalidName(_) => "InvalidName",
            EngineError::InvalidExecutionInput(_) => "InvalidExecutionInput",
            EngineError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            EngineError::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            EngineError::ExecutionNotRedrivable(_) => "ExecutionNotRedrivable",
            EngineError::TaskDoesNotExist => "TaskDoesNotExist",
            EngineError::TaskTimedOut => "TaskTimedOut",
            EngineError::InvalidToken(_) => "InvalidToken",
            EngineError::InvalidOutput(_) => "InvalidOutput",
            EngineError::ActivityDoesNotExist(_) => "ActivityDoesNotExist",
            EngineError::ActivityAlreadyExists(_) => "ActivityAlreadyExists",
            EngineError::DataLimitExceeded(_) => "ValidationException",
            EngineError::ValidationException(_) => "ValidationException",
            EngineError::StateMachineTypeNotSupported(_) => "StateMachineTypeNotSupported",
            EngineError::InvalidNextToken(_) => "InvalidToken",
            EngineError::ResourceNotFound(_) => "ResourceNotFoundException",
            EngineError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            EngineError::InvalidEventPattern(_) => "InvalidEventPatternException",
            EngineError::IllegalStatus(_) => "IllegalStatusException",
            EngineError::LimitExceeded(_) => "LimitExceededException",
            EngineError::InvalidParameter { .. } => "InvalidParameterException",
            EngineError::ShuttingDown => {
                return AwsError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the server is shutting down",
                );
            }
            // Listed, not matched with `_`, so a new engine error has to be mapped here.
            EngineError::StoreLocked { .. } | EngineError::Store(_) | EngineError::Corrupt(_) => {
                tracing::error!(error = %err, "internal error in an AWS operation");
                return AwsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "internal error; see the server log",
                );
            }
        };
        AwsError::new(bad, kind, err.to_string())
    }
}

/// A successful operation's answer: a JSON value, or JSON text already serialized (the
/// operations on the hot path serialize their typed replies directly).
pub enum Reply {
    Json(Value),
    Text(String),
}

impl From<Value> for Reply {
    fn from(value: Value) -> Self {
        Reply::Json(value)
    }
}

impl Reply {
    /// Serializes a typed reply.
    pub fn of<T: serde::Serialize>(reply: &T) -> Result<Self, AwsError> {
        serde_json::to_string(reply)
            .map(Reply::Text)
            .map_err(|err| {
                tracing::error!(error = %err, "an AWS reply did not serialize");
                AwsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "internal error; see the server log",
                )
            })
    }
}

/// JSON text, written straight into a buffer (`Display` goes through `fmt` for every token).
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// The response of one AWS operation, in the content type the request used.
struct AwsResponse {
    content_type: &'static str,
    result: Result<Reply, AwsError>,
}

impl IntoResponse for AwsResponse {
    fn into_response(self) -> Response {
        let (status, body, kind) = match self.result {
            Ok(Reply::Json(body)) => (StatusCode::OK, json_text(&body), None),
            Ok(Reply::Text(body)) => (StatusCode::OK, body, None),
            Err(err) => (
                err.status,
                json_text(&json!({ "__type": err.kind, "message": err.message })),
                Some(err.kind),
            ),
        };
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if let Some(kind) = kind
            && let Ok(value) = HeaderValue::from_str(kind)
        {
            response.headers_mut().insert("x-amzn-errortype", value);
        }
        response
    }
}

/// AWS's answer to a client over its request rate.
pub fn throttled() -> Response {
    AwsResponse {
        content_type: JSON_1_0,
        result: Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        )),
    }
    .into_response()
}

/// `POST /` with an `X-Amz-Target` header.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return AwsResponse {
                content_type: JSON_1_0,
                result: Err(AwsError::new(
                    rejection.status(),
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        "RequestEntityTooLargeException"
                    } else {
                        "SerializationException"
                    },
                    rejection.body_text(),
                )),
            }
            .into_response();
        }
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (service, operation) = target.split_once('.').unwrap_or((target.as_str(), ""));
    let content_type = if service == "AWSEvents" {
        JSON_1_1
    } else {
        JSON_1_0
    };
    let result = async {
        if let Some(keys) = state.config().aws_access_keys() {
            verify_signature(&method, &uri, &headers, &body, keys)?;
        }
        match service {
            "AWSStepFunctions" => sfn::dispatch(state.engine(), operation, &body).await,
            "AWSEvents" => events::dispatch(state.bus(), operation, &body)
                .await
                .map(Reply::from),
            "" => Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "MissingTargetException",
                "the X-Amz-Target header is missing: the AWS JSON protocol needs it (e.g. AWSStepFunctions.StartExecution)",
            )),
            other => Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("unknown service {other:?} in X-Amz-Target"),
            )),
        }
    }
    .await;
    AwsResponse {
        content_type,
        result,
    }
    .into_response()
}

fn verify_signature(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[(String, String)],
) -> Result<(), AwsError> {
    let header_list: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|value| (name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let request = sigv4::SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &header_list,
        body,
    };
    sigv4::verify(&request, |access_key| {
        keys.iter()
            .find(|(id, _)| id == access_key)
            .map(|(_, secret)| secret.clone())
    })
    .map_err(|err| {
        let status = match err {
            sigv4::SigError::Missing => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        };
        AwsError::new(status, err.aws_type(), err.to_string())
    })
}
