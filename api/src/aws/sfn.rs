//! AWS Step Functions over the JSON 1.0 protocol (`X-Amz-Target: AWSStepFunctions.<Operation>`).
//!
//! Wire types here are AWS's request and response shapes (camelCase, epoch-second timestamps); they
//! are mapped onto the engine's own types and never stored.

use std::time::Duration;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepyard_engine::{
    CreateStateMachine, Engine, ExecutionFilter, ExecutionInfo, ExecutionStatus, PageRequest,
    StartExecution, StateMachineInfo, StateMachineType,
};

use super::{AwsError, Reply};

fn seconds(ms: u64) -> Value {
    json!(epoch_seconds(ms))
}

fn epoch_seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// An operation's request body (empty means `{}`), with AWS's error types for bad JSON.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            AwsError::validation(format!("1 validation error detected: {err}"))
        } else {
            AwsError::serialization(err.to_string())
        }
    })
}

/// Runs one Step Functions operation.
pub async fn dispatch(engine: &Engine, operation: &str, body: &[u8]) -> Result<Reply, AwsError> {
    // The two starts are the hot path: their replies are typed, not built as `Value`s.
    match operation {
        "StartExecution" => return start_execution(engine, parse(body)?).await,
        "StartSyncExecution" => return start_sync_execution(engine, parse(body)?).await,
        _ => {}
    }
    let reply = match operation {
        "CreateStateMachine" => create_state_machine(engine, parse(body)?).await,
        "DescribeStateMachine" => describe_state_machine(engine, parse(body)?).await,
        "UpdateStateMachine" => update_state_machine(engine, parse(body)?).await,
        "DeleteStateMachine" => delete_state_machine(engine, parse(body)?).await,
        "ListStateMachines" => list_state_machines(engine, parse(body)?).await,
        "ListStateMachineVersions" => list_state_machine_versions(engine, parse(body)?).await,
        "ValidateStateMachineDefinition" => validate_definition(parse(body)?),
        "DescribeExecution" => describe_execution(engine, parse(body)?).await,
        "ListExecutions" => list_executions(engine, parse(body)?).await,
        "StopExecution" => stop_execution(engine, parse(body)?).await,
        "RedriveExecution" => redrive_execution(engine, parse(body)?).await,
        "GetExecutionHistory" => get_execution_history(engine, parse(body)?).await,
        "DescribeStateMachineForExecution" => {
            describe_state_machine_for_execution(engine, parse(body)?).await
        }
        "SendTaskSuccess" => send_task_success(engine, parse(body)?).await,
        "SendTaskFailure" => send_task_failure(engine, parse(body)?).await,
        "SendTaskHeartbeat" => send_task_heartbeat(engine, parse(body)?).await,
        "CreateActivity" => create_activity(engine, parse(body)?).await,
        "DescribeActivity" => describe_activity(engine, parse(body)?).await,
        "DeleteActivity" => delete_activity(engine, parse(body)?).await,
        "ListActivities" => list_activities(engine, parse(body)?).await,
        "GetActivityTask" => get_activity_task(engine, parse(body)?).await,
        "TestState" => test_state(engine, parse(body)?).await,
        "TagResource" => tag_resource(engine, parse(body)?).await,
        "UntagResource" => untag_resource(engine, parse(body)?).await,
        "ListTagsForResource" => list_tags_for_resource(engine, parse(body)?).await,
        other => Err(AwsError::unknown_operation(other)),
    };
    reply.map(Reply::Json)
}

fn page(max_results: Option<u32>, next_token: Option<String>) -> PageRequest {
    PageRequest {
        max_results: max_results.unwrap_or(0),
        next_token,
    }
}

fn state_machine_type(text: Option<&str>) -> Result<StateMachineType, AwsError> {
    match text {
        None | Some("STANDARD") => Ok(StateMachineType::Standard),
        Some("EXPRESS") => Ok(StateMachineType::Express),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
        ))),
    }
}

