//! `/v1/topics` and `/v1/subscriptions`: topics and notifications (the SNS idea).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepyard_engine::bus::{Bus, PutEventsEntry};
use stepyard_engine::topics::{
    self, AttributeType, BusSink, CreateTopic, DeliveryPolicy, MessageAttribute, Protocol,
    PublishRequest, SNS_PUBLISH, Subscribe, Topics, TopicsConfig,
};
use stepyard_workers::notify::{Notifier, NotifierConfig};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{PageParams, rfc3339};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_topic, list_topics))
        .routes(routes!(get_topic, delete_topic))
        .routes(routes!(subscribe, list_subscriptions))
        .routes(routes!(get_subscription, unsubscribe))
        .routes(routes!(publish))
        .routes(routes!(list_dead_letters))
        .routes(routes!(redrive_dead_letters))
}

/// Puts topic notifications on the event bus (`eventbus` subscriptions).
struct BusEvents(Bus);

#[async_trait]
impl BusSink for BusEvents {
    async fn put_event(
        &self,
        bus_name: &str,
        source: &str,
        detail_type: &str,
        detail: Value,
    ) -> Result<(), String> {
        let mut results = self
            .0
            .put_events(vec![PutEventsEntry {
                source: Some(source.to_owned()),
                detail_type: Some(detail_type.to_owned()),
                detail: Some(detail.to_string()),
                event_bus_name: Some(bus_name.to_owned()),
                ..PutEventsEntry::default()
            }])
            .await
            .map_err(|e| e.to_string())?;
        match results.pop() {
            Some(r) if r.error_code.is_none() => Ok(()),
            Some(r) => Err(format!(
                "{}: {}",
                r.error_code.unwrap_or_default(),
                r.error_message.unwrap_or_default()
            )),
            None => Err("the bus answered no result".into()),
        }
    }
}

/// Opens topics in the engine's database with the HTTP/SMTP notifier from the config; wires
/// `sns:publish` Task states, topics as event-bus targets, and `eventbus` subscriptions.
pub async fn open_topics(
    config: &crate::config::ServerConfig,
    engine: &stepyard_engine::Engine,
    bus: &Bus,
) -> anyhow::Result<Topics> {
    let settings = &config.notifications;
    let notifier = Notifier::new(NotifierConfig {
        smtp: settings.smtp.clone(),
        ..NotifierConfig::default()
    })?;
    let topics = Topics::open(
        engine,
        TopicsConfig {
            allowed_http_hosts: settings.allowed_http_hosts.clone(),
            allow_any_http_host: settings.allow_any_http_host,
            ..TopicsConfig::default()
        },
        Arc::new(notifier),
    )
    .await?;
    topics.set_bus_sink(Arc::new(BusEvents(bus.clone())));
    engine.register_worker(SNS_PUBLISH, topics.task_worker());
    bus.register_target("arn:aws:sns:", topics.target_invoker());
    Ok(topics)
}

// ---- wire types ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopicBody {
    /// 1 to 256 letters, digits, hyphens and underscores.
    #[schema(example = "scan-results")]
    pub name: String,
    /// Shown as the sender of mails.
    pub display_name: Option<String>,
}

/// A topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct Topic {
    #[schema(example = "scan-results")]
    pub name: String,
    #[schema(example = "arn:aws:sns:us-east-1:123456789012:scan-results")]
    pub arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// How many subscriptions it has.
    pub subscriptions: usize,
    pub created_at: String,
}

