//! Executions of a state machine: start (durable or synchronous), get, list, stop, redrive, history.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepyard_engine::{ExecutionFilter, ExecutionStatus, StartExecution};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{Execution, ExecutionList, History, PageParams, rfc3339};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_execution, list_executions))
        .routes(routes!(start_sync_execution))
        .routes(routes!(get_execution))
        .routes(routes!(stop_execution))
        .routes(routes!(redrive_execution))
        .routes(routes!(get_history))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "run-1", "input": {"who": "world"}}))]
pub struct StartExecutionBody {
    /// Unique per state machine; a repeat with the same input returns the same execution.
    /// Generated when absent.
    #[serde(default)]
    #[schema(example = "run-1")]
    pub name: Option<String>,
    /// The execution's input (any JSON; default `{}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Option<Value>,
}

impl StartExecutionBody {
    fn into_request(self, state_machine_arn: String) -> StartExecution {
        StartExecution {
            state_machine_arn,
            name: self.name,
            input: self.input.map(|value| value.to_string()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    #[schema(example = "arn:aws:states:us-east-1:123456789012:execution:hello:run-1")]
    pub arn: String,
    #[schema(example = "2026-11-22T06:00:00.000Z")]
    pub started_at: String,
}

/// Start an execution.
#[utoipa::path(
    post,
    path = "/v1/state-machines/{name}/executions",
    tag = "executions",
    params(("name" = String, Path, description = "State machine name")),
    request_body = StartExecutionBody,
    responses(
        (status = 201, description = "Started (durably recorded)", body = Started),
        (status = 400, description = "Invalid name or input", body = ErrorBody),
        (status = 404, description = "No such state machine", body = ErrorBody),
        (status = 409, description = "An execution with this name exists with another input", body = ErrorBody),
        (status = 413, description = "Input over the payload limit", body = ErrorBody),
    )
)]
pub async fn start_execution(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Option<ApiJson<StartExecutionBody>>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let body = body.map(|ApiJson(body)| body).unwrap_or_default();
    let arn = state.state_machine_arn(&name);
    let started = state
        .engine()
        .start_execution(body.into_request(arn))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Started {
            arn: started.execution_arn,
            started_at: rfc3339(started.start_date_ms),
        }),
    ))
}

/// Run an EXPRESS state machine to completion and answer with its result.
#[utoipa::path(
    post,
    path = "/v1/state-machines/{name}/executions/sync",
    tag = "executions",
    params(("name" = String, Path, description = "State machine name (EXPRESS)")),
    request_body = StartExecutionBody,
    responses(
        (status = 200, description = "Finished: SUCCEEDED, FAILED or TIMED_OUT", body = Execution),
        (status = 400, description = "Not an EXPRESS state machine, or bad input", body = ErrorBody),
        (status = 404, description = "No such state machine", body = ErrorBody),
    )
)]
pub async fn start_sync_execution(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Option<ApiJson<StartExecutionBody>>,
) -> ApiResult<Json<Execution>> {
    let body = body.map(|ApiJson(body)| body).unwrap_or_default();
    let arn = state.state_machine_arn(&name);
    let info = state
        .engine()
        .start_sync_execution(body.into_request(arn))
        .await?;
    Ok(Json(info.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only executions in this status.
    pub status: Option<String>,
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

/// List a state machine's executions, newest first.
#[utoipa::path(
    get,
    path = "/v1/state-machines/{name}/executions",
    tag = "executions",
    params(("name" = String, Path, description = "State machine name"), ListParams),
    responses(
        (status = 200, description = "One page", body = ExecutionList),
        (status = 400, description = "Unknown status or bad paging token", body = ErrorBody),
        (status = 404, description = "No such state machine", body = ErrorBody),
    )
)]
pub async fn list_executions(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ExecutionList>> {
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(ExecutionStatus::parse(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("unknown status {text:?}: use RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE"),
            )
            .with_field("status")
        })?),
    };
    let page = PageParams {
        max_results: params.max_results,
        next_token: params.next_token,
    };
    let result = state
        .engine()
        .list_executions(
            ExecutionFilter {
                state_machine_arn: state.state_machine_arn(&name),
                status,
            },
            page.page(),
        )
        .await?;
    Ok(Json(ExecutionList {
        executions: result.items.into_iter().map(Into::into).collect(),
        next_token: result.next_token,
    }))
}

