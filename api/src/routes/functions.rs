//! `/v1/functions`: functions (the Lambda idea), their invocations and logs; and Lambda's own
//! REST path `POST /2015-03-31/functions/{name}/invocations` that `boto3.client("lambda").invoke`
//! and the AWS CLI call.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepyard_workers::functions::{
    Error as FunctionsError, Function, FunctionRuntime, FunctionSpec, Functions, FunctionsConfig,
    InvocationLog, Invoke, InvokeOutput, LAMBDA_PREFIX,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::rfc3339;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_function, list_functions))
        .routes(routes!(get_function, update_function, delete_function))
        .routes(routes!(invoke_function))
        .routes(routes!(get_invocation_logs))
        .routes(routes!(list_function_invocations))
}

/// Lambda's REST path for `Invoke` (not in the native API's document: AWS SDKs call it).
pub fn lambda_routes() -> axum::Router<AppState> {
    axum::Router::new().route(
        "/2015-03-31/functions/{name}/invocations",
        axum::routing::post(lambda_invoke),
    )
}

/// Opens the function runtime on `<data_dir>/functions` and registers it with the engine for
/// every `arn:aws:lambda:` Task resource.
pub fn open_runtime(
    config: &crate::config::ServerConfig,
    engine: &stepyard_engine::Engine,
) -> anyhow::Result<Functions> {
    let functions = Functions::open(FunctionsConfig {
        region: config.region.clone(),
        account: config.account.clone(),
        ..FunctionsConfig::new(
            config.data_dir.join("functions"),
            std::sync::Arc::new(crate::runtime_api::LoopbackRuntimeApi),
        )
    })?;
    engine.register_worker(LAMBDA_PREFIX, functions.task_worker());
    Ok(functions)
}

impl From<FunctionsError> for ApiError {
    fn from(e: FunctionsError) -> Self {
        match e {
            FunctionsError::InvalidFunction { field, message } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidFunction",
                format!("invalid {field}: {message}"),
            )
            .with_body_field(field),
            FunctionsError::NotFound(_) => ApiError::not_found("FunctionNotFound", e.to_string()),
            FunctionsError::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "FunctionAlreadyExists", e.to_string())
            }
            FunctionsError::InvocationNotFound(_) => {
                ApiError::not_found("InvocationNotFound", e.to_string())
            }
            FunctionsError::TooManyRequests(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                e.to_string(),
            ),
            FunctionsError::Store(_) => ApiError::internal(e),
        }
    }
}

// ---- wire types ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// A command speaking the Lambda Runtime API, started in `code`.
    Process,
    /// An HTTP endpoint POSTed the event as JSON.
    Http,
}

/// A function as created or replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionBody {
    /// Required on create; on update it must match the path when given.
    #[schema(example = "parse-pr")]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub runtime: RuntimeKind,
    /// `process`: the program and its arguments.
    #[schema(example = json!(["python3", "-m", "awslambdaric", "app.handler"]))]
    pub command: Option<Vec<String>>,
    /// `process`: the code folder on the server (the working directory, `LAMBDA_TASK_ROOT`).
    #[schema(example = "/srv/functions/parse-pr")]
    pub code: Option<String>,
    /// `http`: the endpoint.
    pub url: Option<String>,
    /// `_HANDLER`.
    #[schema(example = "app.handler")]
    pub handler: Option<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// 1..=900, default 3.
    pub timeout_seconds: Option<u32>,
    /// 128..=10240, default 128 (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; not enforced).
    pub memory_size_mb: Option<u32>,
    /// Sandboxes at once; 0 throttles every invocation.
    pub reserved_concurrency: Option<u32>,
}