fn describe_state_machine_json(info: &StateMachineInfo) -> Value {
    json!({
        "stateMachineArn": info.arn,
        "name": info.name,
        "status": match info.status {
            stepyard_engine::StateMachineStatus::Active => "ACTIVE",
            stepyard_engine::StateMachineStatus::Deleting => "DELETING",
        },
        "definition": info.definition,
        "roleArn": info.role_arn,
        "type": info.kind.as_str(),
        "creationDate": seconds(info.creation_date_ms),
        "revisionId": info.revision_id,
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": false},
        "tracingConfiguration": {"enabled": false},
    })
}

fn execution_json(info: &ExecutionInfo) -> Value {
    let mut out = json!({
        "executionArn": info.execution_arn,
        "stateMachineArn": info.state_machine_arn,
        "name": info.name,
        "status": info.status.as_str(),
        "startDate": seconds(info.start_date_ms),
        "input": info.input,
        "inputDetails": {"included": true},
        "redriveCount": info.redrive_count,
        "redriveStatus": info.redrive_status,
    });
    let object = out.as_object_mut().expect("json! object");
    if let Some(stop) = info.stop_date_ms {
        object.insert("stopDate".into(), seconds(stop));
    }
    if let Some(output) = &info.output {
        object.insert("output".into(), json!(output));
        object.insert("outputDetails".into(), json!({"included": true}));
    }
    if let Some(error) = &info.error {
        object.insert("error".into(), json!(error));
    }
    if let Some(cause) = &info.cause {
        object.insert("cause".into(), json!(cause));
    }
    if let Some(date) = info.redrive_date_ms {
        object.insert("redriveDate".into(), seconds(date));
    }
    if let Some(reason) = &info.redrive_status_reason {
        object.insert("redriveStatusReason".into(), json!(reason));
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateStateMachineRequest {
    name: String,
    definition: String,
    role_arn: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    publish: bool,
    #[serde(default)]
    tags: Vec<AwsTag>,
}

async fn create_state_machine(
    engine: &Engine,
    req: CreateStateMachineRequest,
) -> Result<Value, AwsError> {
    let info = engine
        .create_state_machine(CreateStateMachine {
            name: req.name,
            definition: req.definition,
            kind: state_machine_type(req.kind.as_deref())?,
            role_arn: req.role_arn,
            tags: tag_map(req.tags),
        })
        .await
        .map_err(tag_error)?;
    Ok(json!({
        "stateMachineArn": info.arn,
        "creationDate": seconds(info.creation_date_ms),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateMachineArnRequest {
    state_machine_arn: String,
}

async fn describe_state_machine(
    engine: &Engine,
    req: StateMachineArnRequest,
) -> Result<Value, AwsError> {
    // A version ARN is the state machine's ARN with `:REVISION_ID` after the name.
    if let Some((sm_arn, revision_id)) = split_version_arn(&req.state_machine_arn) {
        let revision = engine
            .describe_state_machine_revision(sm_arn, revision_id)
            .await?;
        let info = engine.describe_state_machine(sm_arn).await?;
        return Ok(json!({
            "stateMachineArn": revision.version_arn,
            "name": info.name,
            "status": "ACTIVE",
            "definition": revision.definition,
            "roleArn": revision.role_arn,
            "type": revision.kind.as_str(),
            "creationDate": seconds(revision.creation_date_ms),
            "revisionId": revision.revision_id,
            "loggingConfiguration": {"level": "OFF", "includeExecutionData": false},
            "tracingConfiguration": {"enabled": false},
        }));
    }
    let info = engine
        .describe_state_machine(&req.state_machine_arn)
        .await?;
    Ok(describe_state_machine_json(&info))
}

/// `(state machine ARN, revision id)` of `arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME:REVISION`.
fn split_version_arn(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 8 && parts[5] == "stateMachine" && !parts[7].is_empty() {
        let (sm_arn, revision) = arn.rsplit_once(':')?;
        return Some((sm_arn, revision));
    }
    None
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListVersionsRequest {
    state_machine_arn: String,
    max_results: Option<u32>,
    next_token: Option<String>,
}

async fn list_state_machine_versions(
    engine: &Engine,
    req: ListVersionsRequest,
) -> Result<Value, AwsError> {
    let page = engine
        .list_state_machine_revisions(
            &req.state_machine_arn,
            page(req.max_results, req.next_token),
        )
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|revision| {
            json!({
                "stateMachineVersionArn": revision.version_arn,
                "creationDate": seconds(revision.creation_date_ms),
            })
        })
        .collect();
    Ok(with_token(
        json!({ "stateMachineVersions": items }),
        page.next_token,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStateMachineRequest {
    state_machine_arn: String,
    definition: Option<String>,
    role_arn: Option<String>,
}

async fn update_state_machine(
    engine: &Engine,
    req: UpdateStateMachineRequest,
) -> Result<Value, AwsError> {
    if req.definition.is_none() && req.role_arn.is_none() {
        return Err(AwsError::validation(
            "Either the definition, the roleArn or the loggingConfiguration must be specified",
        ));
    }
    if let Some(role) = &req.role_arn
        && !(1..=256).contains(&role.chars().count())
    {
        let bound = if role.is_empty() {
            "greater than or equal to 1"
        } else {
            "less than or equal to 256"
        };
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{role}' at 'roleArn' failed to satisfy constraint: Member must have length {bound}"
        )));
    }
    let info = engine
        .update_state_machine_with(&req.state_machine_arn, req.definition, req.role_arn)
        .await?;
    Ok(json!({
        "updateDate": seconds(info.update_date_ms),
        "revisionId": info.revision_id,
    }))
}

async fn delete_state_machine(
    engine: &Engine,
    req: StateMachineArnRequest,
) -> Result<Value, AwsError> {
    engine.delete_state_machine(&req.state_machine_arn).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListRequest {
    max_results: Option<u32>,
    next_token: Option<String>,
}

async fn list_state_machines(engine: &Engine, req: ListRequest) -> Result<Value, AwsError> {
    let page = engine
        .list_state_machines(page(req.max_results, req.next_token))
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|info| {
            json!({
                "stateMachineArn": info.arn,
                "name": info.name,
                "type": info.kind.as_str(),
                "creationDate": seconds(info.creation_date_ms),
            })
        })
        .collect();
    Ok(with_token(
        json!({ "stateMachines": items }),
        page.next_token,
    ))
}

fn with_token(mut value: Value, token: Option<String>) -> Value {
    if let (Some(token), Some(object)) = (token, value.as_object_mut()) {
        object.insert("nextToken".into(), json!(token));
    }
    value
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidateRequest {
    definition: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    max_results: Option<usize>,
}

fn validate_definition(req: ValidateRequest) -> Result<Value, AwsError> {
    state_machine_type(req.kind.as_deref())?;
    let problems = stepyard_statelang::validate(&req.definition);
    let limit = req.max_results.filter(|n| *n > 0).unwrap_or(100);
    let diagnostics: Vec<Value> = problems
        .iter()
        .take(limit)
        .map(|problem| {
            json!({
                "severity": "ERROR",
                "code": problem.code.as_str(),
                "message": problem.message,
                "location": problem.pointer,
            })
        })
        .collect();
    Ok(json!({
        "result": if problems.is_empty() { "OK" } else { "FAIL" },
        "diagnostics": diagnostics,
        "truncated": problems.len() > limit,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartExecutionRequest {
    state_machine_arn: String,
    name: Option<String>,
    input: Option<String>,
}

impl From<StartExecutionRequest> for StartExecution {
    fn from(req: StartExecutionRequest) -> Self {
        StartExecution {
            state_machine_arn: req.state_machine_arn,
            name: req.name,
            input: req.input,
        }
    }
}

/// A start may name a version ARN (as AWS allows): the current revision runs; an older one is
/// refused rather than silently running the current definition instead.
async fn resolve_version(
    engine: &Engine,
    mut req: StartExecutionRequest,
) -> Result<StartExecutionRequest, AwsError> {
    if let Some((sm_arn, revision_id)) = split_version_arn(&req.state_machine_arn) {
        let revision = engine
            .describe_state_machine_revision(sm_arn, revision_id)
            .await?;
        if !revision.current {
            return Err(AwsError::validation(format!(
                "only the current version of a state machine can be started; {} is an older one",
                req.state_machine_arn
            )));
        }
        req.state_machine_arn = sm_arn.to_owned();
    }
    Ok(req)
}

/// `{"included": true}`: the whole input or output is in the reply.
#[derive(Serialize)]
struct Included {
    included: bool,
}

const INCLUDED: Included = Included { included: true };

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartExecutionReply<'a> {
    execution_arn: &'a str,
    start_date: f64,
}

/// StartSyncExecution's reply: DescribeExecution's members without the redrive ones, and
/// `billingDetails`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncExecutionReply<'a> {
    execution_arn: &'a str,
    state_machine_arn: &'a str,
    name: &'a str,
    status: &'a str,
    start_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_date: Option<f64>,
    input: &'a str,
    input_details: Included,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_details: Option<Included>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
    billing_details: BillingDetails,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BillingDetails {
    #[serde(rename = "billedMemoryUsedInMB")]
    billed_memory_used_in_mb: u64,
    billed_duration_in_milliseconds: u64,
}

async fn start_execution(engine: &Engine, req: StartExecutionRequest) -> Result<Reply, AwsError> {
    let req = resolve_version(engine, req).await?;
    let started = engine.start_execution(req.into()).await?;
    Reply::of(&StartExecutionReply {
        execution_arn: &started.execution_arn,
        start_date: epoch_seconds(started.start_date_ms),
    })
}

async fn start_sync_execution(
    engine: &Engine,
    req: StartExecutionRequest,
) -> Result<Reply, AwsError> {
    let req = resolve_version(engine, req).await?;
    let info = engine.start_sync_execution(req.into()).await?;
    let billed = info
        .stop_date_ms
        .unwrap_or(info.start_date_ms)
        .saturating_sub(info.start_date_ms)
        .max(100);
    Reply::of(&SyncExecutionReply {
        execution_arn: &info.execution_arn,
        state_machine_arn: &info.state_machine_arn,
        name: &info.name,
        status: info.status.as_str(),
        start_date: epoch_seconds(info.start_date_ms),
        stop_date: info.stop_date_ms.map(epoch_seconds),
        input: &info.input,
        input_details: INCLUDED,
        output: info.output.as_deref(),
        output_details: info.output.as_ref().map(|_| INCLUDED),
        error: info.error.as_deref(),
        cause: info.cause.as_deref(),
        billing_details: BillingDetails {
            billed_memory_used_in_mb: 64,
            billed_duration_in_milliseconds: billed,
        },
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionArnRequest {
    execution_arn: String,
}

async fn describe_execution(engine: &Engine, req: ExecutionArnRequest) -> Result<Value, AwsError> {
    let info = engine.describe_execution(&req.execution_arn).await?;
    Ok(execution_json(&info))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListExecutionsRequest {
    state_machine_arn: Option<String>,
    status_filter: Option<String>,
    max_results: Option<u32>,
    next_token: Option<String>,
}

async fn list_executions(engine: &Engine, req: ListExecutionsRequest) -> Result<Value, AwsError> {
    let status = match req.status_filter.as_deref() {
        None => None,
        Some(text) => Some(ExecutionStatus::parse(text).ok_or_else(|| {
            AwsError::validation(format!(
                "1 validation error detected: Value '{text}' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE]"
            ))
        })?),
    };
    let Some(state_machine_arn) = req.state_machine_arn else {
        return Err(AwsError::validation(
            "Must provide a StateMachine ARN or MapRun ARN",
        ));
    };
    let page = engine
        .list_executions(
            ExecutionFilter {
                state_machine_arn,
                status,
            },
            page(req.max_results, req.next_token),
        )
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|info| {
            let mut item = json!({
                "executionArn": info.execution_arn,
                "stateMachineArn": info.state_machine_arn,
                "name": info.name,
                "status": info.status.as_str(),
                "startDate": seconds(info.start_date_ms),
                "redriveCount": info.redrive_count,
            });
            if let (Some(stop), Some(object)) = (info.stop_date_ms, item.as_object_mut()) {
                object.insert("stopDate".into(), seconds(stop));
            }
            item
        })
        .collect();
    Ok(with_token(json!({ "executions": items }), page.next_token))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopExecutionRequest {
    execution_arn: String,
    error: Option<String>,
    cause: Option<String>,
}

async fn stop_execution(engine: &Engine, req: StopExecutionRequest) -> Result<Value, AwsError> {
    let stop_date_ms = engine
        .stop_execution(&req.execution_arn, req.error, req.cause)
        .await?;
    Ok(json!({ "stopDate": seconds(stop_date_ms) }))
}

async fn redrive_execution(engine: &Engine, req: ExecutionArnRequest) -> Result<Value, AwsError> {
    let redrive_date_ms = engine.redrive_execution(&req.execution_arn).await?;
    Ok(json!({ "redriveDate": seconds(redrive_date_ms) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryRequest {
    execution_arn: String,
    max_results: Option<u32>,
    next_token: Option<String>,
    #[serde(default)]
    reverse_order: bool,
    include_execution_data: Option<bool>,
}

async fn get_execution_history(engine: &Engine, req: HistoryRequest) -> Result<Value, AwsError> {
    let page = engine
        .get_execution_history(
            &req.execution_arn,
            page(req.max_results, req.next_token),
            req.reverse_order,
        )
        .await?;
    let include_data = req.include_execution_data.unwrap_or(true);
    let events: Vec<Value> = page
        .items
        .iter()
        .map(|event| {
            let mut json = event.to_aws_json();
            if !include_data {
                strip_execution_data(&mut json);
            }
            json
        })
        .collect();
    Ok(with_token(json!({ "events": events }), page.next_token))
}

/// `includeExecutionData: false` drops inputs and outputs from every event's details.
fn strip_execution_data(event: &mut Value) {
    if let Some(object) = event.as_object_mut() {
        for (key, details) in object.iter_mut() {
            if key.ends_with("EventDetails")
                && let Some(details) = details.as_object_mut()
            {
                for field in ["input", "output", "parameters"] {
                    details.remove(field);
                }
            }
        }
    }
}

async fn describe_state_machine_for_execution(
    engine: &Engine,
    req: ExecutionArnRequest,
) -> Result<Value, AwsError> {
    let info = engine
        .describe_state_machine_for_execution(&req.execution_arn)
        .await?;
    Ok(json!({
        "stateMachineArn": info.arn,
        "name": info.name,
        "definition": info.definition,
        "roleArn": info.role_arn,
        "updateDate": seconds(info.update_date_ms),
        "revisionId": info.revision_id,
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": false},
        "tracingConfiguration": {"enabled": false},
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendTaskSuccessRequest {
    task_token: String,
    output: String,
}

async fn send_task_success(
    engine: &Engine,
    req: SendTaskSuccessRequest,
) -> Result<Value, AwsError> {
    engine
        .send_task_success(&req.task_token, &req.output)
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendTaskFailureRequest {
    task_token: String,
    error: Option<String>,
    cause: Option<String>,
}

async fn send_task_failure(
    engine: &Engine,
    req: SendTaskFailureRequest,
) -> Result<Value, AwsError> {
    engine
        .send_task_failure(&req.task_token, req.error, req.cause)
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskTokenRequest {
    task_token: String,
}

async fn send_task_heartbeat(engine: &Engine, req: TaskTokenRequest) -> Result<Value, AwsError> {
    engine.send_task_heartbeat(&req.task_token).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateActivityRequest {
    name: String,
    #[serde(default)]
    tags: Vec<AwsTag>,
}

async fn create_activity(engine: &Engine, req: CreateActivityRequest) -> Result<Value, AwsError> {
    let info = engine
        .create_activity_with_tags(&req.name, tag_map(req.tags))
        .await
        .map_err(tag_error)?;
    Ok(json!({
        "activityArn": info.arn,
        "creationDate": seconds(info.creation_date_ms),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityArnRequest {
    activity_arn: String,
}

async fn describe_activity(engine: &Engine, req: ActivityArnRequest) -> Result<Value, AwsError> {
    let info = engine.describe_activity(&req.activity_arn).await?;
    Ok(json!({
        "activityArn": info.arn,
        "name": info.name,
        "creationDate": seconds(info.creation_date_ms),
    }))
}

async fn delete_activity(engine: &Engine, req: ActivityArnRequest) -> Result<Value, AwsError> {
    engine.delete_activity(&req.activity_arn).await?;
    Ok(json!({}))
}

async fn list_activities(engine: &Engine, req: ListRequest) -> Result<Value, AwsError> {
    let page = engine
        .list_activities(page(req.max_results, req.next_token))
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|info| {
            json!({
                "activityArn": info.arn,
                "name": info.name,
                "creationDate": seconds(info.creation_date_ms),
            })
        })
        .collect();
    Ok(with_token(json!({ "activities": items }), page.next_token))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetActivityTaskRequest {
    activity_arn: String,
    worker_name: Option<String>,
}

/// AWS holds the poll open for up to 60 seconds and answers with no token when nothing came.
const ACTIVITY_POLL: Duration = Duration::from_secs(60);

async fn get_activity_task(
    engine: &Engine,
    req: GetActivityTaskRequest,
) -> Result<Value, AwsError> {
    let task = engine
        .get_activity_task(&req.activity_arn, req.worker_name, ACTIVITY_POLL)
        .await?;
    Ok(match task {
        Some(task) => json!({ "taskToken": task.task_token, "input": task.input }),
        None => json!({}),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestStateRequest {
    definition: String,
    input: Option<String>,
    variables: Option<String>,
}

async fn test_state(engine: &Engine, req: TestStateRequest) -> Result<Value, AwsError> {
    super::test_state::run(
        engine,
        &req.definition,
        req.input.as_deref(),
        req.variables.as_deref(),
    )
    .await
}

/// A tag as Step Functions spells it: `{"key", "value"}` (a missing value is empty).
#[derive(Deserialize, Serialize)]
struct AwsTag {
    key: String,
    #[serde(default)]
    value: String,
}

/// A tag list as a map; a key given twice keeps its last value.
fn tag_map(tags: Vec<AwsTag>) -> stepyard_engine::Tags {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

/// Step Functions' names for the tag errors: `ResourceNotFound` and `TooManyTags` (EventBridge
/// calls the first `ResourceNotFoundException`, and the engine shares that error).
fn tag_error(err: stepyard_engine::Error) -> AwsError {
    use stepyard_engine::Error as E;
    match err {
        E::ResourceNotFound(message) => {
            AwsError::new(StatusCode::BAD_REQUEST, "ResourceNotFound", message)
        }
        E::LimitExceeded(message) => AwsError::new(StatusCode::BAD_REQUEST, "TooManyTags", message),
        other => other.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceRequest {
    resource_arn: String,
    tags: Vec<AwsTag>,
}

async fn tag_resource(engine: &Engine, req: TagResourceRequest) -> Result<Value, AwsError> {
    engine
        .tag_resource(&req.resource_arn, tag_map(req.tags))
        .await
        .map_err(tag_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

async fn untag_resource(engine: &Engine, req: UntagResourceRequest) -> Result<Value, AwsError> {
    engine
        .untag_resource(&req.resource_arn, &req.tag_keys)
        .await
        .map_err(tag_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceArnRequest {
    resource_arn: String,
}

async fn list_tags_for_resource(
    engine: &Engine,
    req: ResourceArnRequest,
) -> Result<Value, AwsError> {
    let tags = engine
        .list_tags_for_resource(&req.resource_arn)
        .await
        .map_err(tag_error)?;
    let tags: Vec<AwsTag> = tags
        .into_iter()
        .map(|(key, value)| AwsTag { key, value })
        .collect();
    Ok(json!({ "tags": tags }))
}