/// Get an execution: status, input, output, error and cause.
#[utoipa::path(
    get,
    path = "/v1/state-machines/{name}/executions/{execution}",
    tag = "executions",
    params(
        ("name" = String, Path, description = "State machine name"),
        ("execution" = String, Path, description = "Execution name"),
    ),
    responses(
        (status = 200, description = "The execution", body = Execution),
        (status = 404, description = "No such execution", body = ErrorBody),
    )
)]
pub async fn get_execution(
    State(state): State<AppState>,
    ApiPath((name, execution)): ApiPath<(String, String)>,
) -> ApiResult<Json<Execution>> {
    let arn = state.execution_arn(&name, &execution);
    Ok(Json(state.engine().describe_execution(&arn).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    #[serde(default)]
    #[schema(example = "Cancelled")]
    pub error: Option<String>,
    #[serde(default)]
    #[schema(example = "stopped by an operator")]
    pub cause: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stopped {
    #[schema(example = "2026-11-22T06:00:05.000Z")]
    pub stopped_at: String,
}

/// Stop a running execution (it ends ABORTED with the given error and cause).
#[utoipa::path(
    post,
    path = "/v1/state-machines/{name}/executions/{execution}/stop",
    tag = "executions",
    params(
        ("name" = String, Path, description = "State machine name"),
        ("execution" = String, Path, description = "Execution name"),
    ),
    request_body = StopBody,
    responses(
        (status = 200, description = "Stopped", body = Stopped),
        (status = 404, description = "No such execution", body = ErrorBody),
    )
)]
pub async fn stop_execution(
    State(state): State<AppState>,
    ApiPath((name, execution)): ApiPath<(String, String)>,
    body: Option<ApiJson<StopBody>>,
) -> ApiResult<Json<Stopped>> {
    let body = body.map(|ApiJson(body)| body).unwrap_or_default();
    let arn = state.execution_arn(&name, &execution);
    let stopped = state
        .engine()
        .stop_execution(&arn, body.error, body.cause)
        .await?;
    Ok(Json(Stopped {
        stopped_at: rfc3339(stopped),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    #[schema(example = "2026-11-22T06:10:00.000Z")]
    pub redriven_at: String,
}

/// Redrive a FAILED, TIMED_OUT or ABORTED execution from the state that failed.
#[utoipa::path(
    post,
    path = "/v1/state-machines/{name}/executions/{execution}/redrive",
    tag = "executions",
    params(
        ("name" = String, Path, description = "State machine name"),
        ("execution" = String, Path, description = "Execution name"),
    ),
    responses(
        (status = 200, description = "Running again", body = Redriven),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 409, description = "Not redrivable (running, or succeeded)", body = ErrorBody),
    )
)]
pub async fn redrive_execution(
    State(state): State<AppState>,
    ApiPath((name, execution)): ApiPath<(String, String)>,
) -> ApiResult<Json<Redriven>> {
    let arn = state.execution_arn(&name, &execution);
    let date = state.engine().redrive_execution(&arn).await?;
    Ok(Json(Redriven {
        redriven_at: rfc3339(date),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
    /// Newest first.
    #[serde(default)]
    pub reverse_order: bool,
}

/// An execution's history: AWS's event types and detail fields, paged.
#[utoipa::path(
    get,
    path = "/v1/state-machines/{name}/executions/{execution}/history",
    tag = "executions",
    params(
        ("name" = String, Path, description = "State machine name"),
        ("execution" = String, Path, description = "Execution name"),
        HistoryParams,
    ),
    responses(
        (status = 200, description = "One page of events", body = History),
        (status = 400, description = "Bad paging token", body = ErrorBody),
        (status = 404, description = "No such execution", body = ErrorBody),
    )
)]
pub async fn get_history(
    State(state): State<AppState>,
    ApiPath((name, execution)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> ApiResult<Json<History>> {
    let arn = state.execution_arn(&name, &execution);
    let page = PageParams {
        max_results: params.max_results,
        next_token: params.next_token,
    };
    let result = state
        .engine()
        .get_execution_history(&arn, page.page(), params.reverse_order)
        .await?;
    Ok(Json(History {
        events: result.items.into_iter().map(Into::into).collect(),
        next_token: result.next_token,
    }))
}