impl FunctionBody {
    fn into_spec(self, name: String) -> ApiResult<FunctionSpec> {
        let missing = |field: &str| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidFunction",
                format!("a {:?} function needs `{field}`", self.runtime),
            )
            .with_body_field(field)
        };
        let runtime = match self.runtime {
            RuntimeKind::Process => FunctionRuntime::Process {
                command: self.command.clone().ok_or_else(|| missing("command"))?,
                code_dir: PathBuf::from(self.code.clone().ok_or_else(|| missing("code"))?),
            },
            RuntimeKind::Http => FunctionRuntime::Http {
                url: self.url.clone().ok_or_else(|| missing("url"))?,
            },
        };
        let defaults = FunctionSpec::http(name.clone(), "");
        Ok(FunctionSpec {
            name,
            description: self.description,
            runtime,
            handler: self.handler,
            environment: self.environment,
            timeout_seconds: self.timeout_seconds.unwrap_or(defaults.timeout_seconds),
            memory_size_mb: self.memory_size_mb.unwrap_or(defaults.memory_size_mb),
            reserved_concurrency: self.reserved_concurrency,
        })
    }
}

/// A function.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunctionView {
    pub name: String,
    #[schema(example = "arn:aws:lambda:us-east-1:123456789012:function:parse-pr")]
    pub arn: String,
    pub description: String,
    pub runtime: RuntimeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: u32,
    pub memory_size_mb: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
    /// +1 per update.
    pub revision: u64,
    /// Always `$LATEST` (versions are not published).
    pub version: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Function> for FunctionView {
    fn from(f: Function) -> Self {
        let (runtime, command, code, url) = match f.spec.runtime {
            FunctionRuntime::Process { command, code_dir } => (
                RuntimeKind::Process,
                Some(command),
                Some(code_dir.display().to_string()),
                None,
            ),
            FunctionRuntime::Http { url } => (RuntimeKind::Http, None, None, Some(url)),
        };
        FunctionView {
            name: f.spec.name,
            arn: f.arn,
            description: f.spec.description,
            runtime,
            command,
            code,
            url,
            handler: f.spec.handler,
            environment: f.spec.environment,
            timeout_seconds: f.spec.timeout_seconds,
            memory_size_mb: f.spec.memory_size_mb,
            reserved_concurrency: f.spec.reserved_concurrency,
            revision: f.revision,
            version: "$LATEST".into(),
            created_at: rfc3339(f.created_ms),
            updated_at: rfc3339(f.updated_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FunctionList {
    pub functions: Vec<FunctionView>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum InvocationType {
    /// Wait for the result (the default).
    #[default]
    RequestResponse,
    /// Queue it and answer 202 at once.
    Event,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payload": {"pull_request": 42}}))]
pub struct InvokeBody {
    /// The event handed to the handler (default `{}`).
    #[schema(value_type = Object)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub invocation_type: InvocationType,
    /// Handed to the handler as `context.client_context`.
    #[schema(value_type = Object)]
    pub client_context: Option<Value>,
}

/// A handler's failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunctionErrorView {
    /// The error name (`errorType`), what Retry/Catch match.
    pub error: String,
    /// The error object (`errorMessage`, `errorType`, `stackTrace`, ...).
    #[schema(value_type = Object)]
    pub cause: Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"request_id": "8e0c6c4a-1d2b-4f7e-9a55-6b1f0d3c2e10", "executed_version": "1", "payload": {"files": 3}, "logs_url": "/v1/functions/parse-pr/invocations/8e0c6c4a-1d2b-4f7e-9a55-6b1f0d3c2e10/logs"}))]
pub struct InvokeResult {
    #[schema(example = "8e0c6c4a-1d2b-4f7e-9a55-6b1f0d3c2e10")]
    pub request_id: String,
    pub executed_version: String,
    /// The handler's result; `null` when it failed.
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FunctionErrorView>,
    /// Where this invocation's logs are.
    pub logs_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvokeAccepted {
    #[schema(example = "8e0c6c4a-1d2b-4f7e-9a55-6b1f0d3c2e10")]
    pub request_id: String,
    pub logs_url: String,
}

/// One invocation's log lines (stdout and stderr of the process, with Lambda's
/// `START`/`END`/`REPORT` lines).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvocationLogView {
    #[schema(example = "8e0c6c4a-1d2b-4f7e-9a55-6b1f0d3c2e10")]
    pub request_id: String,
    #[schema(example = "parse-pr")]
    pub function: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// The error name when the invocation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For invocations made by a Task state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    pub lines: Vec<String>,
    /// Lines past the per-invocation limit were dropped.
    pub truncated: bool,
    pub logs_url: String,
}

impl From<InvocationLog> for InvocationLogView {
    fn from(log: InvocationLog) -> Self {
        InvocationLogView {
            logs_url: logs_url(&log.function, &log.request_id),
            request_id: log.request_id,
            function: log.function,
            started_at: rfc3339(log.started_ms),
            ended_at: log.ended_ms.map(rfc3339),
            error: log.error,
            execution_arn: log.execution_arn,
            state_name: log.state_name,
            attempt: log.attempt,
            lines: log.lines,
            truncated: log.truncated,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvocationList {
    pub invocations: Vec<InvocationLogView>,
}

fn logs_url(function: &str, request_id: &str) -> String {
    format!("/v1/functions/{function}/invocations/{request_id}/logs")
}

// ---- handlers ------------------------------------------------------------------------------

/// Create a function.
#[utoipa::path(
    post,
    path = "/v1/functions",
    tag = "functions",
    request_body = FunctionBody,
    responses(
        (status = 201, description = "Created", body = FunctionView),
        (status = 400, description = "Invalid function", body = ErrorBody),
        (status = 409, description = "A function with this name exists", body = ErrorBody),
    )
)]
pub async fn create_function(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<FunctionBody>,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    let name = body.name.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidFunction",
            "`name` is required",
        )
        .with_body_field("name")
    })?;
    let spec = body.into_spec(name)?;
    let function = state.functions().create(spec).await?;
    Ok((StatusCode::CREATED, Json(function.into())))
}