impl From<topics::TopicInfo> for Topic {
    fn from(t: topics::TopicInfo) -> Self {
        Topic {
            created_at: rfc3339(t.created_ms),
            name: t.name,
            arn: t.arn,
            display_name: t.display_name,
            subscriptions: t.subscriptions,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<Topic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// How a subscription receives messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionProtocol {
    /// POST of SNS's notification JSON to an `http://` URL.
    Http,
    /// The same to an `https://` URL.
    Https,
    /// A mail through the server's SMTP relay.
    Email,
    /// An invocation of a function (name or Lambda ARN) with SNS's Lambda event.
    Function,
    /// An event (`source` `stepyard.sns`, `detail-type` `SNS Notification`) on an event bus.
    Eventbus,
}

impl From<SubscriptionProtocol> for Protocol {
    fn from(p: SubscriptionProtocol) -> Self {
        match p {
            SubscriptionProtocol::Http => Protocol::Http,
            SubscriptionProtocol::Https => Protocol::Https,
            SubscriptionProtocol::Email => Protocol::Email,
            SubscriptionProtocol::Function => Protocol::Function,
            SubscriptionProtocol::Eventbus => Protocol::EventBus,
        }
    }
}

impl From<Protocol> for SubscriptionProtocol {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Http => SubscriptionProtocol::Http,
            Protocol::Https => SubscriptionProtocol::Https,
            Protocol::Email => SubscriptionProtocol::Email,
            Protocol::Function => SubscriptionProtocol::Function,
            Protocol::EventBus => SubscriptionProtocol::Eventbus,
        }
    }
}

/// Retries of a subscription's deliveries: exponential from `min_delay_seconds` to
/// `max_delay_seconds`, then dead-lettered.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPolicyBody {
    /// 0 to 100.
    #[schema(example = 3)]
    pub num_retries: u32,
    /// 1 to 3600.
    #[schema(example = 20)]
    pub min_delay_seconds: u32,
    /// 1 to 3600, at least `min_delay_seconds`.
    #[schema(example = 20)]
    pub max_delay_seconds: u32,
}

impl From<DeliveryPolicyBody> for DeliveryPolicy {
    fn from(p: DeliveryPolicyBody) -> Self {
        DeliveryPolicy {
            num_retries: p.num_retries,
            min_delay_seconds: p.min_delay_seconds,
            max_delay_seconds: p.max_delay_seconds,
        }
    }
}

impl From<DeliveryPolicy> for DeliveryPolicyBody {
    fn from(p: DeliveryPolicy) -> Self {
        DeliveryPolicyBody {
            num_retries: p.num_retries,
            min_delay_seconds: p.min_delay_seconds,
            max_delay_seconds: p.max_delay_seconds,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"protocol": "http", "endpoint": "http://127.0.0.1:9000/hook", "filter_policy": {"severity": ["high", "critical"]}}))]
pub struct SubscribeBody {
    pub protocol: SubscriptionProtocol,
    /// A URL (loopback or an allowed host), a mail address, a function name or ARN, an event
    /// bus name or ARN.
    #[schema(example = "http://127.0.0.1:9000/hook")]
    pub endpoint: String,
    /// An SNS filter policy on the message attributes.
    #[schema(value_type = Option<Object>)]
    pub filter_policy: Option<Value>,
    /// The protocol's default when absent (HTTP/S: 3 retries 20 s apart).
    pub delivery_policy: Option<DeliveryPolicyBody>,
    /// HTTP/S: POST the message itself instead of the notification JSON.
    #[serde(default)]
    pub raw_message_delivery: bool,
}

/// A subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    #[schema(example = "arn:aws:sns:us-east-1:123456789012:scan-results:6f1c...")]
    pub arn: String,
    pub topic_name: String,
    pub topic_arn: String,
    pub protocol: SubscriptionProtocol,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub filter_policy: Option<Value>,
    pub delivery_policy: DeliveryPolicyBody,
    pub raw_message_delivery: bool,
    pub created_at: String,
}

