//! The `Bus` handle: buses, rules, targets, PutEvents, durable deliveries, schedules, archives
//! and replays.
//!
//! **Invariant (accepted means kept):** PutEvents matches each event against the bus's rules
//! while building ONE write set (a delivery record per matched target, an archive entry per
//! matching archive) and answers only after that write set is flushed. An event no rule and no
//! archive wants is answered with an id and dropped, as EventBridge does.
//!
//! **Invariant (deliveries):** a delivery is on disk before it is attempted; it leaves the `W`
//! index only in the commit that records its outcome (done, rescheduled with back-off, or moved
//! to the dead letters). After a crash every delivery still in `W` is attempted again, so targets
//! see an event at least once; state machine targets are started with the delivery id as the
//! execution name, which makes a repeated start return the same execution.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};

use super::model::*;
use super::pattern::{EventPattern, PatternIndex};
use super::schedule::Schedule;
use super::store::*;
use super::transform::{InputTransformer, Reserved};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Page, PageRequest, StartExecution, Tags};
use crate::store::{Committer, WriteSet};
use crate::worker::{TaskError, TaskRequest, TaskWorker};

/// Most entries in one PutEvents call.
pub const MAX_ENTRIES: usize = 10;
/// Most bytes of the entries of one PutEvents call (AWS: 256 KB).
pub const MAX_ENTRIES_BYTES: usize = 256 * 1024;
/// Most targets of one rule.
pub const MAX_TARGETS: usize = 5;
/// The bus every account has.
pub const DEFAULT_BUS: &str = "default";

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// Kept with a dead letter (`ERROR_CODE` in AWS's dead-letter messages).
    pub code: String,
    pub message: String,
    /// Whether another attempt may succeed (a 5xx, a refused connection) or not (a 404, a
    /// state machine that does not exist).
    pub retryable: bool,
}

impl DeliveryError {
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        DeliveryError {
            code: code.into(),
            message: message.into(),
            retryable: true,
        }
    }
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        DeliveryError {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }
}

/// One delivery handed to a [`TargetInvoker`].
#[derive(Debug, Clone)]
pub struct TargetCall {
    pub target_arn: String,
    /// The text the target receives (the event, or what Input/InputPath/InputTransformer made).
    pub input: String,
    /// Stable across attempts and restarts: de-duplicate on it.
    pub delivery_id: String,
    pub rule_arn: String,
    pub event: Value,
    /// 0 for the first attempt.
    pub attempt: u32,
}

/// Delivers to targets of a kind the bus does not know itself (topics, for one), chosen by
/// ARN prefix.
#[async_trait]
pub trait TargetInvoker: Send + Sync + 'static {
    async fn deliver(&self, call: TargetCall) -> std::result::Result<(), DeliveryError>;
}

/// An HTTP request to an API destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Sends API destinations' HTTP requests (the engine knows no HTTP: `workers` implements this).
#[async_trait]
pub trait HttpSender: Send + Sync + 'static {
    /// The response's status code, or why no response came.
    async fn send(&self, call: HttpCall) -> std::result::Result<u16, String>;
}

/// How to open the bus.
#[derive(Clone)]
pub struct BusConfig {
    pub http: Option<Arc<dyn HttpSender>>,
    /// Deliveries attempted at once.
    pub max_concurrent_deliveries: usize,
    /// Back-off before the first retry; doubles per attempt, with jitter.
    pub first_retry_delay_ms: u64,
    pub max_retry_delay_ms: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            http: None,
            max_concurrent_deliveries: 64,
            first_retry_delay_ms: 1_000,
            max_retry_delay_ms: 300_000,
        }
    }
}

/// A target with what its input needs, compiled once per PutTargets.
struct CompiledTarget {
    target: Target,
    input_path: Option<stepyard_statelang::Path>,
    transformer: Option<InputTransformer>,
}

#[derive(Default)]
struct State {
    buses: BTreeMap<String, BusRecord>,
    rules: BTreeMap<(String, String), RuleRecord>,
    /// Per bus: its enabled rules that have a pattern.
    indexes: HashMap<String, PatternIndex<String>>,
    targets: HashMap<(String, String), Arc<Vec<CompiledTarget>>>,
    archives: BTreeMap<String, (ArchiveRecord, Option<EventPattern>)>,
    connections: BTreeMap<String, ConnectionRecord>,
    destinations: BTreeMap<String, ApiDestinationRecord>,
}

struct Inner {
    engine: Engine,
    config: BusConfig,
    store: BusStore,
    committer: Committer,
    state: RwLock<State>,
    /// Serialises control-plane changes (read-modify-write of rules, archives, replays).
    admin: tokio::sync::Mutex<()>,
    invokers: RwLock<Vec<(String, Arc<dyn TargetInvoker>)>>,
    inflight: Mutex<HashSet<String>>,
    /// Per API destination: when its next request may go (rate limit).
    next_slot: Mutex<HashMap<String, u64>>,
    cancel_requested: Mutex<HashSet<String>>,
    wake: Arc<Notify>,
    limiter: Arc<Semaphore>,
    progress: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    loops: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The event bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

fn validation(msg: impl Into<String>) -> Error {
    Error::ValidationException(msg.into())
}

/// EventBridge's name rule for buses, rules, archives, replays, connections and destinations.
fn check_name(kind: &str, name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{name}' at '{kind}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ (1 to {max} characters)"
        )))
    }
}

fn iso(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A deterministic jitter fraction in [0.5, 1.0) from the delivery id and attempt: back-off
/// spreads out without a random source in the engine.
fn jitter(id: &str, attempt: u32) -> f64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, attempt).hash(&mut h);
    0.5 + (h.finish() % 1000) as f64 / 2000.0
}

/// The kinds of target ARN the bus delivers to itself.
enum TargetKind<'a> {
    StateMachine,
    Function(&'a str),
    Bus(&'a str),
    ApiDestination(&'a str),
    Other,
}

fn classify(arn: &str) -> TargetKind<'_> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() >= 6 && parts[0] == "arn" {
        match (parts[2], parts[5]) {
            ("states", "stateMachine") => return TargetKind::StateMachine,
            ("lambda", "function") if parts.len() == 7 => {
                let name = parts[6].split(':').next().unwrap_or_default();
                return TargetKind::Function(name);
            }
            ("events", rest) => {
                if let Some(name) = rest.strip_prefix("event-bus/") {
                    return TargetKind::Bus(name);
                }
                if let Some(name) = rest.strip_prefix("api-destination/") {
                    return TargetKind::ApiDestination(name.split('/').next().unwrap_or(name));
                }
            }
            _ => {}
        }
    }
    TargetKind::Other
}

/// What a tag call's ARN names: an event bus (`event-bus/NAME`) or a rule (`rule/NAME` on the
/// default bus, `rule/BUS/NAME` on another).
enum Tagged {
    Bus(String),
    Rule(String, String),
}

impl Tagged {
    fn of(arn: &str) -> Result<Tagged> {
        if let TargetKind::Bus(name) = classify(arn)
            && !name.is_empty()
        {
            return Ok(Tagged::Bus(name.to_string()));
        }
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let resource = match parts.as_slice() {
            ["arn", _, "events", _, _, resource] => *resource,
            _ => return Err(validation(format!("'{arn}' is not an EventBridge ARN"))),
        };
        match resource.strip_prefix("rule/").map(|r| r.split_once('/')) {
            Some(Some((bus, name))) if !bus.is_empty() && !name.is_empty() => {
                Ok(Tagged::Rule(bus.to_string(), name.to_string()))
            }
            Some(None) if resource.len() > "rule/".len() => Ok(Tagged::Rule(
                DEFAULT_BUS.to_string(),
                resource["rule/".len()..].to_string(),
            )),
            _ => Err(validation(format!(
                "'{arn}' names neither an event bus nor a rule; only those take tags"
            ))),
        }
    }
}

impl Bus {
    /// Opens the bus in the engine's data folder: loads buses, rules, archives; resumes pending
    /// deliveries, armed schedules and running replays.
    pub async fn open(engine: &Engine, config: BusConfig) -> Result<Bus> {
        let (sled, committer) = engine.sibling_store(TREE)?;
        let store = BusStore::open(sled)?;
        let (progress, _) = watch::channel(0);
        let (shutdown, _) = watch::channel(false);
        let limiter = Arc::new(Semaphore::new(config.max_concurrent_deliveries.max(1)));
        let inner = Arc::new(Inner {
            engine: engine.clone(),
            config,
            store,
            committer,
            state: RwLock::new(State::default()),
            admin: tokio::sync::Mutex::new(()),
            invokers: RwLock::new(Vec::new()),
            inflight: Mutex::new(HashSet::new()),
            next_slot: Mutex::new(HashMap::new()),
            cancel_requested: Mutex::new(HashSet::new()),
            wake: Arc::new(Notify::new()),
            limiter,
            progress,
            shutdown,
            loops: Mutex::new(Vec::new()),
        });
        let bus = Bus { inner };
        bus.load().await?;
        let delivery_loop = tokio::spawn(delivery_loop(Arc::downgrade(&bus.inner)));
        lock(&bus.inner.loops).push(delivery_loop);
        for replay in bus.inner.store.replays()? {
            if !replay.state.is_final() {
                bus.spawn_replay(replay.name.clone());
            }
        }
        Ok(bus)
    }