/// List functions.
#[utoipa::path(
    get,
    path = "/v1/functions",
    tag = "functions",
    responses((status = 200, description = "Every function, by name", body = FunctionList))
)]
pub async fn list_functions(State(state): State<AppState>) -> Json<FunctionList> {
    Json(FunctionList {
        functions: state
            .functions()
            .list()
            .into_iter()
            .map(Into::into)
            .collect(),
    })
}

/// Get a function.
#[utoipa::path(
    get,
    path = "/v1/functions/{name}",
    tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The function", body = FunctionView),
        (status = 404, description = "No such function", body = ErrorBody),
    )
)]
pub async fn get_function(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<FunctionView>> {
    Ok(Json(state.functions().get(&name)?.into()))
}

/// Replace a function; invocations running finish on the previous revision.
#[utoipa::path(
    put,
    path = "/v1/functions/{name}",
    tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    request_body = FunctionBody,
    responses(
        (status = 200, description = "The new revision", body = FunctionView),
        (status = 400, description = "Invalid function", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody),
    )
)]
pub async fn update_function(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<FunctionBody>,
) -> ApiResult<Json<FunctionView>> {
    if let Some(given) = &body.name
        && given != &name
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidFunction",
            format!("the body names '{given}' but the path names '{name}'"),
        )
        .with_body_field("name"));
    }
    let spec = body.into_spec(name.clone())?;
    Ok(Json(state.functions().update(&name, spec).await?.into()))
}

