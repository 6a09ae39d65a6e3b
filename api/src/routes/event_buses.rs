//! `/v1/event-buses` (buses, events, rules, targets), `/v1/event-patterns/test`, `/v1/archives`,
//! `/v1/replays`, `/v1/dead-letters` and `/v1/webhooks/github/{bus}`: the event bus.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use stepyard_engine::bus::{self as bus, Bus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{PageParams, rfc3339};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_bus, list_buses))
        .routes(routes!(get_bus, delete_bus))
        .routes(routes!(put_events))
        .routes(routes!(list_rules))
        .routes(routes!(put_rule, get_rule, delete_rule))
        .routes(routes!(enable_rule))
        .routes(routes!(disable_rule))
        .routes(routes!(put_targets, list_targets))
        .routes(routes!(remove_target))
        .routes(routes!(test_pattern))
        .routes(routes!(create_archive, list_archives))
        .routes(routes!(get_archive, delete_archive))
        .routes(routes!(start_replay, list_replays))
        .routes(routes!(get_replay))
        .routes(routes!(cancel_replay))
        .routes(routes!(list_dead_letters))
        .routes(routes!(redrive_dead_letter))
        .routes(routes!(github_webhook))
}

fn pattern_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

fn pattern_value(text: &Option<String>) -> Option<Value> {
    text.as_ref().and_then(|t| serde_json::from_str(t).ok())
}

// ---- buses -----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct EventBus {
    #[schema(example = "orders")]
    pub name: String,
    #[schema(example = "arn:aws:events:us-east-1:123456789012:event-bus/orders")]
    pub arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
}

impl From<bus::EventBusInfo> for EventBus {
    fn from(b: bus::EventBusInfo) -> Self {
        EventBus {
            created_at: rfc3339(b.created_ms),
            name: b.name,
            arn: b.arn,
            description: b.description,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventBusList {
    pub event_buses: Vec<EventBus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventBusBody {
    #[schema(example = "orders")]
    pub name: String,
    pub description: Option<String>,
    /// Tags, key to value (see `POST /v1/event-buses/{bus}/tags`).
    #[serde(default)]
    #[schema(example = json!({"team": "platform"}))]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Create an event bus (`default` always exists).
#[utoipa::path(post, path = "/v1/event-buses", tag = "event bus",
    request_body = CreateEventBusBody,
    responses(
        (status = 201, description = "Created", body = EventBus),
        (status = 400, description = "Invalid name, a tag AWS would refuse (`ValidationError`) or more than 50 tags (`LimitExceeded`)", body = ErrorBody),
        (status = 409, description = "A bus of that name exists", body = ErrorBody),
    ))]
pub async fn create_bus(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateEventBusBody>,
) -> ApiResult<(StatusCode, Json<EventBus>)> {
    let info = state
        .bus()
        .create_event_bus_with_tags(&body.name, body.description, body.tags)
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// List event buses.
#[utoipa::path(get, path = "/v1/event-buses", tag = "event bus", params(PageParams),
    responses((status = 200, description = "One page", body = EventBusList)))]
pub async fn list_buses(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<EventBusList>> {
    let page = state.bus().list_event_buses(None, params.page())?;
    Ok(Json(EventBusList {
        event_buses: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Get an event bus.
#[utoipa::path(get, path = "/v1/event-buses/{bus}", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name")),
    responses(
        (status = 200, description = "The bus", body = EventBus),
        (status = 404, description = "No such bus", body = ErrorBody),
    ))]
pub async fn get_bus(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<EventBus>> {
    Ok(Json(state.bus().describe_event_bus(&name)?.into()))
}

/// Delete a custom event bus and its rules.
#[utoipa::path(delete, path = "/v1/event-buses/{bus}", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The default bus cannot be deleted", body = ErrorBody),
    ))]
pub async fn delete_bus(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.bus().delete_event_bus(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- events ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventEntry {
    #[schema(example = "github")]
    pub source: String,
    #[schema(example = "pull_request")]
    pub detail_type: String,
    /// The event's detail: a JSON object.
    #[schema(value_type = Object)]
    pub detail: Value,
    #[serde(default)]
    pub resources: Vec<String>,
    /// RFC 3339; now when absent.
    pub time: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutEventsBody {
    /// 1 to 10 events.
    pub entries: Vec<EventEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PutEventsResultEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "0b5f1c1e-8f0a-4c51-a0c3-2b5d43a1e9f7")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PutEventsResult {
    #[schema(example = 0)]
    pub failed_entry_count: usize,
    pub entries: Vec<PutEventsResultEntry>,
}

/// Publish events to a bus: each accepted event is on disk, matched and its deliveries queued
/// before the answer.
#[utoipa::path(post, path = "/v1/event-buses/{bus}/events", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name")),
    request_body = PutEventsBody,
    responses(
        (status = 200, description = "One result per entry, in order", body = PutEventsResult),
        (status = 400, description = "No entries or more than 10", body = ErrorBody),
        (status = 413, description = "Entries over 256 KiB", body = ErrorBody),
    ))]
pub async fn put_events(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PutEventsBody>,
) -> ApiResult<Json<PutEventsResult>> {
    let mut entries = Vec::with_capacity(body.entries.len());
    for (i, e) in body.entries.into_iter().enumerate() {
        let time_ms = match &e.time {
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|err| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "ValidationError",
                            format!("time is not RFC 3339: {err}"),
                        )
                        .with_field(format!("/entries/{i}/time"))
                    })?
                    .timestamp_millis()
                    .max(0) as u64,
            ),
            None => None,
        };
        entries.push(bus::PutEventsEntry {
            source: Some(e.source),
            detail_type: Some(e.detail_type),
            detail: Some(e.detail.to_string()),
            resources: e.resources,
            time_ms,
            event_bus_name: Some(name.clone()),
        });
    }
    let results = state.bus().put_events(entries).await?;
    let failed_entry_count = results.iter().filter(|r| r.error_code.is_some()).count();
    Ok(Json(PutEventsResult {
        failed_entry_count,
        entries: results
            .into_iter()
            .map(|r| PutEventsResultEntry {
                event_id: r.event_id,
                error_code: r.error_code,
                error_message: r.error_message,
            })
            .collect(),
    }))
}

