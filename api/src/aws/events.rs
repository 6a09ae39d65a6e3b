//! Amazon EventBridge over the JSON 1.1 protocol (`X-Amz-Target: AWSEvents.<Operation>`).
//!
//! Wire types are AWS's shapes (PascalCase, epoch-second timestamps), mapped onto the engine's
//! bus types and never stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stepyard_engine::PageRequest;
use stepyard_engine::bus::*;

use super::AwsError;
use super::sfn::parse;

fn seconds(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0).max(0.0) as u64
}

/// Drops `null` members, as AWS leaves unset members out.
fn compact(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, x| !x.is_null());
    }
    v
}

fn page(limit: Option<u32>, next_token: Option<String>) -> PageRequest {
    PageRequest {
        max_results: limit.unwrap_or(0),
        next_token,
    }
}

/// Runs one EventBridge operation.
pub async fn dispatch(bus: &Bus, operation: &str, body: &[u8]) -> Result<Value, AwsError> {
    match operation {
        "PutEvents" => put_events(bus, parse(body)?).await,
        "PutRule" => put_rule(bus, parse(body)?).await,
        "DescribeRule" => {
            let r: RuleRef = parse(body)?;
            Ok(rule_json(
                &bus.describe_rule(r.event_bus_name.as_deref(), &r.name)?,
            ))
        }
        "ListRules" => {
            let r: ListReq = parse(body)?;
            let p = bus.list_rules(
                r.event_bus_name.as_deref(),
                r.name_prefix.as_deref(),
                page(r.limit, r.next_token),
            )?;
            Ok(compact(json!({
                "Rules": p.items.iter().map(rule_json).collect::<Vec<_>>(),
                "NextToken": p.next_token,
            })))
        }
        "DeleteRule" => {
            let r: RuleRef = parse(body)?;
            bus.delete_rule(
                r.event_bus_name.as_deref(),
                &r.name,
                r.force.unwrap_or(false),
            )
            .await?;
            Ok(json!({}))
        }
        "EnableRule" => {
            let r: RuleRef = parse(body)?;
            bus.enable_rule(r.event_bus_name.as_deref(), &r.name)
                .await?;
            Ok(json!({}))
        }
        "DisableRule" => {
            let r: RuleRef = parse(body)?;
            bus.disable_rule(r.event_bus_name.as_deref(), &r.name)
                .await?;
            Ok(json!({}))
        }
        "PutTargets" => put_targets(bus, parse(body)?).await,
        "RemoveTargets" => {
            let r: RemoveTargetsReq = parse(body)?;
            let failed = bus
                .remove_targets(r.event_bus_name.as_deref(), &r.rule, &r.ids)
                .await?;
            Ok(failures_json(failed))
        }
        "ListTargetsByRule" => {
            let r: TargetsOfRule = parse(body)?;
            let targets = bus.list_targets_by_rule(r.event_bus_name.as_deref(), &r.rule)?;
            Ok(json!({"Targets": targets.iter().map(target_json).collect::<Vec<_>>()}))
        }
        "ListRuleNamesByTarget" => {
            let r: ByTarget = parse(body)?;
            let names =
                bus.list_rule_names_by_target(r.event_bus_name.as_deref(), &r.target_arn)?;
            Ok(json!({"RuleNames": names}))
        }
        "CreateEventBus" => {
            let r: CreateBusReq = parse(body)?;
            let info = bus
                .create_event_bus_with_tags(&r.name, r.description, tag_map(r.tags))
                .await?;
            Ok(json!({"EventBusArn": info.arn}))
        }
        "DescribeEventBus" => {
            let r: NameOpt = parse(body)?;
            let info = bus.describe_event_bus(r.name.as_deref().unwrap_or(DEFAULT_BUS))?;
            Ok(bus_json(&info))
        }
        "DeleteEventBus" => {
            let r: Name = parse(body)?;
            bus.delete_event_bus(&r.name).await?;
            Ok(json!({}))
        }
        "ListEventBuses" => {
            let r: ListReq = parse(body)?;
            let p = bus.list_event_buses(r.name_prefix.as_deref(), page(r.limit, r.next_token))?;
            Ok(compact(json!({
                "EventBuses": p.items.iter().map(bus_json).collect::<Vec<_>>(),
                "NextToken": p.next_token,
            })))
        }
        "TestEventPattern" => {
            let r: TestPatternReq = parse(body)?;
            Ok(json!({"Result": bus.test_event_pattern(&r.event_pattern, &r.event)?}))
        }
        "CreateArchive" => {
            let r: CreateArchiveReq = parse(body)?;
            let info = bus
                .create_archive(CreateArchive {
                    name: r.archive_name,
                    event_source_arn: r.event_source_arn,
                    description: r.description,
                    event_pattern: r.event_pattern,
                    retention_days: r.retention_days.unwrap_or(0),
                })
                .await?;
            Ok(json!({"ArchiveArn": info.arn, "State": info.state,
                      "CreationTime": seconds(info.created_ms)}))
        }
        "DescribeArchive" => {
            let r: ArchiveRef = parse(body)?;
            Ok(archive_json(&bus.describe_archive(&r.archive_name)?))
        }
        "ListArchives" => {
            let r: ListReq = parse(body)?;
            let p = bus.list_archives(page(r.limit, r.next_token))?;
            let items: Vec<Value> = p
                .items
                .iter()
                .filter(|a| {
                    r.name_prefix
                        .as_deref()
                        .is_none_or(|pre| a.name.starts_with(pre))
                })
                .map(archive_json)
                .collect();
            Ok(compact(
                json!({"Archives": items, "NextToken": p.next_token}),
            ))
        }
        "DeleteArchive" => {
            let r: ArchiveRef = parse(body)?;
            bus.delete_archive(&r.archive_name).await?;
            Ok(json!({}))
        }
        "StartReplay" => start_replay(bus, parse(body)?).await,
        "DescribeReplay" => {
            let r: ReplayRef = parse(body)?;
            Ok(replay_json(&bus.describe_replay(&r.replay_name)?))
        }
        "ListReplays" => {
            let r: ListReq = parse(body)?;
            let p = bus.list_replays(page(r.limit, r.next_token))?;
            Ok(compact(json!({
                "Replays": p.items.iter().map(replay_json).collect::<Vec<_>>(),
                "NextToken": p.next_token,
            })))
        }
        "CancelReplay" => {
            let r: ReplayRef = parse(body)?;
            let info = bus.cancel_replay(&r.replay_name).await?;
            Ok(json!({"ReplayArn": info.arn, "State": info.state.as_str()}))
        }
        "CreateConnection" => create_connection(bus, parse(body)?).await,
        "DescribeConnection" => {
            let r: Name = parse(body)?;
            Ok(connection_json(&bus.describe_connection(&r.name)?))
        }
        "ListConnections" => {
            let r: ListReq = parse(body)?;
            let p = bus.list_connections(page(r.limit, r.next_token))?;
            Ok(compact(json!({
                "Connections": p.items.iter().map(connection_json).collect::<Vec<_>>(),
                "NextToken": p.next_token,
            })))
        }
        "DeleteConnection" => {
            let r: Name = parse(body)?;
            let info = bus.describe_connection(&r.name)?;
            bus.delete_connection(&r.name).await?;
            Ok(json!({"ConnectionArn": info.arn, "ConnectionState": "DELETING"}))
        }
        "CreateApiDestination" => {
            let r: CreateDestinationReq = parse(body)?;
            let info = bus
                .create_api_destination(CreateApiDestination {
                    name: r.name,
                    description: r.description,
                    connection_arn: r.connection_arn,
                    invocation_endpoint: r.invocation_endpoint,
                    http_method: r.http_method,
                    invocation_rate_limit_per_second: r.invocation_rate_limit_per_second,
                })
                .await?;
            Ok(
                json!({"ApiDestinationArn": info.arn, "ApiDestinationState": info.state,
                      "CreationTime": seconds(info.created_ms),
                      "LastModifiedTime": seconds(info.created_ms)}),
            )
        }
        "DescribeApiDestination" => {
            let r: Name = parse(body)?;
            Ok(destination_json(&bus.describe_api_destination(&r.name)?))
        }
        "ListApiDestinations" => {
            let r: ListReq = parse(body)?;
            let p = bus.list_api_destinations(page(r.limit, r.next_token))?;
            Ok(compact(json!({
                "ApiDestinations": p.items.iter().map(destination_json).collect::<Vec<_>>(),
                "NextToken": p.next_token,
            })))
        }
        "DeleteApiDestination" => {
            let r: Name = parse(body)?;
            bus.delete_api_destination(&r.name).await?;
            Ok(json!({}))
        }
        "TagResource" => {
            let r: TagReq = parse(body)?;
            bus.tag_resource(&r.resource_arn, tag_map(r.tags)).await?;
            Ok(json!({}))
        }
        "UntagResource" => {
            let r: UntagReq = parse(body)?;
            bus.untag_resource(&r.resource_arn, &r.tag_keys).await?;
            Ok(json!({}))
        }
        "ListTagsForResource" => {
            let r: ResourceArn = parse(body)?;
            let tags: Vec<Tag> = bus
                .list_tags_for_resource(&r.resource_arn)?
                .into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect();
            Ok(json!({ "Tags": tags }))
        }
        other => Err(AwsError::unknown_operation(other)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Name {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameOpt {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleRef {
    name: String,
    event_bus_name: Option<String>,
    force: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListReq {
    event_bus_name: Option<String>,
    name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBusReq {
    name: String,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

/// A tag as EventBridge spells it: `{"Key", "Value"}`.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

/// A tag list as a map; a key given twice keeps its last value.
fn tag_map(tags: Vec<Tag>) -> stepyard_engine::Tags {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

#[derive(Deserialize)]
struct TagReq {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    #[serde(rename = "Tags")]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct UntagReq {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    #[serde(rename = "TagKeys")]
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
struct ResourceArn {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TestPatternReq {
    event_pattern: String,
    event: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsReq {
    entries: Vec<EntryIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryIn {
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    time: Option<f64>,
    event_bus_name: Option<String>,
}

async fn put_events(bus: &Bus, r: PutEventsReq) -> Result<Value, AwsError> {
    let entries = r
        .entries
        .into_iter()
        .map(|e| PutEventsEntry {
            source: e.source,
            detail_type: e.detail_type,
            detail: e.detail,
            resources: e.resources,
            time_ms: e.time.map(millis),
            event_bus_name: e.event_bus_name,
        })
        .collect();
    let results = bus.put_events(entries).await?;
    let failed = results.iter().filter(|r| r.error_code.is_some()).count();
    let entries: Vec<Value> = results
        .into_iter()
        .map(|r| {
            compact(json!({"EventId": r.event_id, "ErrorCode": r.error_code,
                           "ErrorMessage": r.error_message}))
        })
        .collect();
    Ok(json!({"FailedEntryCount": failed, "Entries": entries}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRuleReq {
    name: String,
    event_bus_name: Option<String>,
    event_pattern: Option<String>,
    schedule_expression: Option<String>,
    state: Option<String>,
    description: Option<String>,
    role_arn: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn put_rule(bus: &Bus, r: PutRuleReq) -> Result<Value, AwsError> {
    let state = match r.state.as_deref() {
        None => None,
        Some(s) => Some(RuleState::parse(s).ok_or_else(|| {
            AwsError::validation(format!(
                "1 validation error detected: Value '{s}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
            ))
        })?),
    };
    let arn = bus
        .put_rule(PutRule {
            name: r.name,
            event_bus_name: r.event_bus_name,
            event_pattern: r.event_pattern,
            schedule_expression: r.schedule_expression,
            state,
            description: r.description,
            role_arn: r.role_arn,
            tags: tag_map(r.tags),
        })
        .await?;
    Ok(json!({"RuleArn": arn}))
}

fn rule_json(r: &RuleInfo) -> Value {
    compact(json!({
        "Name": r.name,
        "Arn": r.arn,
        "EventPattern": r.event_pattern,
        "ScheduleExpression": r.schedule_expression,
        "State": r.state.as_str(),
        "Description": r.description,
        "RoleArn": r.role_arn,
        "EventBusName": r.event_bus_name,
    }))
}

fn bus_json(b: &EventBusInfo) -> Value {
    compact(json!({
        "Name": b.name,
        "Arn": b.arn,
        "Description": b.description,
        "CreationTime": seconds(b.created_ms),
        "LastModifiedTime": seconds(b.created_ms),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutTargetsReq {
    rule: String,
    event_bus_name: Option<String>,
    targets: Vec<TargetIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetIn {
    id: String,
    arn: String,
    role_arn: Option<String>,
    input: Option<String>,
    input_path: Option<String>,
    input_transformer: Option<TransformerIn>,
    retry_policy: Option<RetryIn>,
    dead_letter_config: Option<DeadLetterIn>,
    http_parameters: Option<HttpIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransformerIn {
    #[serde(default)]
    input_paths_map: indexmap::IndexMap<String, String>,
    input_template: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetryIn {
    maximum_retry_attempts: Option<u32>,
    maximum_event_age_in_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeadLetterIn {
    arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HttpIn {
    #[serde(default)]
    path_parameter_values: Vec<String>,
    #[serde(default)]
    header_parameters: indexmap::IndexMap<String, String>,
    #[serde(default)]
    query_string_parameters: indexmap::IndexMap<String, String>,
}

fn target_from(t: TargetIn) -> Target {
    Target {
        id: t.id,
        arn: t.arn,
        role_arn: t.role_arn,
        input: t.input,
        input_path: t.input_path,
        input_transformer: t.input_transformer.map(|x| InputTransformerSpec {
            input_paths_map: x.input_paths_map.into_iter().collect(),
            input_template: x.input_template,
        }),
        retry_policy: t.retry_policy.map(|r| {
            let d = RetryPolicy::default();
            RetryPolicy {
                maximum_retry_attempts: r
                    .maximum_retry_attempts
                    .unwrap_or(d.maximum_retry_attempts),
                maximum_event_age_seconds: r
                    .maximum_event_age_in_seconds
                    .unwrap_or(d.maximum_event_age_seconds),
            }
        }),
        dead_letter_arn: t.dead_letter_config.and_then(|d| d.arn),
        http_parameters: t.http_parameters.map(|h| HttpParameters {
            path_parameter_values: h.path_parameter_values,
            header_parameters: h.header_parameters.into_iter().collect(),
            query_string_parameters: h.query_string_parameters.into_iter().collect(),
        }),
    }
}

fn pairs(list: &[(String, String)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn target_json(t: &Target) -> Value {
    let mut v = json!({"Id": t.id, "Arn": t.arn, "RoleArn": t.role_arn,
                       "Input": t.input, "InputPath": t.input_path});
    if let Some(x) = &t.input_transformer {
        v["InputTransformer"] =
            json!({"InputPathsMap": pairs(&x.input_paths_map), "InputTemplate": x.input_template});
    }
    if let Some(r) = &t.retry_policy {
        v["RetryPolicy"] = json!({"MaximumRetryAttempts": r.maximum_retry_attempts,
                                  "MaximumEventAgeInSeconds": r.maximum_event_age_seconds});
    }
    if let Some(arn) = &t.dead_letter_arn {
        v["DeadLetterConfig"] = json!({"Arn": arn});
    }
    if let Some(h) = &t.http_parameters {
        v["HttpParameters"] = json!({"PathParameterValues": h.path_parameter_values,
                                     "HeaderParameters": pairs(&h.header_parameters),
                                     "QueryStringParameters": pairs(&h.query_string_parameters)});
    }
    compact(v)
}

fn failures_json(failed: Vec<TargetFailure>) -> Value {
    json!({
        "FailedEntryCount": failed.len(),
        "FailedEntries": failed.iter().map(|f| json!({
            "TargetId": f.target_id, "ErrorCode": f.error_code, "ErrorMessage": f.error_message
        })).collect::<Vec<_>>(),
    })
}

async fn put_targets(bus: &Bus, r: PutTargetsReq) -> Result<Value, AwsError> {
    let targets = r.targets.into_iter().map(target_from).collect();
    let failed = bus
        .put_targets(r.event_bus_name.as_deref(), &r.rule, targets)
        .await?;
    Ok(failures_json(failed))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveTargetsReq {
    rule: String,
    event_bus_name: Option<String>,
    ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetsOfRule {
    rule: String,
    event_bus_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ByTarget {
    target_arn: String,
    event_bus_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateArchiveReq {
    archive_name: String,
    event_source_arn: String,
    description: Option<String>,
    event_pattern: Option<String>,
    retention_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveRef {
    archive_name: String,
}

fn archive_json(a: &ArchiveInfo) -> Value {
    compact(json!({
        "ArchiveName": a.name,
        "ArchiveArn": a.arn,
        "EventSourceArn": a.event_source_arn,
        "Description": a.description,
        "EventPattern": a.event_pattern,
        "State": a.state,
        "RetentionDays": a.retention_days,
        "SizeBytes": a.size_bytes,
        "EventCount": a.event_count,
        "CreationTime": seconds(a.created_ms),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartReplayReq {
    replay_name: String,
    description: Option<String>,
    event_source_arn: String,
    event_start_time: f64,
    event_end_time: f64,
    destination: DestinationIn,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationIn {
    arn: String,
    #[serde(default)]
    filter_arns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplayRef {
    replay_name: String,
}

async fn start_replay(bus: &Bus, r: StartReplayReq) -> Result<Value, AwsError> {
    let info = bus
        .start_replay(StartReplay {
            name: r.replay_name,
            description: r.description,
            event_source_arn: r.event_source_arn,
            event_start_ms: millis(r.event_start_time),
            event_end_ms: millis(r.event_end_time),
            destination_arn: r.destination.arn,
            filter_arns: r.destination.filter_arns,
        })
        .await?;
    Ok(json!({"ReplayArn": info.arn, "State": info.state.as_str(),
              "ReplayStartTime": seconds(info.replay_start_ms)}))
}

fn replay_json(r: &ReplayInfo) -> Value {
    compact(json!({
        "ReplayName": r.name,
        "ReplayArn": r.arn,
        "Description": r.description,
        "State": r.state.as_str(),
        "StateReason": r.state_reason,
        "EventSourceArn": r.event_source_arn,
        "Destination": {"Arn": r.destination_arn, "FilterArns": r.filter_arns},
        "EventStartTime": seconds(r.event_start_ms),
        "EventEndTime": seconds(r.event_end_ms),
        "EventLastReplayedTime": r.event_last_replayed_ms.map(seconds),
        "ReplayStartTime": seconds(r.replay_start_ms),
        "ReplayEndTime": r.replay_end_ms.map(seconds),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateConnectionReq {
    name: String,
    description: Option<String>,
    authorization_type: String,
    auth_parameters: AuthIn,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AuthIn {
    api_key_auth_parameters: Option<ApiKeyIn>,
    basic_auth_parameters: Option<BasicIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiKeyIn {
    api_key_name: String,
    api_key_value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BasicIn {
    username: String,
    password: String,
}

async fn create_connection(bus: &Bus, r: CreateConnectionReq) -> Result<Value, AwsError> {
    let auth = match (r.authorization_type.as_str(), r.auth_parameters) {
        (
            "API_KEY",
            AuthIn {
                api_key_auth_parameters: Some(k),
                ..
            },
        ) => ConnectionAuth::ApiKey {
            name: k.api_key_name,
            value: k.api_key_value,
        },
        (
            "BASIC",
            AuthIn {
                basic_auth_parameters: Some(b),
                ..
            },
        ) => ConnectionAuth::Basic {
            username: b.username,
            password: b.password,
        },
        (kind, _) => {
            return Err(AwsError::validation(format!(
                "AuthorizationType {kind} needs its AuthParameters; this server supports API_KEY and BASIC"
            )));
        }
    };
    let info = bus.create_connection(&r.name, r.description, auth).await?;
    Ok(
        json!({"ConnectionArn": info.arn, "ConnectionState": info.state,
              "CreationTime": seconds(info.created_ms),
              "LastModifiedTime": seconds(info.created_ms)}),
    )
}

fn connection_json(c: &ConnectionInfo) -> Value {
    compact(json!({
        "Name": c.name,
        "ConnectionArn": c.arn,
        "Description": c.description,
        "AuthorizationType": c.authorization_type,
        "ConnectionState": c.state,
        "CreationTime": seconds(c.created_ms),
        "LastModifiedTime": seconds(c.created_ms),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDestinationReq {
    name: String,
    description: Option<String>,
    connection_arn: String,
    invocation_endpoint: String,
    http_method: String,
    invocation_rate_limit_per_second: Option<u32>,
}

fn destination_json(d: &ApiDestinationInfo) -> Value {
    compact(json!({
        "Name": d.name,
        "ApiDestinationArn": d.arn,
        "Description": d.description,
        "ConnectionArn": d.connection_arn,
        "InvocationEndpoint": d.invocation_endpoint,
        "HttpMethod": d.http_method,
        "InvocationRateLimitPerSecond": d.invocation_rate_limit_per_second,
        "ApiDestinationState": d.state,
        "CreationTime": seconds(d.created_ms),
        "LastModifiedTime": seconds(d.created_ms),
    }))
}