/// Delete a function; its idle sandboxes stop.
#[utoipa::path(
    delete,
    path = "/v1/functions/{name}",
    tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such function", body = ErrorBody),
    )
)]
pub async fn delete_function(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.functions().delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invoke a function: wait for its result, or (`"invocation_type": "Event"`) queue it.
#[utoipa::path(
    post,
    path = "/v1/functions/{name}/invoke",
    tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    request_body = InvokeBody,
    responses(
        (status = 200, description = "The handler's result or error", body = InvokeResult),
        (status = 202, description = "Queued (Event)", body = InvokeAccepted),
        (status = 404, description = "No such function", body = ErrorBody),
        (status = 429, description = "Concurrency limit and queue full", body = ErrorBody),
    )
)]
pub async fn invoke_function(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Option<ApiJson<InvokeBody>>,
) -> ApiResult<Response> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let payload = body.payload.unwrap_or_else(|| serde_json::json!({}));
    let invoke = Invoke {
        payload: Bytes::from(payload.to_string()),
        client_context: body.client_context.map(|c| c.to_string()),
        ..Invoke::default()
    };
    if body.invocation_type == InvocationType::Event {
        let request_id = state.functions().invoke_async(&name, invoke)?;
        let accepted = InvokeAccepted {
            logs_url: logs_url(&name, &request_id),
            request_id,
        };
        return Ok((StatusCode::ACCEPTED, Json(accepted)).into_response());
    }
    let output = state.functions().invoke(&name, invoke).await?;
    let (payload, error) = match &output.result {
        Ok(bytes) => (json_or_text(bytes), None),
        Err(e) => (
            Value::Null,
            Some(FunctionErrorView {
                error: e.error_type.clone(),
                cause: json_or_text(&e.payload),
            }),
        ),
    };
    Ok(Json(InvokeResult {
        logs_url: logs_url(&name, &output.request_id),
        request_id: output.request_id,
        executed_version: output.executed_version,
        payload,
        error,
    })
    .into_response())
}

fn json_or_text(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// One invocation's logs.
#[utoipa::path(
    get,
    path = "/v1/functions/{name}/invocations/{request_id}/logs",
    tag = "functions",
    params(
        ("name" = String, Path, description = "Function name"),
        ("request_id" = String, Path, description = "The invocation's request id"),
    ),
    responses(
        (status = 200, description = "The log lines", body = InvocationLogView),
        (status = 404, description = "No such invocation (or its logs were pruned)", body = ErrorBody),
    )
)]
pub async fn get_invocation_logs(
    State(state): State<AppState>,
    ApiPath((name, request_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<InvocationLogView>> {
    Ok(Json(state.functions().logs(&name, &request_id)?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvocationsQuery {
    /// The execution whose Task states made the invocations.
    pub execution_arn: String,
}

/// The function invocations (with their logs) that an execution's Task states made, oldest
/// first: the link from an execution's history to its functions' logs.
#[utoipa::path(
    get,
    path = "/v1/function-invocations",
    tag = "functions",
    params(InvocationsQuery),
    responses((status = 200, description = "Oldest first", body = InvocationList))
)]
pub async fn list_function_invocations(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<InvocationsQuery>,
) -> ApiResult<Json<InvocationList>> {
    let invocations = state
        .functions()
        .invocations_of_execution(&query.execution_arn)?;
    Ok(Json(InvocationList {
        invocations: invocations.into_iter().map(Into::into).collect(),
    }))
}

// ---- Lambda's REST Invoke ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct LambdaInvokeQuery {
    #[serde(rename = "Qualifier")]
    pub qualifier: Option<String>,
}

/// `POST /2015-03-31/functions/{FunctionName}/invocations` as Lambda answers it: the result
/// bytes as the body, `X-Amz-Function-Error: Unhandled` on a handler error,
/// `X-Amz-Executed-Version`, `X-Amz-Log-Result` for `X-Amz-Log-Type: Tail`; 202 for `Event`,
/// 204 for `DryRun`; errors with `x-amzn-ErrorType`.
pub async fn lambda_invoke(
    State(state): State<AppState>,
    ApiPath(function): ApiPath<String>,
    ApiQuery(query): ApiQuery<LambdaInvokeQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // With access keys configured, Lambda's path is signed like the JSON protocol on `POST /`.
    if let Some(keys) = state.config().aws_access_keys()
        && let Some(response) = signature_failure(&uri, &headers, &body, keys)
    {
        return response;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // FunctionName: a name, a full or partial ARN, optionally with `:QUALIFIER`.
    let (name, qualifier) = split_function_name(&function);
    let qualifier = query.qualifier.or(qualifier);
    if let Some(q) = &qualifier
        && q != "$LATEST"
    {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!(
                "Function not found: {}:{q}",
                state.functions().arn_of(&name)
            ),
        );
    }
    let payload = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: the payload is not valid JSON",
        );
    }
    let client_context = header("x-amz-client-context")
        .and_then(|b64| base64_decode(&b64))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let invoke = Invoke {
        payload,
        client_context,
        ..Invoke::default()
    };
    let invocation_type = header("x-amz-invocation-type").unwrap_or_default();
    match invocation_type.as_str() {
        "Event" => match state.functions().invoke_async(&name, invoke) {
            Ok(request_id) => {
                let mut response = StatusCode::ACCEPTED.into_response();
                insert(&mut response, "x-amzn-requestid", &request_id);
                response
            }
            Err(e) => lambda_failure(e),
        },
        "DryRun" => match state.functions().get(&name) {
            Ok(_) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => lambda_failure(e),
        },
        "" | "RequestResponse" => match state.functions().invoke(&name, invoke).await {
            Ok(output) => {
                lambda_result(output, header("x-amz-log-type").as_deref() == Some("Tail"))
            }
            Err(e) => lambda_failure(e),
        },
        other => lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("InvocationType '{other}' is not RequestResponse, Event or DryRun"),
        ),
    }
}

