//! The `Topics` handle: topics, subscriptions, Publish, and the delivery loop.
//!
//! **Invariant (published means kept):** Publish matches the message against every
//! subscription of the topic while building ONE write set (the message record and one delivery
//! record per matching subscription) and answers only after that write set is flushed. A
//! message no subscription wants is answered with an id and dropped, as SNS does.
//!
//! **Invariant (deliveries):** a delivery is on disk before it is attempted (the loop skips a
//! delivery whose commit is still in flight); it leaves the `W` index only in the commit that
//! records its outcome (done, rescheduled with back-off, or moved to the dead letters). After a
//! restart every delivery still in `W` is attempted again, so subscribers see a message at
//! least once; the `MessageId` is the same on every attempt, for de-duplication.
//!
//! **Invariant (independence):** deliveries are attempted concurrently (bounded by
//! `max_concurrent_deliveries`), each with its own back-off and outcome: a subscriber that fails
//! or hangs (until its sender's timeout) never holds back the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, Semaphore, watch};

use super::model::*;
use super::store::*;
use crate::bus::pattern::EventPattern;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Page, PageRequest};
use crate::store::{Committer, WriteSet};
use crate::worker::TaskRequest;

/// Most bytes of a message with its attributes (SNS: 256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most message attributes of one message (SNS: 10).
pub const MAX_ATTRIBUTES: usize = 10;
/// The `source` of events that topics put on an event bus (`aws.` sources are reserved).
pub const BUS_EVENT_SOURCE: &str = "stepyard.sns";
/// The `detail-type` of those events.
pub const BUS_EVENT_DETAIL_TYPE: &str = "SNS Notification";
/// The subject of a mail whose message has none (SNS's default).
pub const DEFAULT_EMAIL_SUBJECT: &str = "AWS Notification Message";

/// A failed delivery attempt, as a [`NotificationSender`] or a subscriber reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    /// Whether another attempt may succeed (a 5xx, a refused connection, a relay that is
    /// down) or not (a 404, a recipient the relay rejects): a delivery that is not retryable
    /// goes to the dead letters at once.
    pub retryable: bool,
    /// What happened, for a person (kept with the dead letter).
    pub reason: String,
}

impl DeliveryError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            reason: reason.into(),
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            reason: reason.into(),
        }
    }
}

/// Sends notifications over the network (the engine knows no HTTP or SMTP: `workers`
/// implements this).
#[async_trait]
pub trait NotificationSender: Send + Sync + 'static {
    /// POSTs `body` to `url` with `headers`; `Ok` when the endpoint took it (2xx).
    async fn send_http(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> std::result::Result<(), DeliveryError>;

    /// Sends a plain-text mail to `to`; `Ok` when the relay accepted it.
    async fn send_email(
        &self,
        to: &str,
        subject: &str,
        body: &str,
    ) -> std::result::Result<(), DeliveryError>;
}

/// Puts events on an event bus, for `eventbus` subscriptions (`api` implements it with the bus).
#[async_trait]
pub trait BusSink: Send + Sync + 'static {
    async fn put_event(
        &self,
        bus_name: &str,
        source: &str,
        detail_type: &str,
        detail: Value,
    ) -> std::result::Result<(), String>;
}

/// How to open topics.
#[derive(Debug, Clone)]
pub struct TopicsConfig {
    /// Hosts (besides loopback) that `http`/`https` subscriptions may name, compared without
    /// case and without the port.
    pub allowed_http_hosts: Vec<String>,
    /// Lets `http`/`https` subscriptions name any host (off: the server makes no requests to
    /// hosts the operator did not list).
    pub allow_any_http_host: bool,
    /// Deliveries attempted at once.
    pub max_concurrent_deliveries: usize,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            allowed_http_hosts: Vec::new(),
            allow_any_http_host: false,
            max_concurrent_deliveries: 32,
        }
    }
}

struct Subscription {
    rec: SubscriptionRecord,
    filter: Option<EventPattern>,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, TopicRecord>,
    subscriptions: BTreeMap<String, Subscription>,
    /// Per message: the deliveries and dead letters that still need its record. The record is
    /// deleted in the commit that removes the last of them (rebuilt from the store on open).
    refs: HashMap<String, usize>,
}

struct Inner {
    engine: Engine,
    config: TopicsConfig,
    sender: Arc<dyn NotificationSender>,
    bus: RwLock<Option<Arc<dyn BusSink>>>,
    store: TopicStore,
    committer: Committer,
    state: Mutex<State>,
    /// Serialises control-plane changes (topics and subscriptions, redrives).
    admin: tokio::sync::Mutex<()>,
    /// Deliveries being attempted, or whose first commit is not yet durable: the loop skips them.
    inflight: Mutex<HashSet<String>>,
    wake: Arc<Notify>,
    limiter: Arc<Semaphore>,
    progress: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    loops: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Topics and their subscriptions. Cheap to clone.
#[derive(Clone)]
pub struct Topics {
    inner: Arc<Inner>,
}

/// A handle that does not keep topics open: what the engine's worker registry and the bus's
/// target registry hold, so that no reference cycle (engine → worker → topics → engine) keeps
/// the data folder locked after a shutdown.
#[derive(Clone)]
pub(crate) struct WeakTopics(Weak<Inner>);

impl WeakTopics {
    pub fn upgrade(&self) -> Option<Topics> {
        self.0.upgrade().map(|inner| Topics { inner })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidParameter {
        field: field.into(),
        message: message.into(),
    }
}

fn topic_not_found(name: &str) -> Error {
    Error::ResourceNotFound(format!("Topic does not exist: '{name}'"))
}

fn subscription_not_found(id: &str) -> Error {
    Error::ResourceNotFound(format!("Subscription does not exist: '{id}'"))
}

fn iso_millis(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A deterministic jitter fraction in [0.5, 1.0) from the delivery id and attempt: back-off
/// spreads out without a random source in the engine.
fn jitter(id: &str, attempt: u32) -> f64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, attempt).hash(&mut h);
    0.5 + (h.finish() % 1000) as f64 / 2000.0
}

/// The wait before retry number `retry` (1-based): `min * 2^(retry-1)` clamped to
/// `[min, max]`, its part above `min` jittered.
fn retry_delay_ms(policy: &DeliveryPolicy, id: &str, retry: u32) -> u64 {
    let min = policy.min_delay_seconds as u64 * 1000;
    let max = (policy.max_delay_seconds as u64 * 1000).max(min);
    let base = min
        .saturating_mul(1u64 << (retry.saturating_sub(1)).min(30))
        .min(max);
    min + ((base - min) as f64 * jitter(id, retry)) as u64
}

/// SNS's topic name rule: 1 to 256 of `[A-Za-z0-9_-]`.
fn check_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            format!(
                "'{name}' is not a valid topic name: 1 to 256 letters, digits, hyphens and underscores"
            ),
        ))
    }
}