// ---- rules -----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct Rule {
    pub name: String,
    #[schema(example = "arn:aws:events:us-east-1:123456789012:rule/prs")]
    pub arn: String,
    pub event_bus_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub event_pattern: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When a scheduled rule fires next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire_at: Option<String>,
}

impl From<bus::RuleInfo> for Rule {
    fn from(r: bus::RuleInfo) -> Self {
        Rule {
            event_pattern: pattern_value(&r.event_pattern),
            next_fire_at: r.next_fire_ms.map(rfc3339),
            state: r.state.as_str().into(),
            name: r.name,
            arn: r.arn,
            event_bus_name: r.event_bus_name,
            schedule_expression: r.schedule_expression,
            description: r.description,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub rules: Vec<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_pattern": {"source": ["github"], "detail-type": ["pull_request.opened"]}, "state": "ENABLED"}))]
pub struct RuleBody {
    /// An EventBridge event pattern (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub event_pattern: Option<Value>,
    /// `rate(5 minutes)`, `cron(0 12 * * ? *)` or `at(2026-12-24T18:00:00)` (default bus only).
    pub schedule_expression: Option<String>,
    /// `ENABLED` (default) or `DISABLED`.
    #[schema(example = "ENABLED")]
    pub state: Option<String>,
    pub description: Option<String>,
    /// Tags for a new rule, key to value; ignored when the rule exists (change those with
    /// `POST /v1/event-buses/{bus}/rules/{rule}/tags`), as EventBridge does.
    #[serde(default)]
    #[schema(example = json!({"team": "platform"}))]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// List a bus's rules.
#[utoipa::path(get, path = "/v1/event-buses/{bus}/rules", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), PageParams),
    responses(
        (status = 200, description = "One page", body = RuleList),
        (status = 404, description = "No such bus", body = ErrorBody),
    ))]
pub async fn list_rules(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<RuleList>> {
    let page = state.bus().list_rules(Some(&name), None, params.page())?;
    Ok(Json(RuleList {
        rules: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Create or update a rule (its targets are kept).
#[utoipa::path(put, path = "/v1/event-buses/{bus}/rules/{rule}", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name")),
    request_body = RuleBody,
    responses(
        (status = 200, description = "The rule", body = Rule),
        (status = 400, description = "Invalid pattern or schedule, a tag AWS would refuse or more than 50 tags (`field` is `/tags`)", body = ErrorBody),
        (status = 404, description = "No such bus", body = ErrorBody),
    ))]
pub async fn put_rule(
    State(state): State<AppState>,
    ApiPath((bus_name, rule)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RuleBody>,
) -> ApiResult<Json<Rule>> {
    let rule_state = match body.state.as_deref() {
        None => None,
        Some(s) => Some(bus::RuleState::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "state is ENABLED or DISABLED",
            )
            .with_field("/state")
        })?),
    };
    state
        .bus()
        .put_rule(bus::PutRule {
            name: rule.clone(),
            event_bus_name: Some(bus_name.clone()),
            event_pattern: pattern_text(&body.event_pattern),
            schedule_expression: body.schedule_expression,
            state: rule_state,
            description: body.description,
            role_arn: None,
            tags: body.tags,
        })
        .await
        .map_err(|e| {
            let field = match &e {
                stepyard_engine::Error::InvalidEventPattern(_) => Some("/event_pattern"),
                stepyard_engine::Error::LimitExceeded(_) => Some("/tags"),
                stepyard_engine::Error::ValidationException(m) if m.starts_with("tag") => {
                    Some("/tags")
                }
                stepyard_engine::Error::ValidationException(m) if m.contains("Schedule") => {
                    Some("/schedule_expression")
                }
                _ => None,
            };
            let err = ApiError::from(e);
            match field {
                Some(f) => err.with_field(f),
                None => err,
            }
        })?;
    Ok(Json(
        state.bus().describe_rule(Some(&bus_name), &rule)?.into(),
    ))
}

/// Get a rule.
#[utoipa::path(get, path = "/v1/event-buses/{bus}/rules/{rule}", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name")),
    responses(
        (status = 200, description = "The rule", body = Rule),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub async fn get_rule(
    State(state): State<AppState>,
    ApiPath((bus_name, rule)): ApiPath<(String, String)>,
) -> ApiResult<Json<Rule>> {
    Ok(Json(
        state.bus().describe_rule(Some(&bus_name), &rule)?.into(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteRuleParams {
    /// Delete even though the rule has targets.
    pub force: Option<bool>,
}

/// Delete a rule (one with targets only with `force=true`).
#[utoipa::path(delete, path = "/v1/event-buses/{bus}/rules/{rule}", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name"), DeleteRuleParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The rule has targets", body = ErrorBody),
    ))]
pub async fn delete_rule(
    State(state): State<AppState>,
    ApiPath((bus_name, rule)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<DeleteRuleParams>,
) -> ApiResult<StatusCode> {
    state
        .bus()
        .delete_rule(Some(&bus_name), &rule, params.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a rule.
#[utoipa::path(post, path = "/v1/event-buses/{bus}/rules/{rule}/enable", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name")),
    responses(
        (status = 204, description = "Enabled"),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub async fn enable_rule(
    State(state): State<AppState>,
    ApiPath((bus_name, rule)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.bus().enable_rule(Some(&bus_name), &rule).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable a rule.
#[utoipa::path(post, path = "/v1/event-buses/{bus}/rules/{rule}/disable", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub async fn disable_rule(
    State(state): State<AppState>,
    ApiPath((bus_name, rule)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.bus().disable_rule(Some(&bus_name), &rule).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- targets ---------------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputTransformer {
    /// Names → JSONPaths into the event.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub input_paths_map: indexmap::IndexMap<String, String>,
    /// Text with `<name>` placeholders (and `<aws.events.event>`, `<aws.events.rule-name>`, ...).
    pub input_template: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyWire {
    /// 0 to 185 (default 185).
    pub maximum_retry_attempts: Option<u32>,
    /// 60 to 86400 (default 86400).
    pub maximum_event_age_seconds: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetWire {
    #[schema(example = "scan")]
    pub id: String,
    /// A state machine, Lambda function, event bus, API destination or topic ARN.
    #[schema(example = "arn:aws:states:us-east-1:123456789012:stateMachine:scan")]
    pub arn: String,
    /// A constant JSON value to send instead of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// The part of the event to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_transformer: Option<InputTransformer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicyWire>,
}

impl From<TargetWire> for bus::Target {
    fn from(t: TargetWire) -> Self {
        let d = bus::RetryPolicy::default();
        bus::Target {
            id: t.id,
            arn: t.arn,
            input: t.input.map(|v| v.to_string()),
            input_path: t.input_path,
            input_transformer: t.input_transformer.map(|x| bus::InputTransformerSpec {
                input_paths_map: x.input_paths_map.into_iter().collect(),
                input_template: x.input_template,
            }),
            retry_policy: t.retry_policy.map(|r| bus::RetryPolicy {
                maximum_retry_attempts: r
                    .maximum_retry_attempts
                    .unwrap_or(d.maximum_retry_attempts),
                maximum_event_age_seconds: r
                    .maximum_event_age_seconds
                    .unwrap_or(d.maximum_event_age_seconds),
            }),
            ..Default::default()
        }
    }
}

impl From<bus::Target> for TargetWire {
    fn from(t: bus::Target) -> Self {
        TargetWire {
            id: t.id,
            arn: t.arn,
            input: t
                .input
                .as_deref()
                .and_then(|i| serde_json::from_str(i).ok()),
            input_path: t.input_path,
            input_transformer: t.input_transformer.map(|x| InputTransformer {
                input_paths_map: x.input_paths_map.into_iter().collect(),
                input_template: x.input_template,
            }),
            retry_policy: t.retry_policy.map(|r| RetryPolicyWire {
                maximum_retry_attempts: Some(r.maximum_retry_attempts),
                maximum_event_age_seconds: Some(r.maximum_event_age_seconds),
            }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTargetsBody {
    /// Added, or replaced by id; a rule has at most 5.
    pub targets: Vec<TargetWire>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetFailure {
    pub target_id: String,
    pub error_code: String,
    pub error_message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PutTargetsResult {
    /// Targets that were not taken (the others were).
    #[schema(example = json!([]))]
    pub failed: Vec<TargetFailure>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetList {
    pub targets: Vec<TargetWire>,
}

/// Add or replace targets of a rule.
#[utoipa::path(put, path = "/v1/event-buses/{bus}/rules/{rule}/targets", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name")),
    request_body = PutTargetsBody,
    responses(
        (status = 200, description = "Which targets failed", body = PutTargetsResult),
        (status = 400, description = "Too many targets", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub async fn put_targets(
    State(state): State<AppState>,
    ApiPath((bus_name, rule)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutTargetsBody>,
) -> ApiResult<Json<PutTargetsResult>> {
    let targets = body.targets.into_iter().map(Into::into).collect();
    let failed = state
        .bus()
        .put_targets(Some(&bus_name), &rule, targets)
        .await?;
    Ok(Json(PutTargetsResult {
        failed: failed
            .into_iter()
            .map(|f| TargetFailure {
                target_id: f.target_id,
                error_code: f.error_code,
                error_message: f.error_message,
            })
            .collect(),
    }))
}

/// List a rule's targets.
#[utoipa::path(get, path = "/v1/event-buses/{bus}/rules/{rule}/targets", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name")),
    responses(
        (status = 200, description = "The targets", body = TargetList),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub async fn list_targets(
    State(state): State<AppState>,
    ApiPath((bus_name, rule)): ApiPath<(String, String)>,
) -> ApiResult<Json<TargetList>> {
    let targets = state.bus().list_targets_by_rule(Some(&bus_name), &rule)?;
    Ok(Json(TargetList {
        targets: targets.into_iter().map(Into::into).collect(),
    }))
}

/// Remove a target from a rule.
#[utoipa::path(delete, path = "/v1/event-buses/{bus}/rules/{rule}/targets/{id}", tag = "event bus",
    params(("bus" = String, Path, description = "Bus name"), ("rule" = String, Path, description = "Rule name"), ("id" = String, Path, description = "Target id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such rule or target", body = ErrorBody),
    ))]
pub async fn remove_target(
    State(state): State<AppState>,
    ApiPath((bus_name, rule, id)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let failed = state
        .bus()
        .remove_targets(Some(&bus_name), &rule, &[id])
        .await?;
    if let Some(f) = failed.into_iter().next() {
        return Err(ApiError::not_found("TargetNotFound", f.error_message));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_pattern": {"source": ["github"]}, "event": {"id": "1", "source": "github", "detail-type": "pull_request.opened", "account": "123456789012", "region": "us-east-1", "time": "2026-11-22T06:00:00Z", "resources": [], "detail": {}}}))]
pub struct TestPatternBody {
    #[schema(value_type = Object)]
    pub event_pattern: Value,
    /// A whole event (`id`, `account`, `source`, `time`, `region`, `detail-type`, `detail`...).
    #[schema(value_type = Object)]
    pub event: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestPatternResult {
    #[schema(example = true)]
    pub matches: bool,
}

/// Does this event match this pattern? (TestEventPattern)
#[utoipa::path(post, path = "/v1/event-patterns/test", tag = "event bus",
    request_body = TestPatternBody,
    responses(
        (status = 200, description = "The answer", body = TestPatternResult),
        (status = 400, description = "Invalid pattern or event", body = ErrorBody),
    ))]
pub async fn test_pattern(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TestPatternBody>,
) -> ApiResult<Json<TestPatternResult>> {
    let matches = state
        .bus()
        .test_event_pattern(&body.event_pattern.to_string(), &body.event.to_string())
        .map_err(|e| {
            let field = if matches!(e, stepyard_engine::Error::InvalidEventPattern(_)) {
                "/event_pattern"
            } else {
                "/event"
            };
            ApiError::from(e).with_field(field)
        })?;
    Ok(Json(TestPatternResult { matches }))
}

// ---- archives and replays --------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct Archive {
    #[schema(example = "all-events")]
    pub name: String,
    pub arn: String,
    pub event_bus_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub event_pattern: Option<Value>,
    /// 0 keeps events forever.
    #[schema(example = 30)]
    pub retention_days: u32,
    pub event_count: u64,
    pub size_bytes: u64,
    pub created_at: String,
}

impl From<bus::ArchiveInfo> for Archive {
    fn from(a: bus::ArchiveInfo) -> Self {
        Archive {
            event_pattern: pattern_value(&a.event_pattern),
            created_at: rfc3339(a.created_ms),
            name: a.name,
            arn: a.arn,
            event_bus_arn: a.event_source_arn,
            retention_days: a.retention_days,
            event_count: a.event_count,
            size_bytes: a.size_bytes,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveList {
    pub archives: Vec<Archive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArchiveBody {
    pub name: String,
    /// The bus whose events are kept.
    #[schema(example = "default")]
    pub event_bus: String,
    #[schema(value_type = Option<Object>)]
    pub event_pattern: Option<Value>,
    pub retention_days: Option<u32>,
    pub description: Option<String>,
}

/// Archive a bus's events (all, or those matching a pattern).
#[utoipa::path(post, path = "/v1/archives", tag = "event bus",
    request_body = CreateArchiveBody,
    responses(
        (status = 201, description = "Created", body = Archive),
        (status = 404, description = "No such bus", body = ErrorBody),
        (status = 409, description = "An archive of that name exists", body = ErrorBody),
    ))]
pub async fn create_archive(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateArchiveBody>,
) -> ApiResult<(StatusCode, Json<Archive>)> {
    let info = state
        .bus()
        .create_archive(bus::CreateArchive {
            name: body.name,
            event_source_arn: body.event_bus,
            description: body.description,
            event_pattern: pattern_text(&body.event_pattern),
            retention_days: body.retention_days.unwrap_or(0),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// List archives.
#[utoipa::path(get, path = "/v1/archives", tag = "event bus", params(PageParams),
    responses((status = 200, description = "One page", body = ArchiveList)))]
pub async fn list_archives(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ArchiveList>> {
    let page = state.bus().list_archives(params.page())?;
    Ok(Json(ArchiveList {
        archives: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Get an archive (with its event count and size).
#[utoipa::path(get, path = "/v1/archives/{name}", tag = "event bus",
    params(("name" = String, Path, description = "Archive name")),
    responses(
        (status = 200, description = "The archive", body = Archive),
        (status = 404, description = "No such archive", body = ErrorBody),
    ))]
pub async fn get_archive(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Archive>> {
    Ok(Json(state.bus().describe_archive(&name)?.into()))
}

/// Delete an archive and its events.
#[utoipa::path(delete, path = "/v1/archives/{name}", tag = "event bus",
    params(("name" = String, Path, description = "Archive name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such archive", body = ErrorBody),
    ))]
pub async fn delete_archive(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.bus().delete_archive(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replay {
    #[schema(example = "replay-1")]
    pub name: String,
    pub arn: String,
    pub archive_arn: String,
    pub event_bus_arn: String,
    /// Only these rules see the replayed events (all when empty).
    pub rule_arns: Vec<String>,
    /// `STARTING`, `RUNNING`, `CANCELLING`, `COMPLETED`, `CANCELLED` or `FAILED`.
    #[schema(example = "COMPLETED")]
    pub state: String,
    pub start_time: String,
    pub end_time: String,
    pub events_replayed: u64,
    pub replay_started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_ended_at: Option<String>,
}

impl From<bus::ReplayInfo> for Replay {
    fn from(r: bus::ReplayInfo) -> Self {
        Replay {
            state: r.state.as_str().into(),
            start_time: rfc3339(r.event_start_ms),
            end_time: rfc3339(r.event_end_ms),
            replay_started_at: rfc3339(r.replay_start_ms),
            replay_ended_at: r.replay_end_ms.map(rfc3339),
            name: r.name,
            arn: r.arn,
            archive_arn: r.event_source_arn,
            event_bus_arn: r.destination_arn,
            rule_arns: r.filter_arns,
            events_replayed: r.events_replayed,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayList {
    pub replays: Vec<Replay>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartReplayBody {
    #[schema(example = "replay-1")]
    pub name: String,
    /// The archive's name.
    #[schema(example = "all-events")]
    pub archive: String,
    /// RFC 3339: events archived from this time...
    #[schema(example = "2026-11-22T06:00:00Z")]
    pub start_time: String,
    /// ...until this one (exclusive).
    #[schema(example = "2026-11-22T07:00:00Z")]
    pub end_time: String,
    /// Only these rules (ARNs) see the replayed events.
    #[serde(default)]
    pub rule_arns: Vec<String>,
    pub description: Option<String>,
}

fn time_field(text: &str, field: &str) -> ApiResult<u64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis().max(0) as u64)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                format!("{field} is not RFC 3339: {e}"),
            )
            .with_field(format!("/{field}"))
        })
}

/// Replay an archive's events from a time window back onto their bus.
#[utoipa::path(post, path = "/v1/replays", tag = "event bus",
    request_body = StartReplayBody,
    responses(
        (status = 201, description = "Started", body = Replay),
        (status = 400, description = "Invalid window", body = ErrorBody),
        (status = 404, description = "No such archive", body = ErrorBody),
        (status = 409, description = "A replay of that name exists", body = ErrorBody),
    ))]
pub async fn start_replay(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StartReplayBody>,
) -> ApiResult<(StatusCode, Json<Replay>)> {
    let bus_handle = state.bus();
    let archive = bus_handle.describe_archive(&body.archive)?;
    let info = bus_handle
        .start_replay(bus::StartReplay {
            name: body.name,
            description: body.description,
            event_source_arn: archive.arn,
            event_start_ms: time_field(&body.start_time, "start_time")?,
            event_end_ms: time_field(&body.end_time, "end_time")?,
            destination_arn: archive.event_source_arn,
            filter_arns: body.rule_arns,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// List replays.
#[utoipa::path(get, path = "/v1/replays", tag = "event bus", params(PageParams),
    responses((status = 200, description = "One page", body = ReplayList)))]
pub async fn list_replays(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ReplayList>> {
    let page = state.bus().list_replays(params.page())?;
    Ok(Json(ReplayList {
        replays: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Get a replay.
#[utoipa::path(get, path = "/v1/replays/{name}", tag = "event bus",
    params(("name" = String, Path, description = "Replay name")),
    responses(
        (status = 200, description = "The replay", body = Replay),
        (status = 404, description = "No such replay", body = ErrorBody),
    ))]
pub async fn get_replay(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Replay>> {
    Ok(Json(state.bus().describe_replay(&name)?.into()))
}

/// Cancel a running replay.
#[utoipa::path(post, path = "/v1/replays/{name}/cancel", tag = "event bus",
    params(("name" = String, Path, description = "Replay name")),
    responses(
        (status = 200, description = "Cancelling", body = Replay),
        (status = 404, description = "No such replay", body = ErrorBody),
        (status = 409, description = "The replay has ended", body = ErrorBody),
    ))]
pub async fn cancel_replay(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Replay>> {
    Ok(Json(state.bus().cancel_replay(&name).await?.into()))
}

// ---- dead letters ----------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct BusDeadLetter {
    pub id: String,
    #[schema(value_type = Object)]
    pub event: Value,
    pub rule_arn: String,
    #[schema(example = "start-scan")]
    pub target_id: String,
    pub target_arn: String,
    /// The input the target was to receive.
    pub input: String,
    /// `RETRY_ATTEMPTS_EXHAUSTED`, `MAXIMUM_EVENT_AGE_EXCEEDED`, `SDK_CLIENT_ERROR`, ...
    #[schema(example = "StateMachineDoesNotExist")]
    pub error_code: String,
    pub error_message: String,
    pub attempts: u32,
    pub dead_lettered_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BusDeadLetterList {
    pub items: Vec<BusDeadLetter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Deliveries that failed for good, oldest first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "event bus", params(PageParams),
    responses((status = 200, description = "One page", body = BusDeadLetterList)))]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<BusDeadLetterList>> {
    let page = state.bus().list_dead_letters(params.page())?;
    Ok(Json(BusDeadLetterList {
        items: page
            .items
            .into_iter()
            .map(|d| BusDeadLetter {
                dead_lettered_at: rfc3339(d.dead_lettered_ms),
                id: d.id,
                event: d.event,
                rule_arn: d.rule_arn,
                target_id: d.target_id,
                target_arn: d.target_arn,
                input: d.input,
                error_code: d.error_code,
                error_message: d.error_message,
                attempts: d.attempts,
            })
            .collect(),
        next_token: page.next_token,
    }))
}

/// Deliver a dead letter again (its attempts count afresh).
#[utoipa::path(post, path = "/v1/dead-letters/{id}/redrive", tag = "event bus",
    params(("id" = String, Path, description = "Dead letter id")),
    responses(
        (status = 202, description = "Queued for delivery"),
        (status = 404, description = "No such dead letter", body = ErrorBody),
    ))]
pub async fn redrive_dead_letter(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.bus().redrive_dead_letter(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

// ---- webhooks in -----------------------------------------------------------------------------

/// Checks GitHub's `X-Hub-Signature-256: sha256=HEX` (HMAC-SHA256 of the body) in constant time.
fn github_signature_ok(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Receive a GitHub webhook as an event: `source` `github`, `detail-type` from `X-GitHub-Event`,
/// the payload as `detail`. The signature is checked first; a bad one publishes nothing.
#[utoipa::path(post, path = "/v1/webhooks/github/{bus}", tag = "event bus",
    params(("bus" = String, Path, description = "Bus the event goes to")),
    request_body(content = Object, description = "GitHub's webhook payload", content_type = "application/json",
        example = json!({"action": "opened", "number": 42, "pull_request": {"number": 42, "title": "Add a scanner"}, "repository": {"full_name": "acme/app"}})),
    responses(
        (status = 202, description = "Published", body = PutEventsResultEntry),
        (status = 400, description = "Not a JSON object, or no X-GitHub-Event", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Hub-Signature-256", body = ErrorBody),
        (status = 404, description = "No such bus", body = ErrorBody),
    ))]
pub async fn github_webhook(
    State(state): State<AppState>,
    ApiPath(bus_name): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PutEventsResultEntry>)> {
    let unauthorized = |message: &str| {
        ApiError::new(StatusCode::UNAUTHORIZED, "InvalidSignature", message)
            .with_field("X-Hub-Signature-256")
    };
    let Some(secret) = &state.config().github_webhook_secret else {
        return Err(unauthorized(
            "no GitHub webhook secret is configured (github_webhook_secret), so no delivery can be verified",
        ));
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !github_signature_ok(secret, &body, signature) {
        return Err(unauthorized(
            "the X-Hub-Signature-256 header is missing or does not match the body",
        ));
    }
    let kind = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "the X-GitHub-Event header is missing",
            )
            .with_field("X-GitHub-Event")
        })?
        .to_string();
    let payload: Value = serde_json::from_slice(&body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MalformedJson",
                "a GitHub webhook body is a JSON object",
            )
        })?;
    state.bus().describe_event_bus(&bus_name)?;
    let mut results = state
        .bus()
        .put_events(vec![bus::PutEventsEntry {
            source: Some("github".into()),
            detail_type: Some(kind),
            detail: Some(payload.to_string()),
            resources: Vec::new(),
            time_ms: None,
            event_bus_name: Some(Bus::bus_name(&bus_name)?),
        }])
        .await?;
    let r = results.remove(0);
    if let Some(code) = r.error_code {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            &code,
            r.error_message.unwrap_or_default(),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(PutEventsResultEntry {
            event_id: r.event_id,
            error_code: None,
            error_message: None,
        }),
    ))
}