/// The error response when the request's SigV4 signature does not check out.
fn signature_failure(
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[(String, String)],
) -> Option<Response> {
    use crate::aws::sigv4;
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
        method: "POST",
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
        lambda_error(status, err.aws_type(), &err.to_string())
    })
    .err()
}

fn split_function_name(text: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if i + 1 < parts.len() => (
            parts[i + 1].to_string(),
            parts.get(i + 2).map(|q| q.to_string()),
        ),
        _ => match parts.as_slice() {
            [name, qualifier] => (name.to_string(), Some(qualifier.to_string())),
            _ => (text.to_string(), None),
        },
    }
}

fn lambda_result(output: InvokeOutput, tail: bool) -> Response {
    let (body, function_error) = match output.result {
        Ok(bytes) => (bytes, false),
        Err(e) => (e.payload, true),
    };
    let mut response = (StatusCode::OK, body).into_response();
    insert(&mut response, "content-type", "application/json");
    insert(
        &mut response,
        "x-amz-executed-version",
        &output.executed_version,
    );
    insert(&mut response, "x-amzn-requestid", &output.request_id);
    if function_error {
        insert(&mut response, "x-amz-function-error", "Unhandled");
    }
    if tail {
        insert(
            &mut response,
            "x-amz-log-result",
            &base64_encode(output.log.tail(4096).as_bytes()),
        );
    }
    response
}

fn lambda_failure(e: FunctionsError) -> Response {
    match e {
        FunctionsError::NotFound(_) => lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &e.to_string(),
        ),
        FunctionsError::TooManyRequests(_) => lambda_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            &e.to_string(),
        ),
        other => {
            tracing::error!(error = %other, "Lambda Invoke failed");
            lambda_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "internal error; see the server log",
            )
        }
    }
}

/// Lambda's REST error: `x-amzn-ErrorType` names it, the body carries the message.
fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "Type": "User", "message": message, "Message": message });
    let mut response = (status, Json(body)).into_response();
    insert(&mut response, "x-amzn-errortype", error_type);
    response
}

fn insert(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = BASE64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "{\"a\":1}"] {
            let encoded = base64_encode(text.as_bytes());
            assert_eq!(
                base64_decode(&encoded).unwrap(),
                text.as_bytes(),
                "{encoded}"
            );
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn function_names_in_every_form() {
        let cases = [
            ("f", ("f", None)),
            ("f:$LATEST", ("f", Some("$LATEST"))),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f",
                ("f", None),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f:prod",
                ("f", Some("prod")),
            ),
            ("123456789012:function:f", ("f", None)),
        ];
        for (text, (name, qualifier)) in cases {
            assert_eq!(
                split_function_name(text),
                (name.to_string(), qualifier.map(str::to_string)),
                "{text}"
            );
        }
    }
}