/// `(scheme, host)` of an absolute URL, lowercased; the host without brackets or port.
pub(crate) fn url_host(url: &str) -> Option<(String, String)> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']')?.0,
        None => host_port.split(':').next()?,
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The function name in a function endpoint: a name, or a Lambda ARN (a qualifier is dropped).
fn function_name(endpoint: &str) -> Option<&str> {
    let name = if endpoint.starts_with("arn:") {
        let parts: Vec<&str> = endpoint.split(':').collect();
        if parts.len() < 7 || parts[2] != "lambda" || parts[5] != "function" {
            return None;
        }
        parts[6]
    } else {
        endpoint
    };
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(name)
}

/// The bus name in an `eventbus` endpoint: a name, or an event-bus ARN.
fn bus_name(endpoint: &str) -> Option<&str> {
    let name = if endpoint.starts_with("arn:") {
        endpoint.rsplit_once(":event-bus/")?.1
    } else {
        endpoint
    };
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    ok.then_some(name)
}

fn check_email(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        }
        None => false,
    }
}

/// Message attributes as the JSON object a filter policy is matched against: `String` →
/// string, `Number` → number, `String.Array` → array; `Binary` is not filterable (as in SNS).
pub(crate) fn attributes_object(attributes: &BTreeMap<String, MessageAttribute>) -> Value {
    let mut out = Map::new();
    for (name, a) in attributes {
        let value = match a.kind {
            AttributeType::String => Value::String(a.value.clone()),
            AttributeType::Number => serde_json::from_str::<serde_json::Number>(a.value.trim())
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(a.value.clone())),
            AttributeType::StringArray => serde_json::from_str::<Value>(&a.value)
                .ok()
                .filter(Value::is_array)
                .unwrap_or_else(|| Value::String(a.value.clone())),
            AttributeType::Binary => continue,
        };
        out.insert(name.clone(), value);
    }
    Value::Object(out)
}

fn check_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Result<()> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(
            "message_attributes",
            format!("at most {MAX_ATTRIBUTES} message attributes"),
        ));
    }
    for (name, a) in attributes {
        // A JSON Pointer already: the name may hold dots.
        let field = stepyard_statelang::pointer_push("/message_attributes", name);
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(invalid(
                field,
                "an attribute name is 1 to 256 of [A-Za-z0-9_-.], without '..', a leading or trailing '.', or an 'AWS.'/'Amazon.' prefix",
            ));
        }
        if a.value.is_empty() {
            return Err(invalid(field, "the attribute's value is empty"));
        }
        match a.kind {
            AttributeType::Number => {
                if !a.value.trim().parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(invalid(field, format!("'{}' is not a number", a.value)));
                }
            }
            AttributeType::StringArray => {
                let ok = serde_json::from_str::<Value>(&a.value).is_ok_and(|v| {
                    v.as_array()
                        .is_some_and(|items| items.iter().all(|i| !i.is_array() && !i.is_object()))
                });
                if !ok {
                    return Err(invalid(
                        field,
                        "a String.Array value is a JSON array of strings, numbers, booleans or nulls",
                    ));
                }
            }
            AttributeType::String | AttributeType::Binary => {}
        }
    }
    Ok(())
}