impl From<topics::SubscriptionInfo> for Subscription {
    fn from(s: topics::SubscriptionInfo) -> Self {
        Subscription {
            created_at: rfc3339(s.created_ms),
            id: s.id,
            arn: s.arn,
            topic_name: s.topic_name,
            topic_arn: s.topic_arn,
            protocol: s.protocol.into(),
            endpoint: s.endpoint,
            filter_policy: s.filter_policy,
            delivery_policy: s.delivery_policy.into(),
            raw_message_delivery: s.raw_message_delivery,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<Subscription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A message attribute.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeBody {
    /// `String`, `Number`, `String.Array` or `Binary` (a `String.x`/`Number.x` custom type is
    /// its base type).
    #[serde(rename = "type")]
    #[schema(example = "String")]
    pub kind: String,
    /// Text; a number or an array may be given as JSON.
    #[schema(value_type = Object, example = "high")]
    pub value: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Text, or any JSON (sent as its JSON text).
    #[schema(value_type = Object, example = "the scan found 2 leaked secrets")]
    pub message: Value,
    #[schema(example = "Scan finished")]
    pub subject: Option<String>,
    #[serde(default)]
    pub message_attributes: BTreeMap<String, AttributeBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    #[schema(example = "3f2a9c7e-5b1d-4e8a-9c6f-0d7b2e4a1c53")]
    pub message_id: String,
}

/// A delivery that failed for good.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    /// The delivery's id (pass it to the redrive to pick it).
    pub id: String,
    pub message_id: String,
    #[schema(example = "scan-findings")]
    pub topic_name: String,
    pub topic_arn: String,
    pub subscription_id: String,
    pub protocol: SubscriptionProtocol,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[schema(example = "3 findings in pull request 42")]
    pub message: String,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub reason: String,
    pub published_at: String,
    pub dead_lettered_at: String,
}

impl From<topics::DeadLetter> for DeadLetter {
    fn from(d: topics::DeadLetter) -> Self {
        DeadLetter {
            published_at: rfc3339(d.published_ms),
            dead_lettered_at: rfc3339(d.dead_lettered_ms),
            id: d.id,
            message_id: d.message_id,
            topic_name: d.topic_name,
            topic_arn: d.topic_arn,
            subscription_id: d.subscription_id,
            protocol: d.protocol.into(),
            endpoint: d.endpoint,
            subject: d.subject,
            message: d.message,
            attempts: d.attempts,
            reason: d.reason,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveBody {
    /// Only these dead letters (ids); all of the topic's when absent.
    #[schema(example = json!(["3f2a9c7e-5b1d-4e8a-9c6f-0d7b2e4a1c53"]))]
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLettersRedriven {
    /// How many dead letters went back to the pending deliveries.
    #[schema(example = 1)]
    pub redriven: usize,
}

fn topics_of(state: &AppState) -> &Topics {
    state.topics()
}

// ---- topics ----------------------------------------------------------------------------------

/// Create a topic (an existing topic of that name is returned with 200).
#[utoipa::path(post, path = "/v1/topics", tag = "topics",
    request_body = CreateTopicBody,
    responses(
        (status = 201, description = "Created", body = Topic),
        (status = 200, description = "It existed", body = Topic),
        (status = 400, description = "Invalid name", body = ErrorBody),
    ))]
pub async fn create_topic(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTopicBody>,
) -> ApiResult<(StatusCode, Json<Topic>)> {
    let (info, created) = topics_of(&state)
        .create_topic(CreateTopic {
            name: body.name,
            display_name: body.display_name,
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info.into())))
}

/// List topics by name.
#[utoipa::path(get, path = "/v1/topics", tag = "topics", params(PageParams),
    responses((status = 200, description = "One page", body = TopicList)))]
pub async fn list_topics(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Json<TopicList> {
    let page = topics_of(&state).list_topics(params.page());
    Json(TopicList {
        topics: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    })
}

/// Get a topic.
#[utoipa::path(get, path = "/v1/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    responses(
        (status = 200, description = "The topic", body = Topic),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn get_topic(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Topic>> {
    Ok(Json(topics_of(&state).get_topic(&name)?.into()))
}

/// Delete a topic and its subscriptions (its dead letters stay).
#[utoipa::path(delete, path = "/v1/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn delete_topic(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    topics_of(&state).delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- subscriptions ---------------------------------------------------------------------------

/// Subscribe to a topic (the same endpoint with the same settings answers 200 with the
/// existing subscription). HTTP/S URLs must be loopback or an allowed host.
#[utoipa::path(post, path = "/v1/topics/{name}/subscriptions", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    request_body = SubscribeBody,
    responses(
        (status = 201, description = "Subscribed", body = Subscription),
        (status = 200, description = "It existed", body = Subscription),
        (status = 400, description = "Invalid endpoint, filter policy or delivery policy (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn subscribe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SubscribeBody>,
) -> ApiResult<(StatusCode, Json<Subscription>)> {
    let (info, created) = topics_of(&state)
        .subscribe(Subscribe {
            topic: name,
            protocol: body.protocol.into(),
            endpoint: body.endpoint,
            filter_policy: body.filter_policy,
            delivery_policy: body.delivery_policy.map(Into::into),
            raw_message_delivery: body.raw_message_delivery,
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info.into())))
}

/// List a topic's subscriptions.
#[utoipa::path(get, path = "/v1/topics/{name}/subscriptions", tag = "topics",
    params(("name" = String, Path, description = "Topic name"), PageParams),
    responses(
        (status = 200, description = "One page", body = SubscriptionList),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn list_subscriptions(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<SubscriptionList>> {
    let page = topics_of(&state).list_subscriptions(Some(&name), params.page())?;
    Ok(Json(SubscriptionList {
        subscriptions: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Get a subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "topics",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = Subscription),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub async fn get_subscription(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(topics_of(&state).get_subscription(&id)?.into()))
}

/// Unsubscribe (deliveries still pending to it are dropped).
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "topics",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    topics_of(&state).unsubscribe(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- publish ---------------------------------------------------------------------------------

/// Publish a message: it and its deliveries are on disk when this answers.
#[utoipa::path(post, path = "/v1/topics/{name}/messages", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    request_body = PublishBody,
    responses(
        (status = 201, description = "Published", body = Published),
        (status = 400, description = "Invalid message, subject or attribute (`field` names it)", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn publish(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PublishBody>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    let topics = topics_of(&state);
    // A topic that is not there is a 404 here, not an invalid ARN.
    let topic = topics.get_topic(&name)?;
    let message = match body.message {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let mut message_attributes = BTreeMap::new();
    for (attr, a) in body.message_attributes {
        let field = stepyard_statelang::pointer_push("/message_attributes", &attr);
        let kind = AttributeType::parse(&a.kind).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!(
                    "unknown attribute type '{}': String, Number, String.Array or Binary",
                    a.kind
                ),
            )
            .with_field(field.clone())
        })?;
        let value = match a.value {
            Value::String(s) => s,
            v @ (Value::Number(_) | Value::Array(_)) => v.to_string(),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    "an attribute value is a string, a number or an array",
                )
                .with_field(field));
            }
        };
        message_attributes.insert(attr, MessageAttribute { kind, value });
    }
    let message_id = topics
        .publish(PublishRequest {
            topic_arn: topic.arn,
            message,
            subject: body.subject,
            message_attributes,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(Published { message_id })))
}

// ---- dead letters ----------------------------------------------------------------------------

/// A topic's dead letters, in the order they failed.
#[utoipa::path(get, path = "/v1/topics/{name}/dead-letters", tag = "topics",
    params(("name" = String, Path, description = "Topic name"), PageParams),
    responses(
        (status = 200, description = "One page", body = DeadLetterList),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<DeadLetterList>> {
    let topics = topics_of(&state);
    topics.get_topic(&name)?;
    let page = topics.list_dead_letters(Some(&name), params.page())?;
    Ok(Json(DeadLetterList {
        dead_letters: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Deliver a topic's dead letters again (all, or the `ids` given), with fresh retries.
#[utoipa::path(post, path = "/v1/topics/{name}/dead-letters/redrive", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    request_body(content = Option<RedriveBody>, description = "Which dead letters; all when absent"),
    responses(
        (status = 202, description = "Queued for delivery", body = DeadLettersRedriven),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn redrive_dead_letters(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Option<ApiJson<RedriveBody>>,
) -> ApiResult<(StatusCode, Json<DeadLettersRedriven>)> {
    let topics = topics_of(&state);
    topics.get_topic(&name)?;
    let ids = body.and_then(|ApiJson(b)| b.ids);
    let redriven = topics
        .redrive_dead_letters(Some(&name), ids.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(DeadLettersRedriven { redriven })))
}