    async fn load(&self) -> Result<()> {
        let inner = &self.inner;
        let mut st = State::default();
        for b in inner.store.buses()? {
            st.buses.insert(b.name.clone(), b);
        }
        if !st.buses.contains_key(DEFAULT_BUS) {
            let rec = BusRecord {
                name: DEFAULT_BUS.into(),
                description: None,
                created_ms: inner.now(),
                tags: Tags::new(),
            };
            let mut w = WriteSet::default();
            w.put_bus(&rec);
            inner.committer.submit(w).wait().await?;
            st.buses.insert(DEFAULT_BUS.into(), rec);
        }
        for r in inner.store.rules()? {
            st.rules.insert((r.bus.clone(), r.name.clone()), r);
        }
        for a in inner.store.archives()? {
            let pattern = match &a.event_pattern {
                Some(p) => Some(
                    EventPattern::parse(p).map_err(|e| Error::Corrupt(format!("archive: {e}")))?,
                ),
                None => None,
            };
            st.archives.insert(a.name.clone(), (a, pattern));
        }
        for c in inner.store.connections()? {
            st.connections.insert(c.name.clone(), c);
        }
        for d in inner.store.api_destinations()? {
            st.destinations.insert(d.name.clone(), d);
        }
        let keys: Vec<(String, String)> = st.rules.keys().cloned().collect();
        for key in keys {
            reindex(&mut st, &key)?;
        }
        *write(&inner.state) = st;
        Ok(())
    }

    /// Stops the delivery loop and replays (pending deliveries stay on disk for the next open).
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.wake.notify_waiters();
        let loops: Vec<_> = lock(&self.inner.loops).drain(..).collect();
        for handle in loops {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Targets whose ARN starts with `prefix` go to `invoker` (later registrations win).
    pub fn register_target(&self, prefix: &str, invoker: Arc<dyn TargetInvoker>) {
        write(&self.inner.invokers).insert(0, (prefix.to_string(), invoker));
    }

    // ---- ARNs --------------------------------------------------------------------------------

    fn arn(&self, resource: &str) -> String {
        let c = self.inner.engine.config();
        format!("arn:aws:events:{}:{}:{resource}", c.region, c.account)
    }
    pub fn bus_arn(&self, name: &str) -> String {
        self.arn(&format!("event-bus/{name}"))
    }
    pub fn rule_arn(&self, bus: &str, rule: &str) -> String {
        self.inner.rule_arn(bus, rule)
    }
    pub fn archive_arn(&self, name: &str) -> String {
        self.arn(&format!("archive/{name}"))
    }
    pub fn replay_arn(&self, name: &str) -> String {
        self.arn(&format!("replay/{name}"))
    }

    /// A bus name from a name or an event-bus ARN.
    pub fn bus_name(name_or_arn: &str) -> Result<String> {
        if name_or_arn.starts_with("arn:") {
            match classify(name_or_arn) {
                TargetKind::Bus(name) => Ok(name.to_string()),
                _ => Err(validation(format!(
                    "Parameter EventBusName is not valid: '{name_or_arn}' is not an event bus ARN"
                ))),
            }
        } else {
            Ok(name_or_arn.to_string())
        }
    }

    fn archive_name(&self, arn: &str) -> Result<String> {
        arn.rsplit_once(":archive/")
            .map(|(_, n)| n.to_string())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| validation(format!("'{arn}' is not an archive ARN")))
    }

    // ---- buses -------------------------------------------------------------------------------

    fn bus_info(&self, r: &BusRecord) -> EventBusInfo {
        EventBusInfo {
            name: r.name.clone(),
            arn: self.bus_arn(&r.name),
            description: r.description.clone(),
            created_ms: r.created_ms,
        }
    }

    pub async fn create_event_bus(
        &self,
        name: &str,
        description: Option<String>,
    ) -> Result<EventBusInfo> {
        self.create_event_bus_with_tags(name, description, Tags::new())
            .await
    }

    /// CreateEventBus with tags.
    pub async fn create_event_bus_with_tags(
        &self,
        name: &str,
        description: Option<String>,
        tags: Tags,
    ) -> Result<EventBusInfo> {
        check_name("name", name, 256)?;
        let tags = crate::tags::checked(tags, &self.bus_arn(name))?;
        if name == DEFAULT_BUS || name.starts_with("aws.") {
            return Err(validation(format!("Event bus name '{name}' is reserved")));
        }
        let _admin = self.inner.admin.lock().await;
        if read(&self.inner.state).buses.contains_key(name) {
            return Err(Error::ResourceAlreadyExists(format!(
                "Event bus {name} already exists."
            )));
        }
        let rec = BusRecord {
            name: name.to_string(),
            description,
            created_ms: self.inner.now(),
            tags,
        };
        let mut w = WriteSet::default();
        w.put_bus(&rec);
        self.inner.commit(w).await?;
        write(&self.inner.state)
            .buses
            .insert(name.to_string(), rec.clone());
        Ok(self.bus_info(&rec))
    }

    pub fn describe_event_bus(&self, name: &str) -> Result<EventBusInfo> {
        let name = Bus::bus_name(name)?;
        read(&self.inner.state)
            .buses
            .get(&name)
            .map(|r| self.bus_info(r))
            .ok_or_else(|| bus_not_found(&name))
    }

    pub fn list_event_buses(
        &self,
        name_prefix: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<EventBusInfo>> {
        let st = read(&self.inner.state);
        let items = st
            .buses
            .values()
            .filter(|b| name_prefix.is_none_or(|p| b.name.starts_with(p)))
            .map(|b| self.bus_info(b));
        paginate(items, |b| b.name.clone(), page)
    }

    /// Deletes a custom bus with its rules (AWS refuses `default`).
    pub async fn delete_event_bus(&self, name: &str) -> Result<()> {
        let name = Bus::bus_name(name)?;
        if name == DEFAULT_BUS {
            return Err(validation("Cannot delete event bus default."));
        }
        let _admin = self.inner.admin.lock().await;
        let rules: Vec<RuleRecord> = {
            let st = read(&self.inner.state);
            if !st.buses.contains_key(&name) {
                // AWS answers success for a bus that is not there.
                return Ok(());
            }
            st.rules
                .values()
                .filter(|r| r.bus == name)
                .cloned()
                .collect()
        };
        let mut w = WriteSet::default();
        w.delete_bus(&name);
        for r in &rules {
            w.delete_rule(&r.bus, &r.name);
            if let Some(due) = r.next_fire_ms {
                w.delete_schedule(due, &r.bus, &r.name);
            }
        }
        self.inner.commit(w).await?;
        let mut st = write(&self.inner.state);
        st.buses.remove(&name);
        for r in rules {
            let key = (r.bus, r.name);
            st.rules.remove(&key);
            st.targets.remove(&key);
        }
        st.indexes.remove(&name);
        Ok(())
    }

    // ---- rules -------------------------------------------------------------------------------

    fn rule_info(&self, r: &RuleRecord) -> RuleInfo {
        RuleInfo {
            name: r.name.clone(),
            arn: self.rule_arn(&r.bus, &r.name),
            event_bus_name: r.bus.clone(),
            event_pattern: r.event_pattern.clone(),
            schedule_expression: r.schedule_expression.clone(),
            state: r.state,
            description: r.description.clone(),
            role_arn: r.role_arn.clone(),
            next_fire_ms: r.next_fire_ms,
        }
    }

    /// PutRule: creates the rule or updates it (its targets stay). Returns the rule's ARN.
    pub async fn put_rule(&self, req: PutRule) -> Result<String> {
        check_name("name", &req.name, 64)?;
        let bus = Bus::bus_name(req.event_bus_name.as_deref().unwrap_or(DEFAULT_BUS))?;
        if req.event_pattern.is_none() && req.schedule_expression.is_none() {
            return Err(validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            ));
        }
        if let Some(p) = &req.event_pattern {
            EventPattern::parse(p).map_err(|e| Error::InvalidEventPattern(e.to_string()))?;
        }
        let schedule = match &req.schedule_expression {
            Some(expr) => {
                if bus != DEFAULT_BUS {
                    return Err(validation(
                        "ScheduleExpression is supported only on the default event bus.",
                    ));
                }
                Some(Schedule::parse(expr).map_err(|e| validation(e.to_string()))?)
            }
            None => None,
        };
        let _admin = self.inner.admin.lock().await;
        let now = self.inner.now();
        let existing = {
            let st = read(&self.inner.state);
            if !st.buses.contains_key(&bus) {
                return Err(bus_not_found(&bus));
            }
            st.rules.get(&(bus.clone(), req.name.clone())).cloned()
        };
        let mut w = WriteSet::default();
        let mut rec = match existing {
            Some(old) => {
                if let Some(due) = old.next_fire_ms {
                    w.delete_schedule(due, &old.bus, &old.name);
                }
                RuleRecord {
                    event_pattern: req.event_pattern.clone(),
                    schedule_expression: req.schedule_expression.clone(),
                    state: req.state.unwrap_or(old.state),
                    description: req.description.clone().or(old.description.clone()),
                    role_arn: req.role_arn.clone().or(old.role_arn.clone()),
                    anchor_ms: if old.schedule_expression == req.schedule_expression {
                        old.anchor_ms
                    } else {
                        now
                    },
                    next_fire_ms: None,
                    ..old
                }
            }
            None => RuleRecord {
                tags: crate::tags::checked(req.tags, &self.rule_arn(&bus, &req.name))?,
                bus: bus.clone(),
                name: req.name.clone(),
                event_pattern: req.event_pattern.clone(),
                schedule_expression: req.schedule_expression.clone(),
                state: req.state.unwrap_or(RuleState::Enabled),
                description: req.description.clone(),
                role_arn: req.role_arn.clone(),
                targets: Vec::new(),
                anchor_ms: now,
                next_fire_ms: None,
            },
        };
        if let (Some(s), RuleState::Enabled) = (&schedule, rec.state) {
            rec.next_fire_ms = s.next_after(rec.anchor_ms, now);
        }
        self.inner.put_rule_writes(&mut w, &rec);
        self.inner.commit(w).await?;
        let key = (rec.bus.clone(), rec.name.clone());
        {
            let mut st = write(&self.inner.state);
            st.rules.insert(key.clone(), rec.clone());
            reindex(&mut st, &key)?;
        }
        self.inner.wake.notify_one();
        Ok(self.rule_arn(&rec.bus, &rec.name))
    }