/// Pages a sorted sequence by its key: the token is the last key of the page.
fn paginate<T>(
    items: impl Iterator<Item = T>,
    key: impl Fn(&T) -> String,
    page: &PageRequest,
) -> Page<T> {
    let limit = page.limit();
    let mut out = Vec::new();
    let mut more = false;
    for item in items {
        if let Some(after) = &page.next_token
            && key(&item).as_str() <= after.as_str()
        {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        out.push(item);
    }
    let next_token = if more { out.last().map(&key) } else { None };
    Page {
        items: out,
        next_token,
    }
}

impl Topics {
    /// Opens topics in the engine's data folder (tree `topics.v1`): loads topics and
    /// subscriptions and resumes every pending delivery.
    pub async fn open(
        engine: &Engine,
        config: TopicsConfig,
        sender: Arc<dyn NotificationSender>,
    ) -> Result<Topics> {
        let (sled, committer) = engine.sibling_store(TREE)?;
        let store = TopicStore::open(sled)?;
        let mut state = State::default();
        for t in store.topics()? {
            state.topics.insert(t.name.clone(), t);
        }
        for s in store.subscriptions()? {
            let filter = match &s.filter_policy {
                Some(p) => Some(
                    EventPattern::from_value(p)
                        .map_err(|e| Error::Corrupt(format!("filter policy: {e}")))?,
                ),
                None => None,
            };
            state
                .subscriptions
                .insert(s.id.clone(), Subscription { rec: s, filter });
        }
        for d in store.deliveries()? {
            *state.refs.entry(d.message_id).or_default() += 1;
        }
        for x in store.dead_letters()? {
            *state.refs.entry(x.delivery.message_id).or_default() += 1;
        }
        let (progress, _) = watch::channel(0);
        let (shutdown, _) = watch::channel(false);
        let limiter = Arc::new(Semaphore::new(config.max_concurrent_deliveries.max(1)));
        let inner = Arc::new(Inner {
            engine: engine.clone(),
            config,
            sender,
            bus: RwLock::new(None),
            store,
            committer,
            state: Mutex::new(state),
            admin: tokio::sync::Mutex::new(()),
            inflight: Mutex::new(HashSet::new()),
            wake: Arc::new(Notify::new()),
            limiter,
            progress,
            shutdown,
            loops: Mutex::new(Vec::new()),
        });
        let handle = tokio::spawn(delivery_loop(Arc::downgrade(&inner)));
        lock(&inner.loops).push(handle);
        Ok(Topics { inner })
    }

    /// Stops the delivery loop (pending deliveries stay on disk for the next open).
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.wake.notify_waiters();
        let loops: Vec<_> = lock(&self.inner.loops).drain(..).collect();
        for handle in loops {
            handle.abort();
            let _ = handle.await;
        }
    }

    pub(crate) fn downgrade(&self) -> WeakTopics {
        WeakTopics(Arc::downgrade(&self.inner))
    }

    /// Where `eventbus` subscriptions put their events.
    pub fn set_bus_sink(&self, sink: Arc<dyn BusSink>) {
        *self.inner.bus.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// Ticks after every delivery outcome is committed (for tests and tools that wait).
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.inner.progress.subscribe()
    }

    // ---- ARNs --------------------------------------------------------------------------------

    /// `arn:aws:sns:REGION:ACCOUNT:NAME`.
    pub fn topic_arn(&self, name: &str) -> String {
        self.inner.topic_arn(name)
    }

    /// A topic name from a name or one of this server's topic ARNs.
    pub fn topic_name(&self, name_or_arn: &str) -> Result<String> {
        self.inner.topic_name(name_or_arn)
    }

    // ---- topics ------------------------------------------------------------------------------

    fn topic_info(&self, st: &State, r: &TopicRecord) -> TopicInfo {
        TopicInfo {
            name: r.name.clone(),
            arn: self.topic_arn(&r.name),
            display_name: r.display_name.clone(),
            subscriptions: st
                .subscriptions
                .values()
                .filter(|s| s.rec.topic == r.name)
                .count(),
            created_ms: r.created_ms,
        }
    }

    /// CreateTopic: `(topic, created)`; an existing topic of that name is returned as it is
    /// (SNS's CreateTopic is idempotent).
    pub async fn create_topic(&self, req: CreateTopic) -> Result<(TopicInfo, bool)> {
        check_topic_name(&req.name)?;
        if let Some(d) = &req.display_name
            && (d.chars().count() > 100 || d.chars().any(char::is_control))
        {
            return Err(invalid(
                "display_name",
                "a display name is at most 100 characters, without control characters",
            ));
        }
        let _admin = self.inner.admin.lock().await;
        {
            let st = lock(&self.inner.state);
            if let Some(existing) = st.topics.get(&req.name) {
                return Ok((self.topic_info(&st, existing), false));
            }
        }
        let rec = TopicRecord {
            name: req.name.clone(),
            display_name: req.display_name,
            created_ms: self.inner.now(),
        };
        let mut w = WriteSet::default();
        w.put_topic(&rec);
        self.inner.commit(w).await?;
        let mut st = lock(&self.inner.state);
        st.topics.insert(rec.name.clone(), rec.clone());
        Ok((self.topic_info(&st, &rec), true))
    }

    pub fn get_topic(&self, name_or_arn: &str) -> Result<TopicInfo> {
        let name = self.topic_name(name_or_arn)?;
        let st = lock(&self.inner.state);
        st.topics
            .get(&name)
            .map(|r| self.topic_info(&st, r))
            .ok_or_else(|| topic_not_found(&name))
    }

    /// Topics by name.
    pub fn list_topics(&self, page: PageRequest) -> Page<TopicInfo> {
        let st = lock(&self.inner.state);
        paginate(
            st.topics.values().map(|r| self.topic_info(&st, r)),
            |t| t.name.clone(),
            &page,
        )
    }

    /// Deletes a topic and its subscriptions. Deliveries still pending for it are dropped when
    /// they come due; its dead letters stay (listable and redrivable by topic name).
    pub async fn delete_topic(&self, name_or_arn: &str) -> Result<()> {
        let name = self.topic_name(name_or_arn)?;
        let _admin = self.inner.admin.lock().await;
        let subs: Vec<String> = {
            let st = lock(&self.inner.state);
            if !st.topics.contains_key(&name) {
                return Err(topic_not_found(&name));
            }
            st.subscriptions
                .values()
                .filter(|s| s.rec.topic == name)
                .map(|s| s.rec.id.clone())
                .collect()
        };
        let mut w = WriteSet::default();
        w.delete_topic(&name);
        for id in &subs {
            w.delete_subscription(id);
        }
        self.inner.commit(w).await?;
        let mut st = lock(&self.inner.state);
        st.topics.remove(&name);
        for id in subs {
            st.subscriptions.remove(&id);
        }
        Ok(())
    }

    // ---- subscriptions -----------------------------------------------------------------------

    fn subscription_info(&self, r: &SubscriptionRecord) -> SubscriptionInfo {
        SubscriptionInfo {
            id: r.id.clone(),
            arn: self.inner.subscription_arn(r),
            topic_name: r.topic.clone(),
            topic_arn: self.topic_arn(&r.topic),
            protocol: r.protocol,
            endpoint: r.endpoint.clone(),
            filter_policy: r.filter_policy.clone(),
            delivery_policy: r.delivery_policy,
            raw_message_delivery: r.raw_message_delivery,
            created_ms: r.created_ms,
        }
    }

    /// Checks an endpoint for its protocol; for HTTP/S, that the server may call its host.
    fn check_endpoint(&self, protocol: Protocol, endpoint: &str) -> Result<()> {
        match protocol {
            Protocol::Http | Protocol::Https => {
                let Some((scheme, host)) = url_host(endpoint) else {
                    return Err(invalid(
                        "endpoint",
                        format!("'{endpoint}' is not an absolute URL"),
                    ));
                };
                if scheme != protocol.as_str() {
                    return Err(invalid(
                        "endpoint",
                        format!(
                            "a {} subscription needs a {}:// URL",
                            protocol.as_str(),
                            protocol.as_str()
                        ),
                    ));
                }
                let config = &self.inner.config;
                let allowed = config.allow_any_http_host
                    || is_loopback(&host)
                    || config
                        .allowed_http_hosts
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(&host));
                if !allowed {
                    return Err(invalid(
                        "endpoint",
                        format!(
                            "the host '{host}' is not loopback and not in the server's allowed_http_hosts; add it there (or set allow_any_http_host) to let this server send requests to it"
                        ),
                    ));
                }
            }
            Protocol::Email => {
                if !check_email(endpoint) {
                    return Err(invalid(
                        "endpoint",
                        format!("'{endpoint}' is not a mail address"),
                    ));
                }
            }
            Protocol::Function => {
                if function_name(endpoint).is_none() {
                    return Err(invalid(
                        "endpoint",
                        format!(
                            "'{endpoint}' is neither a function name nor a Lambda function ARN"
                        ),
                    ));
                }
            }
            Protocol::EventBus => {
                if bus_name(endpoint).is_none() {
                    return Err(invalid(
                        "endpoint",
                        format!("'{endpoint}' is neither an event bus name nor an event-bus ARN"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Subscribe: `(subscription, created)`. The same protocol and endpoint on the same topic
    /// with the same settings is the existing subscription; with other settings it is refused.
    pub async fn subscribe(&self, req: Subscribe) -> Result<(SubscriptionInfo, bool)> {
        let topic = self.topic_name(&req.topic)?;
        self.check_endpoint(req.protocol, &req.endpoint)?;
        let filter = match &req.filter_policy {
            Some(p) => Some(EventPattern::from_value(p).map_err(|e| {
                invalid(
                    "filter_policy",
                    e.message.replace("Event pattern", "Filter policy"),
                )
            })?),
            None => None,
        };
        let policy = req
            .delivery_policy
            .unwrap_or_else(|| DeliveryPolicy::default_for(req.protocol));
        if policy.num_retries > 100
            || !(1..=3600).contains(&policy.min_delay_seconds)
            || !(1..=3600).contains(&policy.max_delay_seconds)
            || policy.min_delay_seconds > policy.max_delay_seconds
        {
            return Err(invalid(
                "delivery_policy",
                "num_retries is 0 to 100; min_delay_seconds and max_delay_seconds are 1 to 3600, min at most max",
            ));
        }
        if req.raw_message_delivery && !matches!(req.protocol, Protocol::Http | Protocol::Https) {
            return Err(invalid(
                "raw_message_delivery",
                "raw message delivery is for http and https subscriptions",
            ));
        }
        let _admin = self.inner.admin.lock().await;
        {
            let st = lock(&self.inner.state);
            if !st.topics.contains_key(&topic) {
                return Err(topic_not_found(&topic));
            }
            if let Some(existing) = st.subscriptions.values().find(|s| {
                s.rec.topic == topic
                    && s.rec.protocol == req.protocol
                    && s.rec.endpoint == req.endpoint
            }) {
                let same = existing.rec.filter_policy == req.filter_policy
                    && existing.rec.delivery_policy == policy
                    && existing.rec.raw_message_delivery == req.raw_message_delivery;
                if same {
                    return Ok((self.subscription_info(&existing.rec), false));
                }
                return Err(invalid(
                    "endpoint",
                    format!(
                        "subscription {} already exists for this endpoint with different settings",
                        existing.rec.id
                    ),
                ));
            }
        }
        let rec = SubscriptionRecord {
            id: self.inner.engine.config().ids.new_id(),
            topic,
            protocol: req.protocol,
            endpoint: req.endpoint,
            filter_policy: req.filter_policy,
            delivery_policy: policy,
            raw_message_delivery: req.raw_message_delivery,
            created_ms: self.inner.now(),
        };
        let mut w = WriteSet::default();
        w.put_subscription(&rec);
        self.inner.commit(w).await?;
        let info = self.subscription_info(&rec);
        lock(&self.inner.state)
            .subscriptions
            .insert(rec.id.clone(), Subscription { rec, filter });
        Ok((info, true))
    }

    fn subscription_id(id_or_arn: &str) -> &str {
        if id_or_arn.starts_with("arn:") {
            id_or_arn.rsplit(':').next().unwrap_or(id_or_arn)
        } else {
            id_or_arn
        }
    }

    /// A subscription by id or ARN.
    pub fn get_subscription(&self, id_or_arn: &str) -> Result<SubscriptionInfo> {
        let id = Topics::subscription_id(id_or_arn);
        lock(&self.inner.state)
            .subscriptions
            .get(id)
            .map(|s| self.subscription_info(&s.rec))
            .ok_or_else(|| subscription_not_found(id))
    }

    /// Subscriptions by id, of one topic or of all.
    pub fn list_subscriptions(
        &self,
        topic: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<SubscriptionInfo>> {
        let topic = match topic {
            Some(t) => {
                let name = self.topic_name(t)?;
                if !lock(&self.inner.state).topics.contains_key(&name) {
                    return Err(topic_not_found(&name));
                }
                Some(name)
            }
            None => None,
        };
        let st = lock(&self.inner.state);
        Ok(paginate(
            st.subscriptions
                .values()
                .filter(|s| topic.as_ref().is_none_or(|t| &s.rec.topic == t))
                .map(|s| self.subscription_info(&s.rec)),
            |s| s.id.clone(),
            &page,
        ))
    }

    /// Unsubscribe. Pending deliveries to it are dropped when they come due.
    pub async fn unsubscribe(&self, id_or_arn: &str) -> Result<()> {
        let id = Topics::subscription_id(id_or_arn).to_string();
        let _admin = self.inner.admin.lock().await;
        if !lock(&self.inner.state).subscriptions.contains_key(&id) {
            return Err(subscription_not_found(&id));
        }
        let mut w = WriteSet::default();
        w.delete_subscription(&id);
        self.inner.commit(w).await?;
        lock(&self.inner.state).subscriptions.remove(&id);
        Ok(())
    }

    // ---- publish -----------------------------------------------------------------------------

    /// Publish: the message and a delivery per subscription whose filter policy matches are
    /// written in one batch and flushed before the `MessageId` is returned.
    pub async fn publish(&self, req: PublishRequest) -> Result<String> {
        let topic = self.topic_name(&req.topic_arn).map_err(|_| {
            invalid(
                "topic_arn",
                format!("'{}' is not a topic ARN", req.topic_arn),
            )
        })?;
        if req.message.is_empty() {
            return Err(invalid("message", "the message is empty"));
        }
        let size = req.message.len()
            + req
                .message_attributes
                .iter()
                .map(|(k, a)| k.len() + a.kind.as_str().len() + a.value.len())
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return Err(invalid(
                "message",
                format!(
                    "the message and its attributes are {size} bytes; the limit is {MAX_MESSAGE_BYTES}"
                ),
            ));
        }
        if let Some(s) = &req.subject
            && (s.is_empty()
                || s.chars().count() > 100
                || s.chars().any(char::is_control)
                || s.starts_with(char::is_whitespace))
        {
            return Err(invalid(
                "subject",
                "a subject is 1 to 100 characters, without line breaks or control characters, and does not start with a space",
            ));
        }
        check_attributes(&req.message_attributes)?;
        let inner = &self.inner;
        let now = inner.now();
        let ids = &inner.engine.config().ids;
        let message = MessageRecord {
            id: ids.new_id(),
            topic: topic.clone(),
            topic_arn: self.topic_arn(&topic),
            message: req.message,
            subject: req.subject,
            attributes: req.message_attributes,
            published_ms: now,
        };
        let attributes = attributes_object(&message.attributes);
        let mut w = WriteSet::default();
        let mut delivery_ids = Vec::new();
        {
            let mut st = lock(&inner.state);
            if !st.topics.contains_key(&topic) {
                return Err(topic_not_found(&topic));
            }
            for s in st.subscriptions.values() {
                if s.rec.topic != topic || !s.filter.as_ref().is_none_or(|f| f.matches(&attributes))
                {
                    continue;
                }
                let d = DeliveryRecord {
                    id: ids.new_id(),
                    due_ms: now,
                    message_id: message.id.clone(),
                    topic: topic.clone(),
                    subscription_id: s.rec.id.clone(),
                    attempts: 0,
                    last_error: None,
                };
                w.put_delivery(&d);
                delivery_ids.push(d.id);
            }
            if delivery_ids.is_empty() {
                return Ok(message.id);
            }
            w.put_message(&message);
            st.refs.insert(message.id.clone(), delivery_ids.len());
        }
        // Not attempted before they are durable: the loop skips ids in `inflight`.
        lock(&inner.inflight).extend(delivery_ids.iter().cloned());
        let committed = inner.commit(w).await;
        {
            let mut inflight = lock(&inner.inflight);
            for id in &delivery_ids {
                inflight.remove(id);
            }
        }
        committed?;
        inner.wake.notify_one();
        Ok(message.id)
    }

    // ---- deliveries and dead letters ---------------------------------------------------------

    /// Deliveries not yet done, by due time.
    pub fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>> {
        Ok(self
            .inner
            .store
            .deliveries()?
            .into_iter()
            .map(|d| PendingDelivery {
                id: d.id,
                message_id: d.message_id,
                topic_name: d.topic,
                subscription_id: d.subscription_id,
                attempts: d.attempts,
                due_ms: d.due_ms,
                last_error: d.last_error,
            })
            .collect())
    }

    fn dead_letter_info(&self, x: DeadLetterRecord) -> DeadLetter {
        let message = self
            .inner
            .store
            .message(&x.delivery.message_id)
            .ok()
            .flatten();
        DeadLetter {
            id: x.delivery.id,
            message_id: x.delivery.message_id,
            topic_arn: self.topic_arn(&x.delivery.topic),
            topic_name: x.delivery.topic,
            subscription_id: x.delivery.subscription_id,
            protocol: x.protocol,
            endpoint: x.endpoint,
            subject: message.as_ref().and_then(|m| m.subject.clone()),
            message: message
                .as_ref()
                .map(|m| m.message.clone())
                .unwrap_or_default(),
            attempts: x.delivery.attempts,
            reason: x.reason,
            published_ms: message.map(|m| m.published_ms).unwrap_or_default(),
            dead_lettered_ms: x.dead_lettered_ms,
        }
    }

    /// Dead letters in the order they failed, of one topic or of all. The page token is the
    /// last one's sequence number.
    pub fn list_dead_letters(
        &self,
        topic: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<DeadLetter>> {
        let topic = topic.map(|t| self.topic_name(t)).transpose()?;
        let after = match &page.next_token {
            Some(t) => Some(
                t.parse::<u64>()
                    .map_err(|_| Error::InvalidNextToken(format!("Invalid next token: '{t}'")))?,
            ),
            None => None,
        };
        let limit = page.limit();
        let mut rows: Vec<DeadLetterRecord> = self
            .inner
            .store
            .dead_letters()?
            .into_iter()
            .filter(|x| after.is_none_or(|a| x.seq > a))
            .filter(|x| topic.as_ref().is_none_or(|t| &x.delivery.topic == t))
            .take(limit + 1)
            .collect();
        let next_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|x| x.seq.to_string())
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(|x| self.dead_letter_info(x)).collect(),
            next_token,
        })
    }

    /// Moves dead letters (of one topic or all; only `ids` when given) back to the pending
    /// deliveries, due now with a fresh retry budget. Returns how many.
    pub async fn redrive_dead_letters(
        &self,
        topic: Option<&str>,
        ids: Option<&[String]>,
    ) -> Result<usize> {
        let topic = topic.map(|t| self.topic_name(t)).transpose()?;
        let _admin = self.inner.admin.lock().await;
        let now = self.inner.now();
        let mut w = WriteSet::default();
        let mut n = 0;
        for x in self.inner.store.dead_letters()? {
            if topic.as_ref().is_some_and(|t| &x.delivery.topic != t)
                || ids.is_some_and(|ids| !ids.contains(&x.delivery.id))
            {
                continue;
            }
            w.delete_dead_letter(x.seq);
            w.put_delivery(&DeliveryRecord {
                due_ms: now,
                attempts: 0,
                ..x.delivery
            });
            n += 1;
        }
        self.inner.commit(w).await?;
        self.inner.wake.notify_one();
        Ok(n)
    }
}

enum Outcome {
    /// Delivered, or dropped (its subscription or message is gone).
    Done,
    Failed(DeliveryError),
}

impl Inner {
    fn now(&self) -> u64 {
        self.engine.config().clock.now_ms()
    }

    async fn commit(&self, w: WriteSet) -> Result<()> {
        self.committer.submit(w).wait().await
    }

    fn tick(&self) {
        self.progress.send_modify(|n| *n += 1);
    }

    fn topic_arn(&self, name: &str) -> String {
        let c = self.engine.config();
        format!("arn:aws:sns:{}:{}:{name}", c.region, c.account)
    }

    fn subscription_arn(&self, r: &SubscriptionRecord) -> String {
        format!("{}:{}", self.topic_arn(&r.topic), r.id)
    }

    fn topic_name(&self, name_or_arn: &str) -> Result<String> {
        if !name_or_arn.starts_with("arn:") {
            check_topic_name(name_or_arn)?;
            return Ok(name_or_arn.to_string());
        }
        let name = name_or_arn.rsplit(':').next().unwrap_or_default();
        if check_topic_name(name).is_err() || self.topic_arn(name) != name_or_arn {
            return Err(topic_not_found(name_or_arn));
        }
        Ok(name.to_string())
    }

    /// Drops one reference to a message, deleting its record with the last one.
    fn release_message(&self, message_id: &str, w: &mut WriteSet) {
        let mut st = lock(&self.state);
        let gone = match st.refs.get_mut(message_id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => true,
        };
        if gone {
            st.refs.remove(message_id);
            w.delete_message(message_id);
        }
    }

    /// One attempt of one delivery, then its outcome committed.
    async fn attempt(self: &Arc<Self>, d: DeliveryRecord) -> Result<()> {
        let sub = lock(&self.state)
            .subscriptions
            .get(&d.subscription_id)
            .map(|s| s.rec.clone());
        let message = self.store.message(&d.message_id)?;
        let outcome = match (&sub, &message) {
            (Some(sub), Some(message)) => self.deliver(sub, message, &d).await,
            (None, _) => {
                tracing::debug!(delivery = %d.id, subscription = %d.subscription_id, "subscription is gone; delivery dropped");
                Outcome::Done
            }
            (_, None) => {
                tracing::error!(delivery = %d.id, message = %d.message_id, "the delivery's message record is missing; delivery dropped");
                Outcome::Done
            }
        };
        let now = self.now();
        let mut w = WriteSet::default();
        w.delete_delivery(d.due_ms, &d.id);
        match outcome {
            Outcome::Done => self.release_message(&d.message_id, &mut w),
            Outcome::Failed(e) => {
                let attempts = d.attempts + 1;
                // `sub` is there: a missing one is `Done`.
                let sub = sub.unwrap_or_else(|| unreachable!());
                let policy = sub.delivery_policy;
                if e.retryable && attempts <= policy.num_retries {
                    let due_ms = now + retry_delay_ms(&policy, &d.id, attempts);
                    tracing::debug!(delivery = %d.id, endpoint = %sub.endpoint, attempts, error = %e.reason, "delivery failed; retrying");
                    w.put_delivery(&DeliveryRecord {
                        due_ms,
                        attempts,
                        last_error: Some(e.reason.clone()),
                        ..d.clone()
                    });
                } else {
                    tracing::warn!(delivery = %d.id, endpoint = %sub.endpoint, attempts, error = %e.reason, "delivery dead-lettered");
                    let reason = if e.retryable {
                        format!("retries exhausted after {attempts} attempts: {}", e.reason)
                    } else {
                        e.reason.clone()
                    };
                    w.put_dead_letter(&DeadLetterRecord {
                        seq: self.store.next_seq()?,
                        delivery: DeliveryRecord {
                            attempts,
                            last_error: Some(e.reason),
                            ..d.clone()
                        },
                        protocol: sub.protocol,
                        endpoint: sub.endpoint.clone(),
                        reason,
                        dead_lettered_ms: now,
                    });
                }
            }
        }
        self.commit(w).await
    }

    /// SNS's HTTP/S notification body.
    fn notification(&self, m: &MessageRecord) -> Value {
        let mut n = Map::new();
        n.insert("Type".into(), json!("Notification"));
        n.insert("MessageId".into(), json!(m.id));
        n.insert("TopicArn".into(), json!(m.topic_arn));
        if let Some(s) = &m.subject {
            n.insert("Subject".into(), json!(s));
        }
        n.insert("Message".into(), json!(m.message));
        n.insert("Timestamp".into(), json!(iso_millis(m.published_ms)));
        n.insert("SignatureVersion".into(), json!("1"));
        if !m.attributes.is_empty() {
            n.insert("MessageAttributes".into(), wire_attributes(&m.attributes));
        }
        Value::Object(n)
    }

    async fn deliver(
        self: &Arc<Self>,
        sub: &SubscriptionRecord,
        m: &MessageRecord,
        d: &DeliveryRecord,
    ) -> Outcome {
        let result = match sub.protocol {
            Protocol::Http | Protocol::Https => {
                let body = if sub.raw_message_delivery {
                    m.message.clone()
                } else {
                    self.notification(m).to_string()
                };
                let mut headers = vec![
                    (
                        "x-amz-sns-message-type".to_string(),
                        "Notification".to_string(),
                    ),
                    ("x-amz-sns-message-id".to_string(), m.id.clone()),
                    ("x-amz-sns-topic-arn".to_string(), m.topic_arn.clone()),
                    (
                        "x-amz-sns-subscription-arn".to_string(),
                        self.subscription_arn(sub),
                    ),
                    (
                        "content-type".to_string(),
                        "text/plain; charset=UTF-8".to_string(),
                    ),
                ];
                if sub.raw_message_delivery {
                    // SNS marks raw deliveries so that receivers can tell them apart.
                    headers.push(("x-amz-sns-rawdelivery".into(), "true".into()));
                }
                self.sender.send_http(&sub.endpoint, &headers, &body).await
            }
            Protocol::Email => {
                let subject = m.subject.as_deref().unwrap_or(DEFAULT_EMAIL_SUBJECT);
                let body = format!(
                    "{}\n\n--\nSent by topic {} (message {}) to subscription {}.\n",
                    m.message,
                    m.topic_arn,
                    m.id,
                    self.subscription_arn(sub)
                );
                self.sender.send_email(&sub.endpoint, subject, &body).await
            }
            Protocol::Function => self.invoke_function(sub, m, d).await,
            Protocol::EventBus => {
                let sink = self.bus.read().unwrap_or_else(|p| p.into_inner()).clone();
                match (sink, bus_name(&sub.endpoint)) {
                    (Some(sink), Some(bus)) => sink
                        .put_event(
                            bus,
                            BUS_EVENT_SOURCE,
                            BUS_EVENT_DETAIL_TYPE,
                            self.notification(m),
                        )
                        .await
                        .map_err(DeliveryError::retryable),
                    (None, _) => Err(DeliveryError::retryable(
                        "no event bus is attached to topics on this server",
                    )),
                    (_, None) => Err(DeliveryError::permanent(format!(
                        "'{}' is not an event bus",
                        sub.endpoint
                    ))),
                }
            }
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Invokes a function with SNS's Lambda event; the delivery id is the invocation id.
    async fn invoke_function(
        &self,
        sub: &SubscriptionRecord,
        m: &MessageRecord,
        d: &DeliveryRecord,
    ) -> std::result::Result<(), DeliveryError> {
        let Some(name) = function_name(&sub.endpoint) else {
            return Err(DeliveryError::permanent(format!(
                "'{}' is not a function",
                sub.endpoint
            )));
        };
        let c = self.engine.config();
        let resource = format!("arn:aws:lambda:{}:{}:function:{name}", c.region, c.account);
        let Some(worker) = self.engine.worker_for(&resource, Some(name)) else {
            return Err(DeliveryError::permanent(format!(
                "Function not found: {resource}"
            )));
        };
        let mut sns = Map::new();
        sns.insert("Type".into(), json!("Notification"));
        sns.insert("MessageId".into(), json!(m.id));
        sns.insert("TopicArn".into(), json!(m.topic_arn));
        sns.insert("Subject".into(), json!(m.subject));
        sns.insert("Message".into(), json!(m.message));
        sns.insert("Timestamp".into(), json!(iso_millis(m.published_ms)));
        sns.insert("SignatureVersion".into(), json!("1"));
        sns.insert("MessageAttributes".into(), wire_attributes(&m.attributes));
        let event = json!({"Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": self.subscription_arn(sub),
            "Sns": Value::Object(sns),
        }]});
        let request = TaskRequest {
            resource,
            function_name: Some(name.to_string()),
            input: event,
            invocation_id: d.id.clone(),
            task_token: None,
            timeout: None,
            heartbeat: None,
            execution_arn: String::new(),
            state_name: String::new(),
            attempt: d.attempts,
        };
        match worker.invoke(request).await {
            Ok(_) => Ok(()),
            Err(e) if e.error == "Lambda.ResourceNotFoundException" => Err(
                DeliveryError::permanent(format!("{}: {}", e.error, e.cause)),
            ),
            // The function could not be run (throttled, sandbox failure): worth another try.
            Err(e) if e.error.starts_with("Lambda.") => Err(DeliveryError::retryable(format!(
                "{}: {}",
                e.error, e.cause
            ))),
            // The handler ran and raised: it has had the message (SNS invokes asynchronously,
            // and retrying a handler's own error is Lambda's business, not the topic's).
            Err(e) => {
                tracing::info!(delivery = %d.id, function = name, error = %e.error, "function subscriber raised an error");
                Ok(())
            }
        }
    }
}

/// `{name: {Type, Value}}`, as SNS shows message attributes to subscribers.
fn wire_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Value {
    let mut out = Map::new();
    for (name, a) in attributes {
        out.insert(
            name.clone(),
            json!({"Type": a.kind.as_str(), "Value": a.value}),
        );
    }
    Value::Object(out)
}

/// Starts due deliveries (bounded) and sleeps on the injected clock until the next due time
/// or a wake-up.
async fn delivery_loop(topics: Weak<Inner>) {
    loop {
        let Some(inner) = topics.upgrade() else {
            return;
        };
        let mut shutdown = inner.shutdown.subscribe();
        if *shutdown.borrow() {
            return;
        }
        let now = inner.now();
        let due = inner.store.due_deliveries(now, 1024).unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading topic deliveries failed");
            Vec::new()
        });
        for d in due {
            if !lock(&inner.inflight).insert(d.id.clone()) {
                continue;
            }
            let Ok(permit) = inner.limiter.clone().acquire_owned().await else {
                return;
            };
            let task_inner = inner.clone();
            tokio::spawn(async move {
                let id = d.id.clone();
                if let Err(e) = task_inner.attempt(d).await {
                    tracing::error!(delivery = %id, error = %e, "recording a delivery outcome failed");
                }
                lock(&task_inner.inflight).remove(&id);
                drop(permit);
                task_inner.tick();
                task_inner.wake.notify_one();
            });
        }
        let next = {
            let inflight = lock(&inner.inflight);
            let skip = |id: &[u8]| std::str::from_utf8(id).is_ok_and(|id| inflight.contains(id));
            inner.store.next_delivery_due(&skip).ok().flatten()
        };
        inner.tick();
        let sleep = inner
            .engine
            .config()
            .clock
            .sleep_until(next.unwrap_or(now + 60_000).max(now + 1));
        let wake = inner.wake.clone();
        drop(inner);
        tokio::select! {
            _ = sleep => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts_are_read_without_port_user_or_brackets() {
        let host = |u: &str| url_host(u).map(|(s, h)| format!("{s} {h}"));
        assert_eq!(
            host("http://127.0.0.1:8080/x").as_deref(),
            Some("http 127.0.0.1")
        );
        assert_eq!(
            host("HTTPS://User:pw@Example.COM/p?q").as_deref(),
            Some("https example.com")
        );
        assert_eq!(host("http://[::1]:9/").as_deref(), Some("http ::1"));
        // The host is what follows the last '@' of the authority, not of the path.
        assert_eq!(
            host("http://evil.com/@127.0.0.1").as_deref(),
            Some("http evil.com")
        );
        assert_eq!(
            host("http://127.0.0.1@evil.com/").as_deref(),
            Some("http evil.com")
        );
        assert_eq!(host("http:///x"), None);
        assert_eq!(host("127.0.0.1:80"), None);
        assert_eq!(host("http://a b/"), None);
        assert!(is_loopback("localhost") && is_loopback("127.8.9.1") && is_loopback("::1"));
        assert!(!is_loopback("10.0.0.1") && !is_loopback("localhost.evil.com"));
    }

    #[test]
    fn retry_delays_grow_from_min_to_max() {
        let p = DeliveryPolicy {
            num_retries: 10,
            min_delay_seconds: 1,
            max_delay_seconds: 20,
        };
        let delays: Vec<u64> = (1..=8).map(|r| retry_delay_ms(&p, "d", r)).collect();
        assert_eq!(delays[0], 1000);
        assert!(
            delays.iter().all(|d| (1000..=20_000).contains(d)),
            "{delays:?}"
        );
        assert!(delays[5] > delays[1], "{delays:?}");
        let fixed = DeliveryPolicy::default_for(Protocol::Http);
        assert!((1..=4).all(|r| retry_delay_ms(&fixed, "d", r) == 20_000));
    }

    #[test]
    fn attributes_become_the_object_filter_policies_match() {
        let mut a = BTreeMap::new();
        a.insert("store".to_string(), MessageAttribute::string("north"));
        a.insert("price".to_string(), MessageAttribute::number(12.5));
        a.insert(
            "tags".to_string(),
            MessageAttribute {
                kind: AttributeType::StringArray,
                value: r#"["a","b"]"#.into(),
            },
        );
        a.insert(
            "blob".to_string(),
            MessageAttribute {
                kind: AttributeType::Binary,
                value: "AAEC".into(),
            },
        );
        let o = attributes_object(&a);
        assert_eq!(
            o,
            json!({"price": 12.5, "store": "north", "tags": ["a", "b"]})
        );
        let p =
            EventPattern::from_value(&json!({"price": [{"numeric": [">", 10]}], "tags": ["b"]}))
                .unwrap();
        assert!(p.matches(&o));
        let p = EventPattern::from_value(&json!({"store": ["south"]})).unwrap();
        assert!(!p.matches(&o));
    }
}