    // ---- tags --------------------------------------------------------------------------------

    /// Adds tags to an event bus or a rule; a key it already has takes the new value.
    pub async fn tag_resource(&self, resource_arn: &str, added: Tags) -> Result<()> {
        self.retag(resource_arn, |current| {
            crate::tags::merged(current, added, resource_arn)
        })
        .await
    }

    /// Removes tags by key from an event bus or a rule; a key it does not have is ignored.
    pub async fn untag_resource(&self, resource_arn: &str, keys: &[String]) -> Result<()> {
        self.retag(resource_arn, |current| crate::tags::without(current, keys))
            .await
    }

    /// The tags of an event bus or a rule.
    pub fn list_tags_for_resource(&self, resource_arn: &str) -> Result<Tags> {
        match Tagged::of(resource_arn)? {
            Tagged::Bus(name) => read(&self.inner.state)
                .buses
                .get(&name)
                .map(|b| b.tags.clone())
                .ok_or_else(|| bus_not_found(&name)),
            Tagged::Rule(bus, name) => Ok(self.rule_record(Some(&bus), &name)?.tags),
        }
    }

    async fn retag(
        &self,
        resource_arn: &str,
        change: impl FnOnce(&Tags) -> Result<Tags>,
    ) -> Result<()> {
        let target = Tagged::of(resource_arn)?;
        let _admin = self.inner.admin.lock().await;
        let mut w = WriteSet::default();
        match target {
            Tagged::Bus(name) => {
                let mut rec = read(&self.inner.state)
                    .buses
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| bus_not_found(&name))?;
                if !crate::tags::apply(&mut rec.tags, change)? {
                    return Ok(());
                }
                w.put_bus(&rec);
                self.inner.commit(w).await?;
                write(&self.inner.state).buses.insert(name, rec);
            }
            Tagged::Rule(bus, name) => {
                let mut rec = self.rule_record(Some(&bus), &name)?;
                if !crate::tags::apply(&mut rec.tags, change)? {
                    return Ok(());
                }
                w.put_rule(&rec);
                self.inner.commit(w).await?;
                write(&self.inner.state).rules.insert((bus, name), rec);
            }
        }
        Ok(())
    }

    fn rule_record(&self, bus: Option<&str>, name: &str) -> Result<RuleRecord> {
        let bus = Bus::bus_name(bus.unwrap_or(DEFAULT_BUS))?;
        let st = read(&self.inner.state);
        if !st.buses.contains_key(&bus) {
            return Err(bus_not_found(&bus));
        }
        st.rules
            .get(&(bus.clone(), name.to_string()))
            .cloned()
            .ok_or_else(|| {
                Error::ResourceNotFound(format!("Rule {name} does not exist on EventBus {bus}."))
            })
    }

    pub fn describe_rule(&self, bus: Option<&str>, name: &str) -> Result<RuleInfo> {
        Ok(self.rule_info(&self.rule_record(bus, name)?))
    }

    pub fn list_rules(
        &self,
        bus: Option<&str>,
        name_prefix: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<RuleInfo>> {
        let bus = Bus::bus_name(bus.unwrap_or(DEFAULT_BUS))?;
        let st = read(&self.inner.state);
        if !st.buses.contains_key(&bus) {
            return Err(bus_not_found(&bus));
        }
        let items = st
            .rules
            .values()
            .filter(|r| r.bus == bus && name_prefix.is_none_or(|p| r.name.starts_with(p)))
            .map(|r| self.rule_info(r));
        paginate(items, |r| r.name.clone(), page)
    }

    /// Rules (ARNs) that have a target with this ARN.
    pub fn list_rule_names_by_target(
        &self,
        bus: Option<&str>,
        target_arn: &str,
    ) -> Result<Vec<String>> {
        let bus = Bus::bus_name(bus.unwrap_or(DEFAULT_BUS))?;
        let st = read(&self.inner.state);
        Ok(st
            .rules
            .values()
            .filter(|r| r.bus == bus && r.targets.iter().any(|t| t.arn == target_arn))
            .map(|r| r.name.clone())
            .collect())
    }

    /// DeleteRule: refused while the rule has targets unless `force`.
    pub async fn delete_rule(&self, bus: Option<&str>, name: &str, force: bool) -> Result<()> {
        let _admin = self.inner.admin.lock().await;
        let rec = match self.rule_record(bus, name) {
            Ok(r) => r,
            // AWS answers success for a rule that is not there.
            Err(Error::ResourceNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !rec.targets.is_empty() && !force {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        let mut w = WriteSet::default();
        w.delete_rule(&rec.bus, &rec.name);
        if let Some(due) = rec.next_fire_ms {
            w.delete_schedule(due, &rec.bus, &rec.name);
        }
        self.inner.commit(w).await?;
        let key = (rec.bus.clone(), rec.name.clone());
        let mut st = write(&self.inner.state);
        st.rules.remove(&key);
        st.targets.remove(&key);
        reindex(&mut st, &key)?;
        Ok(())
    }

    pub async fn enable_rule(&self, bus: Option<&str>, name: &str) -> Result<()> {
        self.set_rule_state(bus, name, RuleState::Enabled).await
    }

    pub async fn disable_rule(&self, bus: Option<&str>, name: &str) -> Result<()> {
        self.set_rule_state(bus, name, RuleState::Disabled).await
    }

    async fn set_rule_state(&self, bus: Option<&str>, name: &str, state: RuleState) -> Result<()> {
        let _admin = self.inner.admin.lock().await;
        let mut rec = self.rule_record(bus, name)?;
        if rec.state == state {
            return Ok(());
        }
        let now = self.inner.now();
        let mut w = WriteSet::default();
        if let Some(due) = rec.next_fire_ms.take() {
            w.delete_schedule(due, &rec.bus, &rec.name);
        }
        rec.state = state;
        if state == RuleState::Enabled
            && let Some(expr) = &rec.schedule_expression
        {
            let s = Schedule::parse(expr).map_err(|e| validation(e.to_string()))?;
            // A rate counts again from when the rule is enabled.
            rec.anchor_ms = now;
            rec.next_fire_ms = s.next_after(rec.anchor_ms, now);
        }
        self.inner.put_rule_writes(&mut w, &rec);
        self.inner.commit(w).await?;
        let key = (rec.bus.clone(), rec.name.clone());
        {
            let mut st = write(&self.inner.state);
            st.rules.insert(key.clone(), rec);
            reindex(&mut st, &key)?;
        }
        self.inner.wake.notify_one();
        Ok(())
    }

    // ---- targets -----------------------------------------------------------------------------

    /// PutTargets: adds or replaces targets by id. Targets that cannot be taken come back as
    /// failures; the others are kept.
    pub async fn put_targets(
        &self,
        bus: Option<&str>,
        rule: &str,
        targets: Vec<Target>,
    ) -> Result<Vec<TargetFailure>> {
        if targets.is_empty() || targets.len() > 10 {
            return Err(validation(
                "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10",
            ));
        }
        let _admin = self.inner.admin.lock().await;
        let mut rec = self.rule_record(bus, rule)?;
        let mut failures = Vec::new();
        for t in targets {
            if let Err(msg) = self.check_target(&t) {
                failures.push(TargetFailure {
                    target_id: t.id.clone(),
                    error_code: "ValidationException".into(),
                    error_message: msg,
                });
                continue;
            }
            match rec.targets.iter().position(|x| x.id == t.id) {
                Some(i) => rec.targets[i] = t,
                None if rec.targets.len() >= MAX_TARGETS => {
                    return Err(Error::LimitExceeded(format!(
                        "The requested resource exceeds the maximum number allowed: a rule has at most {MAX_TARGETS} targets."
                    )));
                }
                None => rec.targets.push(t),
            }
        }
        let mut w = WriteSet::default();
        w.put_rule(&rec);
        self.inner.commit(w).await?;
        let key = (rec.bus.clone(), rec.name.clone());
        let mut st = write(&self.inner.state);
        st.rules.insert(key.clone(), rec);
        reindex(&mut st, &key)?;
        Ok(failures)
    }

    fn check_target(&self, t: &Target) -> std::result::Result<(), String> {
        let id_ok = !t.id.is_empty()
            && t.id.len() <= 64
            && t.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !id_ok {
            return Err(format!(
                "Target id '{}' is not valid: 1 to 64 characters of [.-_A-Za-z0-9]",
                t.id
            ));
        }
        if !t.arn.starts_with("arn:") {
            return Err(format!("Parameter Arn '{}' is not valid.", t.arn));
        }
        let set = [
            t.input.is_some(),
            t.input_path.is_some(),
            t.input_transformer.is_some(),
        ];
        if set.iter().filter(|x| **x).count() > 1 {
            return Err(
                "Only one of Input, InputPath, or InputTransformer must be provided.".into(),
            );
        }
        if let Some(input) = &t.input
            && serde_json::from_str::<Value>(input).is_err()
        {
            return Err("Parameter Input is not valid: it must be valid JSON text.".into());
        }
        compile_target(t.clone()).map(|_| ())?;
        if let Some(p) = &t.retry_policy {
            if p.maximum_retry_attempts > 185 {
                return Err("RetryPolicy MaximumRetryAttempts is at most 185.".into());
            }
            if !(60..=86_400).contains(&p.maximum_event_age_seconds) {
                return Err("RetryPolicy MaximumEventAgeInSeconds is between 60 and 86400.".into());
            }
        }
        if let TargetKind::ApiDestination(name) = classify(&t.arn)
            && !read(&self.inner.state).destinations.contains_key(name)
        {
            return Err(format!("API destination {name} does not exist."));
        }
        Ok(())
    }

    pub async fn remove_targets(
        &self,
        bus: Option<&str>,
        rule: &str,
        ids: &[String],
    ) -> Result<Vec<TargetFailure>> {
        let _admin = self.inner.admin.lock().await;
        let mut rec = self.rule_record(bus, rule)?;
        let mut failures = Vec::new();
        for id in ids {
            let before = rec.targets.len();
            rec.targets.retain(|t| &t.id != id);
            if rec.targets.len() == before {
                failures.push(TargetFailure {
                    target_id: id.clone(),
                    error_code: "ResourceNotFoundException".into(),
                    error_message: format!("Target {id} does not exist on rule {rule}."),
                });
            }
        }
        let mut w = WriteSet::default();
        w.put_rule(&rec);
        self.inner.commit(w).await?;
        let key = (rec.bus.clone(), rec.name.clone());
        let mut st = write(&self.inner.state);
        st.rules.insert(key.clone(), rec);
        reindex(&mut st, &key)?;
        Ok(failures)
    }

    pub fn list_targets_by_rule(&self, bus: Option<&str>, rule: &str) -> Result<Vec<Target>> {
        Ok(self.rule_record(bus, rule)?.targets)
    }

    // ---- events ------------------------------------------------------------------------------

    /// PutEvents: every accepted event is matched and its deliveries are on disk before this
    /// returns. One result per entry, in order.
    pub async fn put_events(
        &self,
        entries: Vec<PutEventsEntry>,
    ) -> Result<Vec<PutEventsResultEntry>> {
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            return Err(validation(format!(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES} and greater than or equal to 1"
            )));
        }
        let size: usize = entries.iter().map(entry_size).sum();
        if size > MAX_ENTRIES_BYTES {
            return Err(Error::DataLimitExceeded(format!(
                "Total size of the entries in the request is over the limit ({size} bytes; at most {MAX_ENTRIES_BYTES})."
            )));
        }
        let now = self.inner.now();
        let mut w = WriteSet::default();
        let mut results = Vec::with_capacity(entries.len());
        {
            let st = read(&self.inner.state);
            for entry in entries {
                match self.inner.envelope(&st, entry, now) {
                    Ok((bus, event, id)) => {
                        self.inner.route(&st, &bus, &event, now, None, &mut w)?;
                        self.inner.archive(&st, &bus, &event, now, &mut w)?;
                        results.push(PutEventsResultEntry {
                            event_id: Some(id),
                            error_code: None,
                            error_message: None,
                        });
                    }
                    Err((code, message)) => results.push(PutEventsResultEntry {
                        event_id: None,
                        error_code: Some(code.into()),
                        error_message: Some(message),
                    }),
                }
            }
        }
        self.inner.commit(w).await?;
        self.inner.wake.notify_one();
        Ok(results)
    }

    /// TestEventPattern.
    pub fn test_event_pattern(&self, pattern: &str, event: &str) -> Result<bool> {
        let pattern =
            EventPattern::parse(pattern).map_err(|e| Error::InvalidEventPattern(e.to_string()))?;
        let event: Value = serde_json::from_str(event)
            .map_err(|e| validation(format!("Parameter Event is not valid: {e}")))?;
        for field in ["id", "account", "source", "time", "region"] {
            if event.get(field).is_none() {
                return Err(validation(format!(
                    "Parameter Event is not valid: the event has no '{field}' field."
                )));
            }
        }
        Ok(pattern.matches(&event))
    }

    /// Deliveries waiting (due now or later, including those being attempted).
    pub fn pending_deliveries(&self) -> Result<usize> {
        self.inner.store.pending_deliveries()
    }

    /// Waits until no delivery is due at the clock's current time or being attempted: with a
    /// manual clock, everything that can happen now has happened.
    pub async fn settled(&self) -> Result<()> {
        let mut progress = self.inner.progress.subscribe();
        loop {
            progress.borrow_and_update();
            let now = self.inner.now();
            let busy = !lock(&self.inner.inflight).is_empty()
                || !self.inner.store.due_deliveries(now, 1)?.is_empty()
                || !self.inner.store.due_schedules(now)?.is_empty();
            if !busy {
                return Ok(());
            }
            if progress.changed().await.is_err() {
                return Err(Error::ShuttingDown);
            }
        }
    }

    // ---- dead letters ------------------------------------------------------------------------

    fn dead_letter_info(r: &DeadLetterRecord) -> DeadLetter {
        DeadLetter {
            id: r.seq.to_string(),
            event: r.delivery.event.clone(),
            rule_arn: r.delivery.rule_arn.clone(),
            target_id: r.delivery.target.id.clone(),
            target_arn: r.delivery.target.arn.clone(),
            input: r.delivery.input.clone(),
            error_code: r.error_code.clone(),
            error_message: r.error_message.clone(),
            attempts: r.delivery.attempts,
            dead_lettered_ms: r.dead_lettered_ms,
        }
    }

    pub fn list_dead_letters(&self, page: PageRequest) -> Result<Page<DeadLetter>> {
        let after = match &page.next_token {
            Some(t) => Some(
                t.parse::<u64>()
                    .map_err(|_| Error::InvalidNextToken(format!("Invalid NextToken: {t}")))?,
            ),
            None => None,
        };
        let limit = page.limit();
        let mut rows = self.inner.store.dead_letters(after, limit + 1)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_token = more
            .then(|| rows.last().map(|r| r.seq.to_string()))
            .flatten();
        Ok(Page {
            items: rows.iter().map(Bus::dead_letter_info).collect(),
            next_token,
        })
    }

    /// Puts a dead letter back as a delivery due now, with its attempts counted afresh.
    pub async fn redrive_dead_letter(&self, id: &str) -> Result<()> {
        let seq: u64 = id
            .parse()
            .map_err(|_| Error::ResourceNotFound(format!("Dead letter {id} does not exist.")))?;
        let Some(rec) = self.inner.store.dead_letter(seq)? else {
            return Err(Error::ResourceNotFound(format!(
                "Dead letter {id} does not exist."
            )));
        };
        let now = self.inner.now();
        let mut w = WriteSet::default();
        w.delete_dead_letter(seq);
        let mut d = rec.delivery;
        d.due_ms = now;
        d.attempts = 0;
        d.ingested_ms = now;
        w.put_delivery(&d);
        self.inner.commit(w).await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    // ---- archives ----------------------------------------------------------------------------

    fn archive_info(&self, a: &ArchiveRecord) -> Result<ArchiveInfo> {
        let (count, bytes) = self.inner.store.archive_size(&a.name)?;
        Ok(ArchiveInfo {
            name: a.name.clone(),
            arn: self.archive_arn(&a.name),
            event_source_arn: self.bus_arn(&a.bus),
            description: a.description.clone(),
            event_pattern: a.event_pattern.clone(),
            retention_days: a.retention_days,
            state: "ENABLED",
            event_count: count,
            size_bytes: bytes,
            created_ms: a.created_ms,
        })
    }

    pub async fn create_archive(&self, req: CreateArchive) -> Result<ArchiveInfo> {
        check_name("archiveName", &req.name, 48)?;
        let bus = Bus::bus_name(&req.event_source_arn)?;
        let pattern = match &req.event_pattern {
            Some(p) => Some(
                EventPattern::parse(p).map_err(|e| Error::InvalidEventPattern(e.to_string()))?,
            ),
            None => None,
        };
        let _admin = self.inner.admin.lock().await;
        {
            let st = read(&self.inner.state);
            if !st.buses.contains_key(&bus) {
                return Err(bus_not_found(&bus));
            }
            if st.archives.contains_key(&req.name) {
                return Err(Error::ResourceAlreadyExists(format!(
                    "Archive {} already exists.",
                    req.name
                )));
            }
        }
        let rec = ArchiveRecord {
            name: req.name.clone(),
            bus,
            description: req.description,
            event_pattern: req.event_pattern,
            retention_days: req.retention_days,
            created_ms: self.inner.now(),
        };
        let mut w = WriteSet::default();
        w.put_archive(&rec);
        self.inner.commit(w).await?;
        write(&self.inner.state)
            .archives
            .insert(rec.name.clone(), (rec.clone(), pattern));
        self.archive_info(&rec)
    }

    pub fn describe_archive(&self, name: &str) -> Result<ArchiveInfo> {
        let rec = read(&self.inner.state)
            .archives
            .get(name)
            .map(|(r, _)| r.clone())
            .ok_or_else(|| archive_not_found(name))?;
        self.archive_info(&rec)
    }

    pub fn list_archives(&self, page: PageRequest) -> Result<Page<ArchiveInfo>> {
        let recs: Vec<ArchiveRecord> = read(&self.inner.state)
            .archives
            .values()
            .map(|(r, _)| r.clone())
            .collect();
        let infos = recs
            .iter()
            .map(|r| self.archive_info(r))
            .collect::<Result<Vec<_>>>()?;
        paginate(infos.into_iter(), |a| a.name.clone(), page)
    }

    pub async fn delete_archive(&self, name: &str) -> Result<()> {
        let _admin = self.inner.admin.lock().await;
        if !read(&self.inner.state).archives.contains_key(name) {
            return Err(archive_not_found(name));
        }
        let mut w = WriteSet::default();
        w.delete_archive(name);
        for key in self.inner.store.archived_keys(name)? {
            w.delete_key(key);
        }
        self.inner.commit(w).await?;
        write(&self.inner.state).archives.remove(name);
        Ok(())
    }

    /// Drops archived events past their archive's retention.
    pub async fn purge_archives(&self) -> Result<u64> {
        let now = self.inner.now();
        let archives: Vec<ArchiveRecord> = read(&self.inner.state)
            .archives
            .values()
            .map(|(r, _)| r.clone())
            .collect();
        let mut w = WriteSet::default();
        let mut purged = 0;
        for a in archives.iter().filter(|a| a.retention_days > 0) {
            let cutoff = now.saturating_sub(a.retention_days as u64 * 86_400_000);
            for key in self.inner.store.archived_before(&a.name, cutoff)? {
                w.delete_key(key);
                purged += 1;
            }
        }
        self.inner.commit(w).await?;
        Ok(purged)
    }

    // ---- replays -----------------------------------------------------------------------------

    fn replay_info(&self, r: &ReplayRecord) -> ReplayInfo {
        ReplayInfo {
            name: r.name.clone(),
            arn: self.replay_arn(&r.name),
            description: r.description.clone(),
            event_source_arn: self.archive_arn(&r.archive),
            destination_arn: self.bus_arn(&r.destination_bus),
            filter_arns: r.filter_arns.clone(),
            state: r.state,
            state_reason: r.state_reason.clone(),
            event_start_ms: r.event_start_ms,
            event_end_ms: r.event_end_ms,
            event_last_replayed_ms: r.last_replayed_ms,
            replay_start_ms: r.replay_start_ms,
            replay_end_ms: r.replay_end_ms,
            events_replayed: r.events_replayed,
        }
    }

    /// StartReplay: sends an archive's events from a time window back onto a bus, each with a
    /// `replay-name` field.
    pub async fn start_replay(&self, req: StartReplay) -> Result<ReplayInfo> {
        check_name("replayName", &req.name, 64)?;
        let archive = self.archive_name(&req.event_source_arn)?;
        let bus = Bus::bus_name(&req.destination_arn)?;
        if req.event_start_ms >= req.event_end_ms {
            return Err(validation(
                "Parameter EventStartTime is not valid: it must be before EventEndTime.",
            ));
        }
        let _admin = self.inner.admin.lock().await;
        {
            let st = read(&self.inner.state);
            let Some((a, _)) = st.archives.get(&archive) else {
                return Err(archive_not_found(&archive));
            };
            if a.bus != bus {
                return Err(validation(format!(
                    "Parameter Destination.Arn is not valid: archive {archive} holds events of bus {}, so a replay goes back to that bus.",
                    a.bus
                )));
            }
            for arn in &req.filter_arns {
                if !st
                    .rules
                    .values()
                    .any(|r| &self.rule_arn(&r.bus, &r.name) == arn)
                {
                    return Err(validation(format!(
                        "Parameter Destination.FilterArns is not valid: rule {arn} does not exist."
                    )));
                }
            }
        }
        if self.inner.store.replay(&req.name)?.is_some() {
            return Err(Error::ResourceAlreadyExists(format!(
                "Replay {} already exists.",
                req.name
            )));
        }
        let rec = ReplayRecord {
            name: req.name.clone(),
            description: req.description,
            archive,
            destination_bus: bus,
            filter_arns: req.filter_arns,
            state: ReplayState::Starting,
            state_reason: None,
            event_start_ms: req.event_start_ms,
            event_end_ms: req.event_end_ms,
            last_replayed_ms: None,
            cursor: None,
            events_replayed: 0,
            replay_start_ms: self.inner.now(),
            replay_end_ms: None,
        };
        let mut w = WriteSet::default();
        w.put_replay(&rec);
        self.inner.commit(w).await?;
        self.spawn_replay(rec.name.clone());
        Ok(self.replay_info(&rec))
    }

    pub fn describe_replay(&self, name: &str) -> Result<ReplayInfo> {
        self.inner
            .store
            .replay(name)?
            .map(|r| self.replay_info(&r))
            .ok_or_else(|| Error::ResourceNotFound(format!("Replay {name} does not exist.")))
    }

    pub fn list_replays(&self, page: PageRequest) -> Result<Page<ReplayInfo>> {
        let infos: Vec<ReplayInfo> = self
            .inner
            .store
            .replays()?
            .iter()
            .map(|r| self.replay_info(r))
            .collect();
        paginate(infos.into_iter(), |r| r.name.clone(), page)
    }

    pub async fn cancel_replay(&self, name: &str) -> Result<ReplayInfo> {
        let _admin = self.inner.admin.lock().await;
        let Some(mut rec) = self.inner.store.replay(name)? else {
            return Err(Error::ResourceNotFound(format!(
                "Replay {name} does not exist."
            )));
        };
        if rec.state.is_final() || rec.state == ReplayState::Cancelling {
            return Err(Error::IllegalStatus(format!(
                "Replay {name} is {} and cannot be cancelled.",
                rec.state.as_str()
            )));
        }
        rec.state = ReplayState::Cancelling;
        let mut w = WriteSet::default();
        w.put_replay(&rec);
        self.inner.commit(w).await?;
        lock(&self.inner.cancel_requested).insert(name.to_string());
        Ok(self.replay_info(&rec))
    }

    /// Waits until a replay has reached a final state.
    pub async fn await_replay(&self, name: &str) -> Result<ReplayInfo> {
        let mut progress = self.inner.progress.subscribe();
        loop {
            progress.borrow_and_update();
            let info = self.describe_replay(name)?;
            if info.state.is_final() {
                return Ok(info);
            }
            if progress.changed().await.is_err() {
                return Err(Error::ShuttingDown);
            }
        }
    }

    fn spawn_replay(&self, name: String) {
        let inner = Arc::downgrade(&self.inner);
        let handle = tokio::spawn(async move {
            if let Err(e) = run_replay(inner, &name).await {
                tracing::error!(replay = %name, error = %e, "replay failed");
            }
        });
        lock(&self.inner.loops).push(handle);
    }

    // ---- connections and API destinations ----------------------------------------------------

    fn connection_info(&self, c: &ConnectionRecord) -> ConnectionInfo {
        ConnectionInfo {
            name: c.name.clone(),
            arn: self.arn(&format!("connection/{}/{}", c.name, c.id)),
            description: c.description.clone(),
            authorization_type: c.auth.authorization_type(),
            state: "AUTHORIZED",
            created_ms: c.created_ms,
        }
    }

    pub async fn create_connection(
        &self,
        name: &str,
        description: Option<String>,
        auth: ConnectionAuth,
    ) -> Result<ConnectionInfo> {
        check_name("name", name, 64)?;
        let _admin = self.inner.admin.lock().await;
        if read(&self.inner.state).connections.contains_key(name) {
            return Err(Error::ResourceAlreadyExists(format!(
                "Connection {name} already exists."
            )));
        }
        let rec = ConnectionRecord {
            name: name.to_string(),
            id: self.inner.engine.config().ids.new_id(),
            description,
            auth,
            created_ms: self.inner.now(),
        };
        let mut w = WriteSet::default();
        w.put_connection(&rec);
        self.inner.commit(w).await?;
        write(&self.inner.state)
            .connections
            .insert(rec.name.clone(), rec.clone());
        Ok(self.connection_info(&rec))
    }

    pub fn describe_connection(&self, name: &str) -> Result<ConnectionInfo> {
        read(&self.inner.state)
            .connections
            .get(name)
            .map(|c| self.connection_info(c))
            .ok_or_else(|| Error::ResourceNotFound(format!("Connection '{name}' does not exist.")))
    }

    pub fn list_connections(&self, page: PageRequest) -> Result<Page<ConnectionInfo>> {
        let st = read(&self.inner.state);
        let items = st.connections.values().map(|c| self.connection_info(c));
        paginate(items, |c| c.name.clone(), page)
    }

    pub async fn delete_connection(&self, name: &str) -> Result<()> {
        let _admin = self.inner.admin.lock().await;
        if !read(&self.inner.state).connections.contains_key(name) {
            return Err(Error::ResourceNotFound(format!(
                "Connection '{name}' does not exist."
            )));
        }
        let mut w = WriteSet::default();
        w.delete_connection(name);
        self.inner.commit(w).await?;
        write(&self.inner.state).connections.remove(name);
        Ok(())
    }

    fn destination_info(&self, d: &ApiDestinationRecord) -> ApiDestinationInfo {
        let st = read(&self.inner.state);
        let connection_arn = st
            .connections
            .get(&d.connection)
            .map(|c| self.connection_info(c).arn)
            .unwrap_or_else(|| self.arn(&format!("connection/{}", d.connection)));
        ApiDestinationInfo {
            name: d.name.clone(),
            arn: self.arn(&format!("api-destination/{}/{}", d.name, d.id)),
            description: d.description.clone(),
            connection_arn,
            invocation_endpoint: d.endpoint.clone(),
            http_method: d.method.clone(),
            invocation_rate_limit_per_second: d.rate_limit_per_second,
            state: "ACTIVE",
            created_ms: d.created_ms,
        }
    }

    pub async fn create_api_destination(
        &self,
        req: CreateApiDestination,
    ) -> Result<ApiDestinationInfo> {
        check_name("name", &req.name, 64)?;
        let method = req.http_method.to_ascii_uppercase();
        if !["GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"].contains(&method.as_str())
        {
            return Err(validation(format!(
                "Parameter HttpMethod '{}' is not valid.",
                req.http_method
            )));
        }
        if !(req.invocation_endpoint.starts_with("http://")
            || req.invocation_endpoint.starts_with("https://"))
        {
            return Err(validation(
                "Parameter InvocationEndpoint is not valid: it must be an http(s) URL.",
            ));
        }
        let rate = req.invocation_rate_limit_per_second.unwrap_or(300);
        if rate == 0 {
            return Err(validation(
                "Parameter InvocationRateLimitPerSecond is at least 1.",
            ));
        }
        let connection = req
            .connection_arn
            .rsplit(":connection/")
            .next()
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        let _admin = self.inner.admin.lock().await;
        {
            let st = read(&self.inner.state);
            if !st.connections.contains_key(&connection) {
                return Err(Error::ResourceNotFound(format!(
                    "Connection '{}' does not exist.",
                    req.connection_arn
                )));
            }
            if st.destinations.contains_key(&req.name) {
                return Err(Error::ResourceAlreadyExists(format!(
                    "An api-destination '{}' already exists.",
                    req.name
                )));
            }
        }
        let rec = ApiDestinationRecord {
            name: req.name.clone(),
            id: self.inner.engine.config().ids.new_id(),
            description: req.description,
            connection,
            endpoint: req.invocation_endpoint,
            method,
            rate_limit_per_second: rate,
            created_ms: self.inner.now(),
        };
        let mut w = WriteSet::default();
        w.put_api_destination(&rec);
        self.inner.commit(w).await?;
        write(&self.inner.state)
            .destinations
            .insert(rec.name.clone(), rec.clone());
        Ok(self.destination_info(&rec))
    }

    pub fn describe_api_destination(&self, name: &str) -> Result<ApiDestinationInfo> {
        let rec = read(&self.inner.state).destinations.get(name).cloned();
        rec.map(|d| self.destination_info(&d)).ok_or_else(|| {
            Error::ResourceNotFound(format!("Failed to describe the api-destination(s). An api-destination '{name}' does not exist."))
        })
    }

    pub fn list_api_destinations(&self, page: PageRequest) -> Result<Page<ApiDestinationInfo>> {
        let recs: Vec<ApiDestinationRecord> = read(&self.inner.state)
            .destinations
            .values()
            .cloned()
            .collect();
        let items = recs.iter().map(|d| self.destination_info(d));
        paginate(items, |d| d.name.clone(), page)
    }

    pub async fn delete_api_destination(&self, name: &str) -> Result<()> {
        let _admin = self.inner.admin.lock().await;
        if !read(&self.inner.state).destinations.contains_key(name) {
            return Err(Error::ResourceNotFound(format!(
                "An api-destination '{name}' does not exist."
            )));
        }
        let mut w = WriteSet::default();
        w.delete_api_destination(name);
        self.inner.commit(w).await?;
        write(&self.inner.state).destinations.remove(name);
        Ok(())
    }
}

fn bus_not_found(name: &str) -> Error {
    Error::ResourceNotFound(format!("Event bus {name} does not exist."))
}

fn archive_not_found(name: &str) -> Error {
    Error::ResourceNotFound(format!("Archive {name} does not exist."))
}

fn entry_size(e: &PutEventsEntry) -> usize {
    e.source.as_deref().map_or(0, str::len)
        + e.detail_type.as_deref().map_or(0, str::len)
        + e.detail.as_deref().map_or(0, str::len)
        + e.resources.iter().map(String::len).sum::<usize>()
        + if e.time_ms.is_some() { 14 } else { 0 }
}

fn compile_target(target: Target) -> std::result::Result<CompiledTarget, String> {
    let input_path = match &target.input_path {
        Some(p) => Some(
            stepyard_statelang::Path::parse(p)
                .map_err(|e| format!("Parameter InputPath '{p}' is not valid: {}", e.0))
                .and_then(|path| match path.root_kind() {
                    // `$name` is a workflow variable in ASL; an event has none.
                    stepyard_statelang::Root::Input => Ok(path),
                    _ => Err(format!(
                        "Parameter InputPath '{p}' is not valid: it must start with '$.' or be '$'"
                    )),
                })?,
        ),
        None => None,
    };
    let transformer = match &target.input_transformer {
        Some(t) => Some(
            InputTransformer::new(&t.input_paths_map, &t.input_template)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    Ok(CompiledTarget {
        target,
        input_path,
        transformer,
    })
}

/// Rebuilds one rule's entries in the pattern index and the compiled targets.
fn reindex(st: &mut State, key: &(String, String)) -> Result<()> {
    let (bus, name) = key;
    let rule = st.rules.get(key).cloned();
    let index = st.indexes.entry(bus.clone()).or_default();
    index.remove(name);
    st.targets.remove(key);
    let Some(rule) = rule else {
        return Ok(());
    };
    if rule.state == RuleState::Enabled
        && let Some(p) = &rule.event_pattern
    {
        let pattern = EventPattern::parse(p).map_err(|e| Error::Corrupt(format!("rule: {e}")))?;
        index.insert(name.clone(), pattern);
    }
    let compiled = rule
        .targets
        .iter()
        .filter_map(|t| compile_target(t.clone()).ok())
        .collect();
    st.targets.insert(key.clone(), Arc::new(compiled));
    Ok(())
}

/// Pages a sorted sequence by its key: the token is the last key of the page.
fn paginate<T>(
    items: impl Iterator<Item = T>,
    key: impl Fn(&T) -> String,
    page: PageRequest,
) -> Result<Page<T>> {
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
    Ok(Page {
        items: out,
        next_token,
    })
}

impl Inner {
    fn now(&self) -> u64 {
        self.engine.config().clock.now_ms()
    }

    fn rule_arn(&self, bus: &str, rule: &str) -> String {
        let c = self.engine.config();
        if bus == DEFAULT_BUS {
            format!("arn:aws:events:{}:{}:rule/{rule}", c.region, c.account)
        } else {
            format!(
                "arn:aws:events:{}:{}:rule/{bus}/{rule}",
                c.region, c.account
            )
        }
    }

    async fn commit(&self, w: WriteSet) -> Result<()> {
        self.committer.submit(w).wait().await
    }

    fn tick(&self) {
        self.progress.send_modify(|n| *n += 1);
    }

    fn put_rule_writes(&self, w: &mut WriteSet, rec: &RuleRecord) {
        w.put_rule(rec);
        if let Some(due) = rec.next_fire_ms {
            w.put_schedule(&ScheduleRecord {
                due_ms: due,
                bus: rec.bus.clone(),
                rule: rec.name.clone(),
            });
        }
    }

    /// Checks one PutEvents entry and wraps it in EventBridge's envelope.
    fn envelope(
        &self,
        st: &State,
        e: PutEventsEntry,
        now: u64,
    ) -> std::result::Result<(String, Value, String), (&'static str, String)> {
        let invalid = |field: &str| {
            (
                "InvalidArgument",
                format!("Parameter {field} is not valid. Reason: {field} is a required argument."),
            )
        };
        let source = e
            .source
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("Source"))?;
        let detail_type = e
            .detail_type
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("DetailType"))?;
        let detail_text = e.detail.ok_or_else(|| invalid("Detail"))?;
        let detail: Value = match serde_json::from_str(&detail_text) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(("MalformedDetail", "Detail is malformed.".into())),
        };
        if source.starts_with("aws.") {
            return Err((
                "NotAuthorizedForSourceException",
                format!("Not authorized for the source {source}."),
            ));
        }
        let bus = match e.event_bus_name.as_deref() {
            None | Some("") => DEFAULT_BUS.to_string(),
            Some(b) => Bus::bus_name(b).map_err(|err| ("InvalidArgument", err.to_string()))?,
        };
        if !st.buses.contains_key(&bus) {
            return Err((
                "ResourceNotFoundException",
                format!("Event bus {bus} does not exist."),
            ));
        }
        let id = self.engine.config().ids.new_id();
        let c = self.engine.config();
        let event = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": c.account,
            "time": iso(e.time_ms.unwrap_or(now)),
            "region": c.region,
            "resources": e.resources,
            "detail": detail,
        });
        Ok((bus, event, id))
    }

    /// Writes a delivery per target of every rule on `bus` that matches `event`. With `only`,
    /// just the rules whose ARNs it lists (a replay's FilterArns; empty means all).
    fn route(
        &self,
        st: &State,
        bus: &str,
        event: &Value,
        now: u64,
        only: Option<&[String]>,
        w: &mut WriteSet,
    ) -> Result<usize> {
        let Some(index) = st.indexes.get(bus) else {
            return Ok(0);
        };
        let mut n = 0;
        for rule in index.matching(event) {
            let rule_arn = self.rule_arn(bus, &rule);
            if let Some(only) = only
                && !only.is_empty()
                && !only.contains(&rule_arn)
            {
                continue;
            }
            let Some(targets) = st.targets.get(&(bus.to_string(), rule.clone())) else {
                continue;
            };
            for t in targets.iter() {
                self.enqueue(&rule_arn, &rule, t, event, now, w)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn enqueue(
        &self,
        rule_arn: &str,
        rule_name: &str,
        t: &CompiledTarget,
        event: &Value,
        now: u64,
        w: &mut WriteSet,
    ) -> Result<()> {
        let ingestion = iso(now);
        let input = if let Some(text) = &t.target.input {
            Ok(text.clone())
        } else if let Some(path) = &t.input_path {
            Ok(path
                .select(
                    event,
                    &stepyard_statelang::Scope::context_only(&Value::Null),
                )
                .map(|v| v.to_string())
                .unwrap_or_else(|| "null".into()))
        } else if let Some(tr) = &t.transformer {
            tr.apply(
                event,
                &Reserved {
                    rule_arn,
                    rule_name,
                    ingestion_time: &ingestion,
                },
            )
            .map_err(|e| e.to_string())
        } else {
            Ok(event.to_string())
        };
        let mut d = DeliveryRecord {
            id: self.engine.config().ids.new_id(),
            due_ms: now,
            event: event.clone(),
            rule_arn: rule_arn.to_string(),
            target: t.target.clone(),
            input: String::new(),
            attempts: 0,
            ingested_ms: now,
            last_error: None,
        };
        match input {
            Ok(text) => {
                d.input = text;
                w.put_delivery(&d);
            }
            Err(message) => {
                w.put_dead_letter(&DeadLetterRecord {
                    seq: self.store.next_seq()?,
                    delivery: d,
                    error_code: "INPUT_TRANSFORMATION_FAILED".into(),
                    error_message: message,
                    dead_lettered_ms: now,
                });
            }
        }
        Ok(())
    }

    /// Archive entries for every archive of `bus` whose pattern the event matches. Replayed
    /// events are not archived again.
    fn archive(
        &self,
        st: &State,
        bus: &str,
        event: &Value,
        now: u64,
        w: &mut WriteSet,
    ) -> Result<()> {
        if event.get("replay-name").is_some() {
            return Ok(());
        }
        for (a, pattern) in st.archives.values() {
            if a.bus == bus && pattern.as_ref().is_none_or(|p| p.matches(event)) {
                w.put_archived(&a.name, now, self.store.next_seq()?, event);
            }
        }
        Ok(())
    }

    /// Fires a scheduled rule: an `aws.events` "Scheduled Event" to each target, and the next
    /// firing armed, in one commit.
    async fn fire_schedule(&self, s: ScheduleRecord) -> Result<()> {
        let _admin = self.admin.lock().await;
        let now = self.now();
        let mut w = WriteSet::default();
        w.delete_schedule(s.due_ms, &s.bus, &s.rule);
        let key = (s.bus.clone(), s.rule.clone());
        let updated = {
            let st = read(&self.state);
            match st.rules.get(&key) {
                Some(rule)
                    if rule.state == RuleState::Enabled && rule.next_fire_ms == Some(s.due_ms) =>
                {
                    let rule_arn = self.rule_arn(&s.bus, &s.rule);
                    let c = self.engine.config();
                    let event = json!({
                        "version": "0",
                        "id": c.ids.new_id(),
                        "detail-type": "Scheduled Event",
                        "source": "aws.events",
                        "account": c.account,
                        "time": iso(s.due_ms),
                        "region": c.region,
                        "resources": [rule_arn],
                        "detail": {},
                    });
                    if let Some(targets) = st.targets.get(&key) {
                        for t in targets.iter() {
                            self.enqueue(&rule_arn, &s.rule, t, &event, now, &mut w)?;
                        }
                    }
                    let mut rule = rule.clone();
                    let schedule = rule
                        .schedule_expression
                        .as_deref()
                        .and_then(|e| Schedule::parse(e).ok());
                    // Missed firings while the server was down collapse into this one.
                    rule.next_fire_ms =
                        schedule.and_then(|sc| sc.next_after(rule.anchor_ms, now.max(s.due_ms)));
                    self.put_rule_writes(&mut w, &rule);
                    Some(rule)
                }
                _ => None,
            }
        };
        self.commit(w).await?;
        if let Some(rule) = updated {
            write(&self.state).rules.insert(key, rule);
        }
        Ok(())
    }

    /// One attempt of one delivery, then its outcome committed.
    async fn attempt(self: &Arc<Self>, d: DeliveryRecord) -> Result<()> {
        let outcome = self.deliver(&d).await;
        let now = self.now();
        let mut w = WriteSet::default();
        w.delete_delivery(d.due_ms, &d.id);
        match outcome {
            Ok(Delivered::Done) => {}
            Ok(Delivered::Deferred(until)) => {
                let mut next = d.clone();
                next.due_ms = until.max(now);
                w.put_delivery(&next);
            }
            Err(e) => {
                let attempts = d.attempts + 1;
                let policy = d.target.retry_policy.unwrap_or_default();
                let base = self
                    .config
                    .first_retry_delay_ms
                    .saturating_mul(1u64 << (attempts - 1).min(30))
                    .min(self.config.max_retry_delay_ms);
                let next_due = now + (base as f64 * jitter(&d.id, attempts)) as u64;
                let too_old = next_due.saturating_sub(d.ingested_ms)
                    > policy.maximum_event_age_seconds as u64 * 1000;
                if e.retryable && attempts <= policy.maximum_retry_attempts && !too_old {
                    tracing::debug!(delivery = %d.id, target = %d.target.arn, attempts, error = %e.message, "delivery failed; retrying");
                    let mut next = d.clone();
                    next.attempts = attempts;
                    next.due_ms = next_due;
                    next.last_error = Some((e.code.clone(), e.message.clone()));
                    w.put_delivery(&next);
                } else {
                    tracing::warn!(delivery = %d.id, target = %d.target.arn, attempts, error = %e.message, "delivery dead-lettered");
                    let mut dead = d.clone();
                    dead.attempts = attempts;
                    w.put_dead_letter(&DeadLetterRecord {
                        seq: self.store.next_seq()?,
                        delivery: dead,
                        error_code: if e.retryable && too_old {
                            "MAXIMUM_EVENT_AGE_EXCEEDED".into()
                        } else if e.retryable {
                            "RETRY_ATTEMPTS_EXHAUSTED".into()
                        } else {
                            e.code.clone()
                        },
                        error_message: format!("{}: {}", e.code, e.message),
                        dead_lettered_ms: now,
                    });
                }
            }
        }
        self.commit(w).await
    }

    async fn deliver(
        self: &Arc<Self>,
        d: &DeliveryRecord,
    ) -> std::result::Result<Delivered, DeliveryError> {
        match classify(&d.target.arn) {
            TargetKind::StateMachine => {
                // EventBridge sends JSON; a template that made plain text arrives as a JSON string.
                let input = match serde_json::from_str::<Value>(&d.input) {
                    Ok(_) => d.input.clone(),
                    Err(_) => Value::String(d.input.clone()).to_string(),
                };
                let started = self
                    .engine
                    .start_execution(StartExecution {
                        state_machine_arn: d.target.arn.clone(),
                        name: Some(d.id.clone()),
                        input: Some(input),
                    })
                    .await;
                match started {
                    Ok(_) | Err(Error::ExecutionAlreadyExists(_)) => Ok(Delivered::Done),
                    Err(
                        e @ (Error::StateMachineDoesNotExist(_)
                        | Error::StateMachineDeleting(_)
                        | Error::InvalidArn(_)
                        | Error::InvalidExecutionInput(_)
                        | Error::DataLimitExceeded(_)),
                    ) => Err(DeliveryError::permanent("SDK_CLIENT_ERROR", e.to_string())),
                    Err(e) => Err(DeliveryError::retryable("SDK_CLIENT_ERROR", e.to_string())),
                }
            }
            TargetKind::Function(name) => {
                let Some(worker) = self.engine.worker_for(&d.target.arn, Some(name)) else {
                    return Err(DeliveryError::permanent(
                        "RESOURCE_NOT_FOUND",
                        format!("Function not found: {}", d.target.arn),
                    ));
                };
                let input = serde_json::from_str::<Value>(&d.input)
                    .unwrap_or_else(|_| Value::String(d.input.clone()));
                let request = TaskRequest {
                    resource: d.target.arn.clone(),
                    function_name: Some(name.to_string()),
                    input,
                    invocation_id: d.id.clone(),
                    task_token: None,
                    timeout: None,
                    heartbeat: None,
                    execution_arn: String::new(),
                    state_name: String::new(),
                    attempt: d.attempts,
                };
                match worker.invoke(request).await {
                    Ok(_) => Ok(Delivered::Done),
                    // Lambda's own failures to run the function are worth another attempt; a
                    // handler that ran and raised has had the event (asynchronous invocation).
                    Err(e) if e.error == "Lambda.ResourceNotFoundException" => {
                        Err(DeliveryError::permanent(
                            "RESOURCE_NOT_FOUND",
                            format!("{}: {}", e.error, e.cause),
                        ))
                    }
                    Err(e) if e.error.starts_with("Lambda.") => Err(DeliveryError::retryable(
                        "SDK_CLIENT_ERROR",
                        format!("{}: {}", e.error, e.cause),
                    )),
                    Err(e) => {
                        tracing::info!(delivery = %d.id, function = name, error = %e.error, "function target raised an error");
                        Ok(Delivered::Done)
                    }
                }
            }
            TargetKind::Bus(name) => {
                let now = self.now();
                let mut w = WriteSet::default();
                {
                    let st = read(&self.state);
                    if !st.buses.contains_key(name) {
                        return Err(DeliveryError::permanent(
                            "RESOURCE_NOT_FOUND",
                            format!("Event bus {name} does not exist."),
                        ));
                    }
                    let event = serde_json::from_str::<Value>(&d.input)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| d.event.clone());
                    self.route(&st, name, &event, now, None, &mut w)
                        .and_then(|_| self.archive(&st, name, &event, now, &mut w))
                        .map_err(|e| DeliveryError::retryable("INTERNAL", e.to_string()))?;
                }
                self.commit(w)
                    .await
                    .map_err(|e| DeliveryError::retryable("INTERNAL", e.to_string()))?;
                Ok(Delivered::Done)
            }
            TargetKind::ApiDestination(name) => self.call_api_destination(name, d).await,
            TargetKind::Other => {
                let invoker = read(&self.invokers)
                    .iter()
                    .find(|(prefix, _)| d.target.arn.starts_with(prefix.as_str()))
                    .map(|(_, i)| i.clone());
                // Retried, not final: right after a restart the bus delivers before every
                // target kind (topics) has registered.
                let Some(invoker) = invoker else {
                    return Err(DeliveryError::retryable(
                        "RESOURCE_NOT_FOUND",
                        format!("no target kind serves the ARN {}", d.target.arn),
                    ));
                };
                invoker
                    .deliver(TargetCall {
                        target_arn: d.target.arn.clone(),
                        input: d.input.clone(),
                        delivery_id: d.id.clone(),
                        rule_arn: d.rule_arn.clone(),
                        event: d.event.clone(),
                        attempt: d.attempts,
                    })
                    .await
                    .map(|_| Delivered::Done)
            }
        }
    }

    async fn call_api_destination(
        &self,
        name: &str,
        d: &DeliveryRecord,
    ) -> std::result::Result<Delivered, DeliveryError> {
        let (dest, conn) = {
            let st = read(&self.state);
            let Some(dest) = st.destinations.get(name).cloned() else {
                return Err(DeliveryError::permanent(
                    "RESOURCE_NOT_FOUND",
                    format!("API destination {name} does not exist."),
                ));
            };
            let conn = st.connections.get(&dest.connection).cloned();
            (dest, conn)
        };
        let Some(http) = &self.config.http else {
            return Err(DeliveryError::retryable(
                "SDK_CLIENT_ERROR",
                "this server has no HTTP client for API destinations",
            ));
        };
        // Rate limit: one request per 1/rate seconds; a delivery over the limit waits for its
        // slot without counting as an attempt.
        let now = self.now();
        {
            let mut slots = lock(&self.next_slot);
            let slot = slots.entry(name.to_string()).or_insert(0);
            if *slot > now {
                return Ok(Delivered::Deferred(*slot));
            }
            *slot = now + (1000 / dest.rate_limit_per_second.max(1) as u64).max(1);
        }
        let params = d.target.http_parameters.clone().unwrap_or_default();
        let mut url = dest.endpoint.clone();
        for value in &params.path_parameter_values {
            if let Some(i) = url.find('*') {
                url.replace_range(i..i + 1, value);
            }
        }
        if !params.query_string_parameters.is_empty() {
            let query: Vec<String> = params
                .query_string_parameters
                .iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect();
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        let mut headers = vec![(
            "content-type".to_string(),
            "application/json; charset=utf-8".to_string(),
        )];
        headers.extend(params.header_parameters.iter().cloned());
        match conn.map(|c| c.auth) {
            Some(ConnectionAuth::ApiKey { name, value }) => headers.push((name, value)),
            Some(ConnectionAuth::Basic { username, password }) => {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                headers.push(("authorization".into(), format!("Basic {token}")));
            }
            None => {}
        }
        let call = HttpCall {
            method: dest.method.clone(),
            url,
            headers,
            body: d.input.clone(),
        };
        match http.send(call).await {
            Ok(status) if (200..300).contains(&status) => Ok(Delivered::Done),
            // EventBridge retries 401, 407, 409, 429 and 5xx; other answers are final.
            Ok(status) if matches!(status, 401 | 407 | 409 | 429) || status >= 500 => {
                Err(DeliveryError::retryable(
                    "SDK_CLIENT_ERROR",
                    format!("the endpoint answered HTTP {status}"),
                ))
            }
            Ok(status) => Err(DeliveryError::permanent(
                "SDK_CLIENT_ERROR",
                format!("the endpoint answered HTTP {status}"),
            )),
            Err(e) => Err(DeliveryError::retryable("SDK_CLIENT_ERROR", e)),
        }
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

enum Delivered {
    Done,
    /// Not attempted yet (rate limit): due again at this time, attempts unchanged.
    Deferred(u64),
}

/// Fires due schedules, starts due deliveries (bounded), and sleeps on the injected clock until
/// the next due time or a wake-up.
async fn delivery_loop(bus: Weak<Inner>) {
    let mut next_purge = 0u64;
    loop {
        let Some(inner) = bus.upgrade() else {
            return;
        };
        let mut shutdown = inner.shutdown.subscribe();
        if *shutdown.borrow() {
            return;
        }
        let now = inner.now();
        match inner.store.due_schedules(now) {
            Ok(due) => {
                for s in due {
                    if let Err(e) = inner.fire_schedule(s).await {
                        tracing::error!(error = %e, "scheduled rule failed to fire");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading schedules failed"),
        }
        if now >= next_purge {
            next_purge = now + 3_600_000;
            let handle = Bus {
                inner: inner.clone(),
            };
            if let Err(e) = handle.purge_archives().await {
                tracing::error!(error = %e, "archive retention sweep failed");
            }
        }
        let due = inner.store.due_deliveries(now, 1024).unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading deliveries failed");
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
            let d = inner.store.next_delivery_due(&skip).ok().flatten();
            let s = inner.store.next_schedule_due().ok().flatten();
            [d, s, Some(next_purge)].into_iter().flatten().min()
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

/// Replays an archive window chunk by chunk; each chunk's deliveries and the replay's cursor
/// are one commit, so a restart resumes after the last chunk.
async fn run_replay(bus: Weak<Inner>, name: &str) -> Result<()> {
    loop {
        let Some(inner) = bus.upgrade() else {
            return Ok(());
        };
        let _admin = inner.admin.lock().await;
        let Some(mut rec) = inner.store.replay(name)? else {
            return Ok(());
        };
        if rec.state.is_final() {
            return Ok(());
        }
        let now = inner.now();
        let mut w = WriteSet::default();
        if rec.state == ReplayState::Cancelling || lock(&inner.cancel_requested).remove(name) {
            rec.state = ReplayState::Cancelled;
            rec.replay_end_ms = Some(now);
            w.put_replay(&rec);
            inner.commit(w).await?;
            inner.tick();
            return Ok(());
        }
        let batch = inner.store.archived(
            &rec.archive,
            rec.cursor.as_deref(),
            rec.event_start_ms,
            rec.event_end_ms,
            100,
        )?;
        if batch.is_empty() {
            rec.state = ReplayState::Completed;
            rec.replay_end_ms = Some(now);
        } else {
            rec.state = ReplayState::Running;
            let st = read(&inner.state);
            for (key, mut event) in batch {
                if let Some(obj) = event.as_object_mut() {
                    obj.insert("replay-name".into(), Value::String(name.to_string()));
                }
                inner.route(
                    &st,
                    &rec.destination_bus,
                    &event,
                    now,
                    Some(&rec.filter_arns),
                    &mut w,
                )?;
                rec.last_replayed_ms = key
                    .len()
                    .checked_sub(16)
                    .and_then(|i| key.get(i..i + 8))
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes);
                rec.cursor = Some(key);
                rec.events_replayed += 1;
            }
        }
        w.put_replay(&rec);
        inner.commit(w).await?;
        inner.wake.notify_one();
        inner.tick();
        if rec.state.is_final() {
            return Ok(());
        }
        drop(_admin);
        drop(inner);
        tokio::task::yield_now().await;
    }
}

/// `arn:aws:states:::events:putEvents` (and `.waitForTaskToken`) Task states: `Entries` as AWS
/// takes them, `Detail` as an object or JSON text.
#[async_trait]
impl TaskWorker for Bus {
    async fn invoke(&self, request: TaskRequest) -> std::result::Result<Value, TaskError> {
        let entries = request
            .input
            .get("Entries")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                TaskError::new(
                    "EventBridge.ValidationException",
                    "Parameters need an 'Entries' array",
                )
            })?;
        let mut list = Vec::new();
        for e in entries {
            let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            list.push(PutEventsEntry {
                source: text("Source"),
                detail_type: text("DetailType"),
                detail: match e.get("Detail") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v) => Some(v.to_string()),
                    None => None,
                },
                resources: e
                    .get("Resources")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                time_ms: None,
                event_bus_name: text("EventBusName"),
            });
        }
        let results = self
            .put_events(list)
            .await
            .map_err(|e| TaskError::new("EventBridge.ValidationException", e.to_string()))?;
        let failed = results.iter().filter(|r| r.error_code.is_some()).count();
        let entries: Vec<Value> = results
            .into_iter()
            .map(|r| match r.event_id {
                Some(id) => json!({"EventId": id}),
                None => json!({"ErrorCode": r.error_code, "ErrorMessage": r.error_message}),
            })
            .collect();
        if failed > 0 {
            return Err(TaskError::new(
                "EventBridge.FailedEntries",
                json!({"Entries": entries, "FailedEntryCount": failed}).to_string(),
            ));
        }
        Ok(json!({"Entries": entries, "FailedEntryCount": 0}))
    }
}
