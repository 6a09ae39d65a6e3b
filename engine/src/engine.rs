//! The engine handle and its long-lived loops: the group committer, the timer loop, dispatch.
//!
//! **Invariant:** every command goes through [`Inner::drive`]: under the execution's lock the
//! pure [`interp::apply`] computes the transition, its writes are queued to the committer (queue
//! order is commit order), and only after the commit is acknowledged are its effects run.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde_json::Value;
use stepyard_statelang::StateMachine;
use tokio::sync::{Notify, oneshot, watch};

use crate::arn::{self, ArnScope};
use crate::clock::{Clock, IdGenerator, SystemClock, UuidGenerator};
use crate::error::{Error, Result};
use crate::history::{HistoryEvent, HistoryEventType};
use crate::interp::{self, Command, Ctx, Effect};
use crate::model::*;
use crate::records::*;
use crate::store::{
    Committer, ExecutionStore, HistoryStore, PendingCommit, SledStore, StateMachineStore,
    TaskStore, TimerStore, WriteSet,
};
use crate::tags;
use crate::worker::{FnWorker, TaskError, TaskRequest, TaskWorker, WorkerMatch};

/// How to open an engine. `EngineConfig::new(data_dir)` gives the defaults.
#[derive(Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// Region in every ARN. Default `us-east-1`.
    pub region: String,
    /// Account in every ARN. Default `123456789012`.
    pub account: String,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub limits: Limits,
    /// Role ARN reported for state machines created without one.
    pub default_role_arn: String,
    /// Open without resuming: no timer fires and no resumed task is dispatched until
    /// [`Engine::start`]. A program that registers its workers after `open` sets this, so that
    /// a Wait that ends right after a restart does not dispatch to a worker not registered yet.
    pub start_paused: bool,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidGenerator),
            limits: Limits::default(),
            default_role_arn: "arn:aws:iam::123456789012:role/stepyard".into(),
            start_paused: false,
        }
    }
}

/// A running engine. Cheap to clone; every clone drives the same executions.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Definition {
    machine: StateMachine,
    uses_context: bool,
    metrics: MachineMetrics,
}

/// A state machine's Prometheus counters, registered on first use and kept with its parsed
/// definition: registering them (a label set built and looked up) for every transition cost
/// more than a Pass state. An embedding program installs its `metrics` recorder before it
/// opens the engine.
#[derive(Default)]
struct MachineMetrics {
    started: OnceLock<metrics::Counter>,
    transitions: OnceLock<metrics::Counter>,
    /// By `ExecutionStatus as usize`.
    finished: [OnceLock<metrics::Counter>; 6],
}

struct Cell {
    state: Mutex<CellState>,
}

struct CellState {
    rec: ExecutionRecord,
    def: Arc<Definition>,
    /// Bumped by every transition: eviction only removes a cell whose last transition is durable.
    version: u64,
    evicted: bool,
    durable: bool,
}

const SHARDS: usize = 64;

struct Inner {
    config: EngineConfig,
    scope: ArnScope,
    store: SledStore,
    committer: Committer,
    machines: RwLock<HashMap<String, StateMachineRecord>>,
    /// Parsed definitions by state machine, then revision.
    definitions: RwLock<HashMap<String, HashMap<String, Arc<Definition>>>>,
    cells: Vec<Mutex<HashMap<String, Arc<Cell>>>>,
    workers: RwLock<Vec<(WorkerMatch, Arc<dyn TaskWorker>)>>,
    functions: RwLock<HashMap<String, Arc<dyn TaskWorker>>>,
    /// Calls resumed at open that wait for their worker to be registered.
    orphans: Mutex<Vec<DispatchRecord>>,
    activities: Mutex<HashMap<String, ActivityRecord>>,
    activity_queues: Mutex<HashMap<String, VecDeque<ActivityQueueRecord>>>,
    activity_ready: Notify,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    /// When the timer loop next wakes up; 0 while it scans.
    timer_next: AtomicU64,
    timer_wake: Arc<Notify>,
    /// EXPRESS timers: (due, execution key, timer).
    mem_timers: Mutex<BTreeSet<(u64, String, u64)>>,
    /// Ticks after every commit, for waiting on history in tests and tools.
    progress: watch::Sender<u64>,
    shutting_down: AtomicBool,
    started: AtomicBool,
    shutdown_signal: watch::Sender<bool>,
    loops: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What starting an execution needs of its state machine.
struct StartTarget {
    name: String,
    kind: StateMachineType,
    revision_id: String,
    role_arn: String,
}

fn shard_of(key: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

fn exec_key(sm: &str, name: &str) -> String {
    format!("{sm}:{name}")
}

impl Engine {
    /// Opens (or creates) the data folder, then resumes every open execution: timers are
    /// re-armed from the store, scheduled tasks re-dispatched with their invocation ids,
    /// activity tasks queued again. A second process on the same folder gets
    /// [`Error::StoreLocked`].
    pub async fn open(config: EngineConfig) -> Result<Engine> {
        let store = open_store_retrying(&config.data_dir).await?;
        let (committer, committer_task) = Committer::start(store.clone());
        let scope = ArnScope {
            region: config.region.clone(),
            account: config.account.clone(),
        };
        let machines = store
            .state_machines()?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let activities = store
            .activities()?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let (progress, _) = watch::channel(0);
        let (shutdown_signal, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            config,
            scope,
            store,
            committer,
            machines: RwLock::new(machines),
            definitions: RwLock::new(HashMap::new()),
            cells: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            workers: RwLock::new(Vec::new()),
            functions: RwLock::new(HashMap::new()),
            orphans: Mutex::new(Vec::new()),
            activities: Mutex::new(activities),
            activity_queues: Mutex::new(HashMap::new()),
            activity_ready: Notify::new(),
            waiters: Mutex::new(HashMap::new()),
            timer_next: AtomicU64::new(0),
            timer_wake: Arc::new(Notify::new()),
            mem_timers: Mutex::new(BTreeSet::new()),
            progress,
            shutting_down: AtomicBool::new(false),
            started: AtomicBool::new(false),
            shutdown_signal,
            loops: Mutex::new(vec![committer_task]),
        });
        // Activity tasks not yet handed out.
        {
            let mut queues = lock(&inner.activity_queues);
            for entry in inner.store.activity_queue()? {
                queues
                    .entry(entry.activity.clone())
                    .or_default()
                    .push_back(entry);
            }
        }
        let paused = inner.config.start_paused;
        let engine = Engine { inner };
        if !paused {
            engine.start()?;
        }
        Ok(engine)
    }

    /// Resumes what the store holds: starts the timer loop and makes again every worker call
    /// that was scheduled but not answered, with the same invocation id (a call whose worker is
    /// not registered yet waits for it, see `register_worker`). `open` does this itself unless
    /// `start_paused`; a second call does nothing.
    pub fn start(&self) -> Result<()> {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let timer_loop = tokio::spawn(timer_loop(Arc::downgrade(&self.inner)));
        lock(&self.inner.loops).push(timer_loop);
        for d in self.inner.store.dispatches()? {
            self.inner.dispatch(d, true);
        }
        Ok(())
    }

    /// Stops the loops, flushes, and waits until the data folder can be opened again
    /// (the other clones of this handle must be dropped too).
    pub async fn shutdown(self) -> Result<()> {
        let inner = self.inner;
        inner.shutting_down.store(true, Ordering::SeqCst);
        inner.shutdown_signal.send_replace(true);
        inner.timer_wake.notify_one();
        inner.activity_ready.notify_waiters();
        let loops: Vec<_> = lock(&inner.loops).drain(..).collect();
        inner.store.flush().await?;
        let (first, rest) = loops
            .split_first()
            .map(|(a, b)| (Some(a), b))
            .unwrap_or((None, &[]));
        for handle in rest {
            handle.abort();
        }
        // The committer ends once the last handle (and its sender) is gone.
        let _ = first;
        // Spawned dispatches and answers hold the engine only for a moment; other handles the
        // caller still holds keep the folder open until they are dropped (not waited for).
        for _ in 0..20 {
            if Arc::strong_count(&inner) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(inner);
        Ok(())
    }

    /// How this engine was opened (clock, ids, region and account).
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Another tree of the engine's database with its own group committer, for a subsystem
    /// that lives beside the engine (the event bus, topics).
    pub(crate) fn sibling_store(&self, tree: &str) -> Result<(SledStore, Committer)> {
        let store = self.inner.store.sibling(tree)?;
        // Like the engine's own committer, it ends once the last sender is dropped.
        let (committer, _task) = Committer::start(store.clone());
        Ok((store, committer))
    }

    /// The worker that serves a Task resource (a closure function registered by name first,
    /// then the registered matchers), for deliveries outside executions (bus targets, topic
    /// subscriptions) that call the same functions Task states call.
    pub(crate) fn worker_for(
        &self,
        resource: &str,
        function_name: Option<&str>,
    ) -> Option<Arc<dyn TaskWorker>> {
        if let Some(name) = function_name
            && let Some(w) = read(&self.inner.functions).get(name)
        {
            return Some(w.clone());
        }
        read(&self.inner.workers)
            .iter()
            .find(|(m, _)| m.matches(resource))
            .map(|(_, w)| w.clone())
    }

    // ---- workers ---------------------------------------------------------------------------

    /// Serves Task resources that `matcher` accepts with `worker`. Later registrations win.
    ///
    /// Tasks resumed at open whose worker was not registered yet are dispatched now.
    pub fn register_worker(&self, matcher: impl Into<WorkerMatch>, worker: Arc<dyn TaskWorker>) {
        write(&self.inner.workers).insert(0, (matcher.into(), worker));
        self.inner.retry_orphans();
    }

    /// Serves the Lambda function `name` (both `arn:aws:lambda:..:function:NAME` and
    /// `arn:aws:states:::lambda:invoke` with `FunctionName: NAME`) with a closure.
    pub fn register_function<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.register_function_worker(name, Arc::new(FnWorker::new(f)));
    }

    /// Serves the Lambda function `name` with a worker.
    pub fn register_function_worker(&self, name: &str, worker: Arc<dyn TaskWorker>) {
        write(&self.inner.functions).insert(name.to_string(), worker);
        self.inner.retry_orphans();
    }

    // ---- state machines ----------------------------------------------------------------------

    pub async fn create_state_machine(&self, req: CreateStateMachine) -> Result<StateMachineInfo> {
        let inner = &self.inner;
        arn::validate_name(&req.name)?;
        inner.parse(&req.definition)?;
        let arn = inner.scope.state_machine(&req.name);
        let tags = tags::checked(req.tags, &arn)?;
        let now = inner.config.clock.now_ms();
        let role_arn = req
            .role_arn
            .clone()
            .unwrap_or_else(|| inner.config.default_role_arn.clone());
        let (record, pending) = {
            let mut machines = write(&inner.machines);
            if let Some(existing) = machines.get(&req.name) {
                if existing.definition == req.definition && existing.kind == req.kind {
                    return Ok(inner.sm_info(existing));
                }
                return Err(Error::StateMachineAlreadyExists(
                    inner.scope.state_machine(&req.name),
                ));
            }
            let record = StateMachineRecord {
                name: req.name.clone(),
                kind: req.kind,
                status: StateMachineStatus::Active,
                role_arn,
                created_ms: now,
                updated_ms: now,
                revision_id: inner.config.ids.new_id(),
                definition: req.definition,
                tags,
            };
            let pending = inner.queue_machine(&record)?;
            machines.insert(record.name.clone(), record.clone());
            (record, pending)
        };
        pending.wait().await?;
        Ok(inner.sm_info(&record))
    }

    /// Replaces the definition: a new revision. Running executions keep theirs.
    pub async fn update_state_machine(
        &self,
        state_machine_arn: &str,
        definition: String,
    ) -> Result<StateMachineInfo> {
        self.update_state_machine_with(state_machine_arn, Some(definition), None)
            .await
    }

    /// UpdateStateMachine with what AWS lets change: the definition, the role, or both. A change
    /// to either is a new revision (revisions record both); running executions keep theirs.
    pub async fn update_state_machine_with(
        &self,
        state_machine_arn: &str,
        definition: Option<String>,
        role_arn: Option<String>,
    ) -> Result<StateMachineInfo> {
        let inner = &self.inner;
        let name = arn::state_machine_name(state_machine_arn)?;
        if let Some(definition) = &definition {
            inner.parse(definition)?;
        }
        let (record, pending) = {
            let mut machines = write(&inner.machines);
            let record = machines
                .get_mut(&name)
                .ok_or_else(|| Error::StateMachineDoesNotExist(state_machine_arn.to_string()))?;
            let mut changed = false;
            if let Some(definition) = definition.filter(|d| *d != record.definition) {
                record.definition = definition;
                changed = true;
            }
            if let Some(role_arn) = role_arn.filter(|r| *r != record.role_arn) {
                record.role_arn = role_arn;
                changed = true;
            }
            if changed {
                record.revision_id = inner.config.ids.new_id();
                record.updated_ms = inner.config.clock.now_ms();
            }
            // Queued even when nothing changed: the reply then waits for any earlier write of
            // this record, so what it reports is durable.
            (record.clone(), inner.queue_machine(record)?)
        };
        pending.wait().await?;
        Ok(inner.sm_info(&record))
    }

    pub async fn describe_state_machine(
        &self,
        state_machine_arn: &str,
    ) -> Result<StateMachineInfo> {
        let name = arn::state_machine_name(state_machine_arn)?;
        let machines = read(&self.inner.machines);
        let record = machines
            .get(&name)
            .ok_or_else(|| Error::StateMachineDoesNotExist(state_machine_arn.to_string()))?;
        Ok(self.inner.sm_info(record))
    }

    /// State machines by name; `next_token` is the last name of the previous page.
    pub async fn list_state_machines(&self, page: PageRequest) -> Result<Page<StateMachineInfo>> {
        let machines = read(&self.inner.machines);
        let mut names: Vec<&String> = machines.keys().collect();
        names.sort();
        let after = page.next_token.clone().unwrap_or_default();
        let limit = page.limit();
        let rest: Vec<&String> = names
            .into_iter()
            .filter(|n| n.as_str() > after.as_str())
            .collect();
        let items: Vec<StateMachineInfo> = rest
            .iter()
            .take(limit)
            .map(|n| self.inner.sm_info(&machines[*n]))
            .collect();
        let next_token = (rest.len() > limit)
            .then(|| items.last().map(|i| i.name.clone()))
            .flatten();
        Ok(Page { items, next_token })
    }

    /// Deletes the state machine. Running executions go on with their revision.
    pub async fn delete_state_machine(&self, state_machine_arn: &str) -> Result<()> {
        let name = arn::state_machine_name(state_machine_arn)?;
        // Queued under the lock, like every change to the record (see `queue_machine`).
        let pending = {
            let mut machines = write(&self.inner.machines);
            if machines.remove(&name).is_none() {
                return Ok(());
            }
            let mut writes = WriteSet::default();
            writes.delete_state_machine(&name);
            self.inner.committer.submit(writes)
        };
        pending.wait().await
    }

    /// The revisions of a state machine, newest first; `next_token` is the last item's sequence
    /// number. Revisions left by a deleted state machine of the same name are not listed.
    pub async fn list_state_machine_revisions(
        &self,
        state_machine_arn: &str,
        page: PageRequest,
    ) -> Result<Page<StateMachineRevision>> {
        let revisions = self.inner.revisions(state_machine_arn)?;
        let before = match page.next_token.as_deref() {
            None => u64::MAX,
            Some(token) => token
                .parse::<u64>()
                .map_err(|_| Error::InvalidNextToken(token.to_string()))?,
        };
        let limit = page.limit();
        let rest: Vec<(u64, StateMachineRevision)> = revisions
            .into_iter()
            .filter(|(seq, _)| *seq < before)
            .collect();
        let next_token = (rest.len() > limit).then(|| rest[limit - 1].0.to_string());
        let items = rest.into_iter().take(limit).map(|(_, r)| r).collect();
        Ok(Page { items, next_token })
    }

    /// One revision of a state machine, current or not.
    pub async fn describe_state_machine_revision(
        &self,
        state_machine_arn: &str,
        revision_id: &str,
    ) -> Result<StateMachineRevision> {
        self.inner
            .revisions(state_machine_arn)?
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.revision_id == revision_id)
            .ok_or_else(|| {
                Error::StateMachineDoesNotExist(format!("{state_machine_arn}:{revision_id}"))
            })
    }

    /// The definition an execution runs (its revision, not necessarily the current one).
    pub async fn describe_state_machine_for_execution(
        &self,
        execution_arn: &str,
    ) -> Result<StateMachineInfo> {
        let rec = self.inner.load_record(execution_arn)?;
        let def = self
            .inner
            .store
            .definition(&rec.sm_name, &rec.revision_id)?
            .ok_or_else(|| Error::StateMachineDoesNotExist(rec.sm_arn.clone()))?;
        Ok(StateMachineInfo {
            arn: rec.sm_arn.clone(),
            name: rec.sm_name.clone(),
            definition: def.definition,
            kind: def.kind,
            status: StateMachineStatus::Active,
            role_arn: def.role_arn,
            creation_date_ms: rec.start_ms,
            revision_id: rec.revision_id.clone(),
            update_date_ms: rec.start_ms,
        })
    }

    // ---- executions --------------------------------------------------------------------------

    /// Starts an execution; returns once its start (and every state it could run without
    /// waiting) is durable. A repeat with the same name and input of a RUNNING execution
    /// returns that execution; otherwise a taken name is [`Error::ExecutionAlreadyExists`].
    /// On an EXPRESS state machine the execution runs in memory, not durably.
    pub async fn start_execution(&self, req: StartExecution) -> Result<ExecutionStarted> {
        let inner = &self.inner;
        inner.check_running()?;
        let (record, input_text) = inner.prepare_start(&req)?;
        if record.kind == StateMachineType::Express {
            let info = inner
                .clone()
                .start_express(record, req.name, input_text, false)
                .await?;
            return Ok(ExecutionStarted {
                execution_arn: info.execution_arn,
                start_date_ms: info.start_date_ms,
            });
        }
        let name = match &req.name {
            Some(n) => n.clone(),
            None => inner.config.ids.new_id(),
        };
        let key = exec_key(&record.name, &name);
        let def = inner.definition(&record.name, &record.revision_id)?;
        let (pending, effects, version, cell, started) = {
            let mut shard = lock(&inner.cells[shard_of(&key)]);
            // A name the engine just made up is new: skip the store lookup.
            let existing = match shard.get(&key) {
                Some(cell) => Some(lock(&cell.state).rec.clone()),
                None if req.name.is_some() => inner.store.execution(&key)?,
                None => None,
            };
            if let Some(rec) = existing {
                if rec.status == ExecutionStatus::Running
                    && rec.input == input_text
                    && rec.sm_name == record.name
                {
                    return Ok(ExecutionStarted {
                        execution_arn: rec.arn,
                        start_date_ms: rec.start_ms,
                    });
                }
                return Err(Error::ExecutionAlreadyExists(rec.arn));
            }
            let now = inner.config.clock.now_ms();
            let rec = ExecutionRecord {
                key: key.clone(),
                arn: inner.scope.execution(&record.name, &name),
                sm_name: record.name.clone(),
                sm_arn: inner.scope.state_machine(&record.name),
                revision_id: record.revision_id.clone(),
                role_arn: record.role_arn.clone(),
                name,
                input: input_text,
                status: ExecutionStatus::Running,
                output: None,
                error: None,
                cause: None,
                start_ms: now,
                stop_ms: None,
                redrive_count: 0,
                redrive_ms: None,
                seq: inner.store.next_seq()?,
                rt: Runtime::default(),
            };
            let started = ExecutionStarted {
                execution_arn: rec.arn.clone(),
                start_date_ms: now,
            };
            let cell = Arc::new(Cell {
                state: Mutex::new(CellState {
                    rec,
                    def,
                    version: 0,
                    evicted: false,
                    durable: true,
                }),
            });
            shard.insert(key.clone(), cell.clone());
            let mut state = lock(&cell.state);
            let (pending, effects) = inner.transition(&mut state, Command::Start, true);
            (pending, effects, state.version, cell.clone(), started)
        };
        pending.wait().await?;
        inner.after_commit(&key, &cell, version, effects);
        Ok(started)
    }

    /// Runs an EXPRESS execution in memory and answers with its end (StartSyncExecution).
    pub async fn start_sync_execution(&self, req: StartExecution) -> Result<ExecutionInfo> {
        let inner = &self.inner;
        inner.check_running()?;
        let (record, input_text) = inner.prepare_start(&req)?;
        if record.kind != StateMachineType::Express {
            return Err(Error::StateMachineTypeNotSupported(
                "StartSyncExecution is only for EXPRESS state machines".into(),
            ));
        }
        inner
            .clone()
            .start_express(record, req.name, input_text, true)
            .await
    }

    pub async fn describe_execution(&self, execution_arn: &str) -> Result<ExecutionInfo> {
        if arn::is_express_execution(execution_arn) {
            return self.inner.express_info(execution_arn);
        }
        let rec = self.inner.load_record(execution_arn)?;
        Ok(info_of(&rec))
    }

    /// Executions of a state machine, newest first, optionally by status.
    pub async fn list_executions(
        &self,
        filter: ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<ExecutionInfo>> {
        let inner = &self.inner;
        let sm = arn::state_machine_name(&filter.state_machine_arn)?;
        if !read(&inner.machines).contains_key(&sm) {
            return Err(Error::StateMachineDoesNotExist(
                filter.state_machine_arn.clone(),
            ));
        }
        let limit = page.limit();
        let mut before = match &page.next_token {
            Some(t) => Some(
                t.parse::<u64>()
                    .map_err(|_| Error::InvalidNextToken(t.clone()))?,
            ),
            None => None,
        };
        let mut items = Vec::new();
        loop {
            let keys = inner.store.executions_of(&sm, before, 256)?;
            if keys.is_empty() {
                return Ok(Page {
                    items,
                    next_token: None,
                });
            }
            for (seq, key) in keys {
                before = Some(seq);
                let Some(rec) = inner.store.execution(&key)? else {
                    continue;
                };
                if filter.status.is_none_or(|s| s == rec.status) {
                    items.push(info_of(&rec));
                    if items.len() == limit {
                        let more = !inner.store.executions_of(&sm, Some(seq), 1)?.is_empty();
                        return Ok(Page {
                            items,
                            next_token: more.then(|| seq.to_string()),
                        });
                    }
                }
            }
        }
    }

    /// Stops a RUNNING execution: ABORTED with the given error and cause.
    pub async fn stop_execution(
        &self,
        execution_arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<u64> {
        let key = self.inner.key_of(execution_arn)?;
        self.inner
            .drive(&key, Command::Stop { error, cause })
            .await?;
        let rec = self.inner.load_record(execution_arn)?;
        Ok(rec
            .stop_ms
            .unwrap_or_else(|| self.inner.config.clock.now_ms()))
    }

    /// Restarts a FAILED, TIMED_OUT or ABORTED execution from the state that did not succeed
    /// (for a failure inside a Parallel or Map, that whole state runs again).
    pub async fn redrive_execution(&self, execution_arn: &str) -> Result<u64> {
        let rec = self.inner.load_record(execution_arn)?;
        match rec.status {
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
                if rec.rt.redrive_from.is_some() => {}
            status => {
                return Err(Error::ExecutionNotRedrivable(format!(
                    "Execution is {}; only FAILED, TIMED_OUT and ABORTED executions can be redriven",
                    status.as_str()
                )));
            }
        }
        self.inner.drive(&rec.key, Command::Redrive).await?;
        let rec = self.inner.load_record(execution_arn)?;
        Ok(rec
            .redrive_ms
            .unwrap_or_else(|| self.inner.config.clock.now_ms()))
    }

    /// History events, oldest first (or newest first with `reverse_order`). `next_token` is an
    /// event id.
    pub async fn get_execution_history(
        &self,
        execution_arn: &str,
        page: PageRequest,
        reverse_order: bool,
    ) -> Result<Page<HistoryEvent>> {
        let rec = self.inner.load_record(execution_arn)?;
        let cursor = match &page.next_token {
            Some(t) => Some(
                t.parse::<u64>()
                    .map_err(|_| Error::InvalidNextToken(t.clone()))?,
            ),
            None => None,
        };
        let limit = page.limit();
        let mut items = self
            .inner
            .store
            .history(&rec.key, cursor, reverse_order, limit + 1)?;
        let next_token = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_token })
    }

    /// Waits until the execution is no longer RUNNING and describes it.
    pub async fn await_execution(&self, execution_arn: &str) -> Result<ExecutionInfo> {
        let key = self.inner.key_of(execution_arn)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.waiters)
            .entry(key.clone())
            .or_default()
            .push(tx);
        let info = self.describe_execution(execution_arn).await?;
        if info.status.is_closed() {
            // The store shows a write before it is flushed: make sure the end we read is on
            // disk, so "it ended" survives a crash right after this returns.
            if !arn::is_express_execution(execution_arn) {
                self.inner.store.flush().await?;
            }
            return Ok(info);
        }
        let _ = rx.await;
        self.describe_execution(execution_arn).await
    }

    /// Waits until the execution's history holds an event of `kind` (the first such event).
    pub async fn wait_for_history_event(
        &self,
        execution_arn: &str,
        kind: HistoryEventType,
    ) -> Result<HistoryEvent> {
        let mut progress = self.inner.progress.subscribe();
        loop {
            progress.borrow_and_update();
            let rec = self.inner.load_record(execution_arn)?;
            let mut cursor = None;
            loop {
                let events = self.inner.store.history(&rec.key, cursor, false, 1000)?;
                if let Some(e) = events.iter().find(|e| e.kind == kind) {
                    return Ok(e.clone());
                }
                match events.last() {
                    Some(e) => cursor = Some(e.id),
                    None => break,
                }
            }
            if progress.changed().await.is_err() {
                return Err(Error::ShuttingDown);
            }
        }
    }

    // ---- task tokens ---------------------------------------------------------------------------

    pub async fn send_task_success(&self, task_token: &str, output: &str) -> Result<()> {
        let value: Value =
            serde_json::from_str(output).map_err(|e| Error::InvalidOutput(e.to_string()))?;
        if output.len() > self.inner.config.limits.max_payload_bytes {
            return Err(Error::DataLimitExceeded(format!(
                "output is {} bytes",
                output.len()
            )));
        }
        self.inner.answer_token(task_token, Ok(value)).await
    }

    pub async fn send_task_failure(
        &self,
        task_token: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<()> {
        let error = TaskError::new(error.unwrap_or_default(), cause.unwrap_or_default());
        self.inner.answer_token(task_token, Err(error)).await
    }

    pub async fn send_task_heartbeat(&self, task_token: &str) -> Result<()> {
        let token = self.inner.token(task_token)?;
        self.inner
            .drive(
                &token.exec_key,
                Command::Heartbeat {
                    thread: token.thread,
                    invocation_id: token.invocation_id,
                },
            )
            .await
            .map(|_| ())
    }

    // ---- activities ----------------------------------------------------------------------------

    /// Creates an activity (idempotent for an existing name).
    pub async fn create_activity(&self, name: &str) -> Result<ActivityInfo> {
        self.create_activity_with_tags(name, Tags::new()).await
    }

    /// CreateActivity with tags; an activity that already exists is returned as it is, its tags
    /// unchanged (as AWS does).
    pub async fn create_activity_with_tags(&self, name: &str, tags: Tags) -> Result<ActivityInfo> {
        arn::validate_name(name)?;
        let tags = tags::checked(tags, &self.inner.scope.activity(name))?;
        let (record, pending) = {
            let mut activities = lock(&self.inner.activities);
            if let Some(existing) = activities.get(name) {
                return Ok(self.inner.activity_info(existing));
            }
            let record = ActivityRecord {
                name: name.to_string(),
                created_ms: self.inner.config.clock.now_ms(),
                tags,
            };
            // Queued under the lock, like every change to the record (see `retag`).
            let mut writes = WriteSet::default();
            writes.put_activity(&record);
            let pending = self.inner.committer.submit(writes);
            activities.insert(name.to_string(), record.clone());
            (record, pending)
        };
        pending.wait().await?;
        Ok(self.inner.activity_info(&record))
    }

    // ---- tags --------------------------------------------------------------------------------

    /// Adds tags to a state machine or an activity; a key it already has takes the new value.
    pub async fn tag_resource(&self, resource_arn: &str, added: Tags) -> Result<()> {
        self.retag(resource_arn, |current| {
            tags::merged(current, added, resource_arn)
        })
        .await
    }

    /// Removes tags by key from a state machine or an activity; a key it does not have is
    /// ignored.
    pub async fn untag_resource(&self, resource_arn: &str, keys: &[String]) -> Result<()> {
        self.retag(resource_arn, |current| tags::without(current, keys))
            .await
    }

    /// The tags of a state machine or an activity.
    pub async fn list_tags_for_resource(&self, resource_arn: &str) -> Result<Tags> {
        let not_found = || TaggedResource::not_found(resource_arn);
        match TaggedResource::of(resource_arn)? {
            TaggedResource::StateMachine(name) => read(&self.inner.machines)
                .get(&name)
                .map(|r| r.tags.clone())
                .ok_or_else(not_found),
            TaggedResource::Activity(name) => lock(&self.inner.activities)
                .get(&name)
                .map(|r| r.tags.clone())
                .ok_or_else(not_found),
        }
    }

    /// Replaces a resource's tags with `change(current)`. The write is queued under the
    /// resource's lock, so concurrent changes reach the store in the order they were made.
    async fn retag(
        &self,
        resource_arn: &str,
        change: impl FnOnce(&Tags) -> Result<Tags>,
    ) -> Result<()> {
        let inner = &self.inner;
        let not_found = || TaggedResource::not_found(resource_arn);
        let mut writes = WriteSet::default();
        // Each arm submits before its lock guard drops.
        let pending = match TaggedResource::of(resource_arn)? {
            TaggedResource::StateMachine(name) => {
                let mut machines = write(&inner.machines);
                let record = machines.get_mut(&name).ok_or_else(not_found)?;
                if !tags::apply(&mut record.tags, change)? {
                    return Ok(());
                }
                writes.put_state_machine(record);
                inner.committer.submit(writes)
            }
            TaggedResource::Activity(name) => {
                let mut activities = lock(&inner.activities);
                let record = activities.get_mut(&name).ok_or_else(not_found)?;
                if !tags::apply(&mut record.tags, change)? {
                    return Ok(());
                }
                writes.put_activity(record);
                inner.committer.submit(writes)
            }
        };
        pending.wait().await
    }

    pub async fn describe_activity(&self, activity_arn: &str) -> Result<ActivityInfo> {
        let name = arn::activity_name(activity_arn)
            .ok_or_else(|| Error::InvalidArn(activity_arn.to_string()))?;
        let activities = lock(&self.inner.activities);
        let record = activities
            .get(&name)
            .ok_or_else(|| Error::ActivityDoesNotExist(activity_arn.to_string()))?;
        Ok(self.inner.activity_info(record))
    }

    pub async fn list_activities(&self, page: PageRequest) -> Result<Page<ActivityInfo>> {
        let activities = lock(&self.inner.activities);
        let mut names: Vec<&String> = activities.keys().collect();
        names.sort();
        let after = page.next_token.clone().unwrap_or_default();
        let limit = page.limit();
        let rest: Vec<&String> = names
            .into_iter()
            .filter(|n| n.as_str() > after.as_str())
            .collect();
        let items: Vec<ActivityInfo> = rest
            .iter()
            .take(limit)
            .map(|n| self.inner.activity_info(&activities[*n]))
            .collect();
        let next_token = (rest.len() > limit)
            .then(|| items.last().map(|i| i.name.clone()))
            .flatten();
        Ok(Page { items, next_token })
    }

    pub async fn delete_activity(&self, activity_arn: &str) -> Result<()> {
        let name = arn::activity_name(activity_arn)
            .ok_or_else(|| Error::InvalidArn(activity_arn.to_string()))?;
        // Queued under the lock, like every change to the record (see `retag`).
        let pending = {
            let mut activities = lock(&self.inner.activities);
            if activities.remove(&name).is_none() {
                return Ok(());
            }
            let mut writes = WriteSet::default();
            writes.delete_activity(&name);
            self.inner.committer.submit(writes)
        };
        pending.wait().await
    }

    /// Long-polls for a task of the activity: `None` when none came within `wait` (capped by
    /// [`Limits::max_activity_wait`]).
    pub async fn get_activity_task(
        &self,
        activity_arn: &str,
        worker_name: Option<String>,
        wait: Duration,
    ) -> Result<Option<ActivityTask>> {
        let inner = &self.inner;
        let name = arn::activity_name(activity_arn)
            .ok_or_else(|| Error::InvalidArn(activity_arn.to_string()))?;
        if !lock(&inner.activities).contains_key(&name) {
            return Err(Error::ActivityDoesNotExist(activity_arn.to_string()));
        }
        let wait = wait.min(inner.config.limits.max_activity_wait);
        let deadline = inner.config.clock.now_ms() + wait.as_millis() as u64;
        let mut shutdown = inner.shutdown_signal.subscribe();
        loop {
            let notified = inner.activity_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = lock(&inner.activity_queues)
                .get_mut(&name)
                .and_then(|q| q.pop_front());
            if let Some(entry) = next {
                let command = Command::ActivityStarted {
                    thread: entry.thread,
                    invocation_id: entry.invocation_id.clone(),
                    worker_name: worker_name.clone().unwrap_or_default(),
                };
                match inner.drive(&entry.exec_key, command).await {
                    Ok(true) => {
                        return Ok(Some(ActivityTask {
                            task_token: entry.token,
                            input: entry.input,
                        }));
                    }
                    Ok(false) | Err(Error::ExecutionDoesNotExist(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            if inner.config.clock.now_ms() >= deadline || *shutdown.borrow_and_update() {
                return Ok(None);
            }
            tokio::select! {
                _ = notified => {}
                _ = inner.config.clock.sleep_until(deadline) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    // ---- introspection ---------------------------------------------------------------------------

    /// Bytes the data folder takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.store.size_on_disk()
    }

    /// The region and account ARNs carry.
    pub fn arn_of_state_machine(&self, name: &str) -> String {
        self.inner.scope.state_machine(name)
    }

    /// The ARN of an activity of this engine.
    pub fn arn_of_activity(&self, name: &str) -> String {
        self.inner.scope.activity(name)
    }
}

/// What a tag operation's ARN names: a state machine (a version or alias suffix is ignored, as
/// for the other state machine calls) or an activity.
enum TaggedResource {
    StateMachine(String),
    Activity(String),
}

impl TaggedResource {
    fn of(resource_arn: &str) -> Result<Self> {
        if let Some(name) = arn::activity_name(resource_arn) {
            return Ok(TaggedResource::Activity(name));
        }
        arn::state_machine_name(resource_arn).map(TaggedResource::StateMachine)
    }

    fn not_found(resource_arn: &str) -> Error {
        Error::ResourceNotFound(format!("Resource not found: '{resource_arn}'"))
    }
}

/// Prometheus counters for one transition (the `metrics` facade; `api` installs the recorder).
fn record_metrics(
    state: &CellState,
    before: ExecutionStatus,
    new_execution: bool,
    states_entered: u64,
) {
    let machine = &state.rec.sm_name;
    let counters = &state.def.metrics;
    if new_execution {
        counters
            .started
            .get_or_init(|| {
                metrics::counter!("stepyard_executions_started_total", "state_machine" => machine.clone())
            })
            .increment(1);
    }
    let after = state.rec.status;
    if after != before && after != ExecutionStatus::Running {
        counters.finished[after as usize]
            .get_or_init(|| {
                metrics::counter!(
                    "stepyard_executions_finished_total",
                    "state_machine" => machine.clone(),
                    "status" => after.as_str()
                )
            })
            .increment(1);
    }
    if states_entered > 0 {
        counters
            .transitions
            .get_or_init(|| {
                metrics::counter!("stepyard_state_transitions_total", "state_machine" => machine.clone())
            })
            .increment(states_entered);
    }
}

/// A low-cardinality label for a Task resource.
fn resource_kind(resource: &str) -> &'static str {
    if resource.starts_with("arn:aws:lambda:") {
        "lambda"
    } else if resource.starts_with("arn:aws:states:::ecs:") {
        "ecs"
    } else if resource.starts_with("arn:aws:states:::events:") {
        "events"
    } else if resource.starts_with("arn:aws:states:::sns:") {
        "sns"
    } else if resource.starts_with("arn:aws:states:::states:") {
        "states"
    } else if resource.contains(":activity:") {
        "activity"
    } else {
        "other"
    }
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

async fn open_store_retrying(path: &std::path::Path) -> Result<SledStore> {
    // A handle of this process that was just shut down may take a moment to release the lock.
    let mut tries = 0;
    loop {
        match SledStore::open(path) {
            Err(Error::StoreLocked { .. }) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}

fn info_of(rec: &ExecutionRecord) -> ExecutionInfo {
    let redrivable = matches!(
        rec.status,
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
    ) && rec.rt.redrive_from.is_some();
    ExecutionInfo {
        execution_arn: rec.arn.clone(),
        state_machine_arn: rec.sm_arn.clone(),
        name: rec.name.clone(),
        status: rec.status,
        input: rec.input.clone(),
        output: rec.output.clone(),
        error: rec.error.clone(),
        cause: rec.cause.clone(),
        start_date_ms: rec.start_ms,
        stop_date_ms: rec.stop_ms,
        redrive_count: rec.redrive_count,
        redrive_date_ms: rec.redrive_ms,
        redrive_status: if redrivable {
            "REDRIVABLE"
        } else {
            "NOT_REDRIVABLE"
        },
        redrive_status_reason: (!redrivable).then(|| match rec.status {
            ExecutionStatus::Running => "Execution is RUNNING and cannot be redriven".to_string(),
            ExecutionStatus::Succeeded => {
                "Execution is SUCCEEDED and cannot be redriven".to_string()
            }
            _ => "Execution cannot be redriven".to_string(),
        }),
        revision_id: rec.revision_id.clone(),
    }
}

impl Inner {
    fn check_running(&self) -> Result<()> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        Ok(())
    }

    fn parse(&self, definition: &str) -> Result<StateMachine> {
        if definition.len() > self.config.limits.max_definition_bytes {
            return Err(Error::DataLimitExceeded(format!(
                "the definition is {} bytes; the limit is {}",
                definition.len(),
                self.config.limits.max_definition_bytes
            )));
        }
        stepyard_statelang::parse(definition).map_err(Error::InvalidDefinition)
    }

    fn sm_info(&self, r: &StateMachineRecord) -> StateMachineInfo {
        StateMachineInfo {
            arn: self.scope.state_machine(&r.name),
            name: r.name.clone(),
            definition: r.definition.clone(),
            kind: r.kind,
            status: r.status,
            role_arn: r.role_arn.clone(),
            creation_date_ms: r.created_ms,
            revision_id: r.revision_id.clone(),
            update_date_ms: r.updated_ms,
        }
    }

    fn activity_info(&self, r: &ActivityRecord) -> ActivityInfo {
        ActivityInfo {
            arn: self.scope.activity(&r.name),
            name: r.name.clone(),
            creation_date_ms: r.created_ms,
        }
    }

    /// `(seq, revision)` of every revision of the live state machine, newest first.
    fn revisions(&self, state_machine_arn: &str) -> Result<Vec<(u64, StateMachineRevision)>> {
        let name = arn::state_machine_name(state_machine_arn)?;
        let (created_ms, current) = {
            let machines = read(&self.machines);
            let record = machines
                .get(&name)
                .ok_or_else(|| Error::StateMachineDoesNotExist(state_machine_arn.to_string()))?;
            (record.created_ms, record.revision_id.clone())
        };
        let sm_arn = self.scope.state_machine(&name);
        let mut revisions: Vec<(u64, StateMachineRevision)> = self
            .store
            .definitions(&name)?
            .into_iter()
            .filter(|(revision, r)| *revision == current || r.created_ms >= created_ms)
            .map(|(revision_id, r)| {
                let seq = r.seq;
                let revision = StateMachineRevision {
                    version_arn: format!("{sm_arn}:{revision_id}"),
                    state_machine_arn: sm_arn.clone(),
                    current: revision_id == current,
                    revision_id,
                    definition: r.definition,
                    kind: r.kind,
                    role_arn: r.role_arn,
                    creation_date_ms: r.created_ms,
                };
                (seq, revision)
            })
            .collect();
        revisions.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        Ok(revisions)
    }

    /// Queues the writes of a state machine record and its current revision. Called under the
    /// `machines` lock, so that writes to one state machine reach the store in the order they
    /// were made in memory.
    fn queue_machine(&self, record: &StateMachineRecord) -> Result<PendingCommit> {
        let mut writes = WriteSet::default();
        writes.put_state_machine(record);
        writes.put_definition(
            &record.name,
            &record.revision_id,
            &DefinitionRecord {
                definition: record.definition.clone(),
                kind: record.kind,
                role_arn: record.role_arn.clone(),
                created_ms: record.updated_ms,
                seq: self.store.next_seq()?,
            },
        );
        Ok(self.committer.submit(writes))
    }

    /// The parsed definition of a revision (cached).
    fn definition(&self, sm: &str, revision: &str) -> Result<Arc<Definition>> {
        if let Some(def) = read(&self.definitions)
            .get(sm)
            .and_then(|r| r.get(revision))
        {
            return Ok(def.clone());
        }
        let text = match read(&self.machines).get(sm) {
            Some(r) if r.revision_id == revision => Some(r.definition.clone()),
            _ => None,
        };
        let text = match text {
            Some(t) => t,
            None => {
                self.store
                    .definition(sm, revision)?
                    .ok_or_else(|| {
                        Error::Corrupt(format!("definition {sm}/{revision} is missing"))
                    })?
                    .definition
            }
        };
        let machine = stepyard_statelang::parse(&text).map_err(Error::InvalidDefinition)?;
        let def = Arc::new(Definition {
            // JSONata reads it as `$states.context` (and `$now()` as the state's entry time).
            uses_context: text.contains("$$") || text.contains("JSONata"),
            machine,
            metrics: MachineMetrics::default(),
        });
        write(&self.definitions)
            .entry(sm.to_string())
            .or_default()
            .insert(revision.to_string(), def.clone());
        Ok(def)
    }

    fn prepare_start(&self, req: &StartExecution) -> Result<(StartTarget, String)> {
        let sm = arn::state_machine_name(&req.state_machine_arn)?;
        if let Some(name) = &req.name {
            arn::validate_name(name)?;
        }
        let input = req.input.clone().unwrap_or_else(|| "{}".to_string());
        if input.len() > self.config.limits.max_payload_bytes {
            return Err(Error::DataLimitExceeded(format!(
                "the execution input is {} bytes; the limit is {}",
                input.len(),
                self.config.limits.max_payload_bytes
            )));
        }
        if let Err(e) = serde_json::from_str::<Value>(&input) {
            return Err(Error::InvalidExecutionInput(e.to_string()));
        }
        let record = read(&self.machines)
            .get(&sm)
            .map(|r| StartTarget {
                name: r.name.clone(),
                kind: r.kind,
                revision_id: r.revision_id.clone(),
                role_arn: r.role_arn.clone(),
            })
            .ok_or_else(|| Error::StateMachineDoesNotExist(req.state_machine_arn.clone()))?;
        Ok((record, input))
    }

    fn key_of(&self, execution_arn: &str) -> Result<String> {
        let (sm, name) = arn::execution_names(execution_arn)?;
        if arn::is_express_execution(execution_arn) {
            return Ok(express_key(execution_arn));
        }
        Ok(exec_key(&sm, &name))
    }

    /// The latest durable record of an execution.
    fn load_record(&self, execution_arn: &str) -> Result<ExecutionRecord> {
        let key = self.key_of(execution_arn)?;
        self.store
            .execution(&key)?
            .ok_or_else(|| Error::ExecutionDoesNotExist(execution_arn.to_string()))
    }

    fn express_info(&self, execution_arn: &str) -> Result<ExecutionInfo> {
        let key = express_key(execution_arn);
        let shard = lock(&self.cells[shard_of(&key)]);
        match shard.get(&key) {
            Some(cell) => Ok(info_of(&lock(&cell.state).rec)),
            None => Err(Error::ExecutionDoesNotExist(execution_arn.to_string())),
        }
    }

    fn token(&self, task_token: &str) -> Result<TokenRecord> {
        if task_token.is_empty() || task_token.len() > 1024 {
            return Err(Error::InvalidToken(
                "the task token is empty or too long".into(),
            ));
        }
        self.store.token(task_token)?.ok_or(Error::TaskDoesNotExist)
    }

    async fn answer_token(
        self: &Arc<Self>,
        task_token: &str,
        result: std::result::Result<Value, TaskError>,
    ) -> Result<()> {
        let token = self.token(task_token)?;
        let applied = self
            .drive(
                &token.exec_key,
                Command::TokenAnswered {
                    thread: token.thread,
                    invocation_id: token.invocation_id,
                    result,
                },
            )
            .await?;
        if applied {
            Ok(())
        } else {
            Err(Error::TaskTimedOut)
        }
    }

    /// The ARN an execution key stands for (for error messages).
    fn arn_of_key(&self, key: &str) -> String {
        match key.strip_prefix('~') {
            Some(arn) => arn.to_string(),
            None => match key.split_once(':') {
                Some((sm, name)) => self.scope.execution(sm, name),
                None => key.to_string(),
            },
        }
    }

    /// Gets the execution's cell, loading its record from the store.
    fn cell(&self, key: &str) -> Result<Arc<Cell>> {
        let mut shard = lock(&self.cells[shard_of(key)]);
        if let Some(cell) = shard.get(key) {
            return Ok(cell.clone());
        }
        let rec = self
            .store
            .execution(key)?
            .ok_or_else(|| Error::ExecutionDoesNotExist(self.arn_of_key(key)))?;
        let def = self.definition(&rec.sm_name, &rec.revision_id)?;
        let cell = Arc::new(Cell {
            state: Mutex::new(CellState {
                rec,
                def,
                version: 0,
                evicted: false,
                durable: true,
            }),
        });
        shard.insert(key.to_string(), cell.clone());
        Ok(cell)
    }

    /// Applies a command under the cell lock and queues its writes. Returns the pending commit
    /// and the effects to run once it is durable.
    fn transition(
        &self,
        state: &mut CellState,
        command: Command,
        new_execution: bool,
    ) -> (PendingCommit, Vec<Effect>) {
        let next_seq = || self.store.next_seq().unwrap_or(0);
        let ctx = Ctx {
            now_ms: self.config.clock.now_ms(),
            ids: self.config.ids.as_ref(),
            scope: &self.scope,
            history: state.durable,
            uses_context: state.def.uses_context,
            max_payload_bytes: self.config.limits.max_payload_bytes,
            next_seq: &next_seq,
        };
        let def = state.def.clone();
        let status_before = state.rec.status;
        let transition = interp::apply(&mut state.rec, &def.machine, command, &ctx);
        state.version += 1;
        record_metrics(
            state,
            status_before,
            new_execution,
            transition.states_entered,
        );
        if !state.durable {
            return (PendingCommit::done(), transition.effects);
        }
        let mut writes = transition.writes;
        if !transition.unchanged {
            writes.put_execution(&state.rec);
            writes.append_history(&state.rec.key, &transition.events);
            if new_execution {
                writes.put_execution_index(&state.rec.sm_name, state.rec.seq, &state.rec.key);
            }
        }
        (self.committer.submit(writes), transition.effects)
    }

    /// Runs a command against an execution. `Ok(false)` when it changed nothing (a late answer).
    async fn drive(self: &Arc<Self>, key: &str, command: Command) -> Result<bool> {
        let (cell, pending, effects, version, changed) = loop {
            let cell = self.cell(key)?;
            let mut state = lock(&cell.state);
            if state.evicted {
                continue;
            }
            let before = state.rec.rt.last_event;
            let status = state.rec.status;
            let (pending, effects) = self.transition(&mut state, command, false);
            let changed = state.rec.rt.last_event != before || state.rec.status != status;
            let version = state.version;
            drop(state);
            break (cell, pending, effects, version, changed);
        };
        pending.wait().await?;
        self.after_commit(key, &cell, version, effects);
        Ok(changed)
    }

    fn after_commit(
        self: &Arc<Self>,
        key: &str,
        cell: &Arc<Cell>,
        version: u64,
        effects: Vec<Effect>,
    ) {
        let durable = lock(&cell.state).durable;
        for effect in effects {
            match effect {
                Effect::Dispatch(d) => self.dispatch(d, false),
                Effect::EnqueueActivity(entry) => {
                    lock(&self.activity_queues)
                        .entry(entry.activity.clone())
                        .or_default()
                        .push_back(entry);
                    self.activity_ready.notify_waiters();
                }
                Effect::TimerArmed { timer, due_ms } => {
                    if !durable {
                        lock(&self.mem_timers).insert((due_ms, key.to_string(), timer));
                    }
                    let next = self.timer_next.load(Ordering::SeqCst);
                    if next == 0 || due_ms < next {
                        self.timer_wake.notify_one();
                    }
                }
                Effect::TimerCancelled { timer } => {
                    if !durable {
                        lock(&self.mem_timers).retain(|(_, k, t)| !(k == key && *t == timer));
                    }
                }
                Effect::Finished => {
                    if let Some(waiters) = lock(&self.waiters).remove(key) {
                        for w in waiters {
                            let _ = w.send(());
                        }
                    }
                }
            }
        }
        if self.progress.receiver_count() > 0 {
            self.progress.send_modify(|n| *n += 1);
        }
        // Executions parked on a timer, a callback or an activity leave memory: a million
        // waiting executions cost disk, not memory.
        let mut shard = lock(&self.cells[shard_of(key)]);
        let mut state = lock(&cell.state);
        let parked = state.rec.status != ExecutionStatus::Running
            || !state
                .rec
                .rt
                .threads
                .values()
                .any(|t| matches!(&t.phase, Phase::Task(tp) if tp.kind == TaskKind::Call));
        let remove = if state.durable {
            state.version == version && parked
        } else {
            state.rec.status != ExecutionStatus::Running && state.version == version
        };
        if remove && shard.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            state.evicted = true;
            shard.remove(key);
        }
    }

    /// Calls the worker for a scheduled task and feeds its answer back. At-least-once.
    ///
    /// `resumed` marks a call remade at open: if its worker is not registered yet, it waits in
    /// `orphans` for the registration instead of failing the task.
    fn dispatch(self: &Arc<Self>, d: DispatchRecord, resumed: bool) {
        let worker = self.find_worker(&d);
        if resumed && worker.is_err() {
            lock(&self.orphans).push(d);
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(self);
        tokio::spawn(async move {
            let request = TaskRequest {
                resource: d.resource.clone(),
                function_name: d.function_name.clone(),
                input: d.input.clone(),
                invocation_id: d.invocation_id.clone(),
                task_token: d.token.clone(),
                timeout: d.timeout_seconds.map(Duration::from_secs),
                heartbeat: d.heartbeat_seconds.map(Duration::from_secs),
                execution_arn: d.exec_arn.clone(),
                state_name: d.state_name.clone(),
                attempt: d.attempt,
            };
            let started = std::time::Instant::now();
            let result = match worker {
                Ok(worker) => {
                    // A panicking worker fails the task instead of leaving it hanging.
                    match tokio::spawn(async move { worker.invoke(request).await }).await {
                        Ok(r) => r,
                        Err(e) => Err(TaskError::new(
                            "States.TaskFailed",
                            format!("the worker panicked: {e}"),
                        )),
                    }
                }
                Err(e) => Err(e),
            };
            metrics::histogram!(
                "stepyard_task_duration_seconds",
                "resource" => resource_kind(&d.resource),
                "outcome" => if result.is_ok() { "succeeded" } else { "failed" }
            )
            .record(started.elapsed().as_secs_f64());
            let Some(inner) = weak.upgrade() else { return };
            if inner.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            let command = Command::WorkerAnswered {
                thread: d.thread,
                invocation_id: d.invocation_id.clone(),
                result,
            };
            if let Err(e) = inner.drive(&d.exec_key, command).await {
                tracing::warn!(execution = %d.exec_arn, error = %e, "could not record a task's answer");
            }
        });
    }

    fn retry_orphans(self: &Arc<Self>) {
        let orphans: Vec<DispatchRecord> = lock(&self.orphans).drain(..).collect();
        for d in orphans {
            self.dispatch(d, true);
        }
    }

    fn find_worker(
        self: &Arc<Self>,
        d: &DispatchRecord,
    ) -> std::result::Result<Arc<dyn TaskWorker>, TaskError> {
        if d.resource.starts_with(START_EXECUTION) {
            return Ok(Arc::new(ChildExecutions {
                inner: Arc::downgrade(self),
            }));
        }
        if let Some(name) = &d.function_name
            && let Some(w) = read(&self.functions).get(name)
        {
            return Ok(w.clone());
        }
        if let Some((_, w)) = read(&self.workers)
            .iter()
            .find(|(m, _)| m.matches(&d.resource))
        {
            return Ok(w.clone());
        }
        Err(match &d.function_name {
            Some(name) => TaskError::new(
                "Lambda.ResourceNotFoundException",
                format!(
                    "Function not found: {} (no function named '{name}' is registered)",
                    d.resource
                ),
            ),
            None => TaskError::new(
                "States.TaskFailed",
                format!("no worker serves the resource '{}'", d.resource),
            ),
        })
    }

    // ---- express ---------------------------------------------------------------------------------

    async fn start_express(
        self: Arc<Self>,
        record: StartTarget,
        name: Option<String>,
        input: String,
        wait: bool,
    ) -> Result<ExecutionInfo> {
        let id = self.config.ids.new_id();
        let name = name.unwrap_or_else(|| id.clone());
        let arn = self.scope.express_execution(&record.name, &name, &id);
        let key = express_key(&arn);
        let def = self.definition(&record.name, &record.revision_id)?;
        let now = self.config.clock.now_ms();
        let rec = ExecutionRecord {
            key: key.clone(),
            arn,
            sm_name: record.name.clone(),
            sm_arn: self.scope.state_machine(&record.name),
            revision_id: record.revision_id.clone(),
            role_arn: record.role_arn.clone(),
            name,
            input,
            status: ExecutionStatus::Running,
            output: None,
            error: None,
            cause: None,
            start_ms: now,
            stop_ms: None,
            redrive_count: 0,
            redrive_ms: None,
            seq: 0,
            rt: Runtime::default(),
        };
        let mut state = CellState {
            rec,
            def,
            version: 0,
            evicted: false,
            durable: false,
        };
        let (_, effects) = self.transition(&mut state, Command::Start, true);
        if state.rec.status != ExecutionStatus::Running {
            return Ok(info_of(&state.rec));
        }
        let info = info_of(&state.rec);
        let version = state.version;
        let cell = Arc::new(Cell {
            state: Mutex::new(state),
        });
        let rx = wait.then(|| {
            let (tx, rx) = oneshot::channel();
            lock(&self.waiters).entry(key.clone()).or_default().push(tx);
            rx
        });
        lock(&self.cells[shard_of(&key)]).insert(key.clone(), cell.clone());
        self.after_commit(&key, &cell, version, effects);
        let Some(rx) = rx else { return Ok(info) };
        let _ = rx.await;
        let info = info_of(&lock(&cell.state).rec);
        Ok(info)
    }
}

/// `arn:aws:states:::states:startExecution` (`.sync`, `.sync:2`, `.waitForTaskToken`): a child
/// execution of this engine. Without a `Name` the child is named after the invocation id, so a
/// call remade after a restart finds the same child instead of starting another.
const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

struct ChildExecutions {
    inner: Weak<Inner>,
}

#[async_trait::async_trait]
impl TaskWorker for ChildExecutions {
    async fn invoke(&self, request: TaskRequest) -> std::result::Result<Value, TaskError> {
        let failed = |cause: String| TaskError::new("States.TaskFailed", cause);
        let sync = request.resource[START_EXECUTION.len()..].starts_with(".sync");
        let sync2 = sync && request.resource.ends_with(":2");
        let sm = request
            .input
            .get("StateMachineArn")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("Parameters.StateMachineArn is required".into()))?
            .to_string();
        let input = match request.input.get("Input") {
            None => "{}".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let name = request
            .input
            .get("Name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| request.invocation_id.clone());
        let (arn, rx) = {
            let inner = self
                .inner
                .upgrade()
                .ok_or_else(|| failed("the engine is shutting down".into()))?;
            let engine = Engine {
                inner: inner.clone(),
            };
            let start = StartExecution {
                state_machine_arn: sm.clone(),
                name: Some(name),
                input: Some(input),
            };
            let arn = match engine.start_execution(start).await {
                Ok(started) => started.execution_arn,
                Err(Error::ExecutionAlreadyExists(arn)) => arn,
                Err(e) => {
                    return Err(TaskError::new(
                        "StepFunctions.ExecutionDoesNotExistException",
                        e.to_string(),
                    ));
                }
            };
            if !sync {
                let info = engine
                    .describe_execution(&arn)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                return Ok(
                    serde_json::json!({ "ExecutionArn": arn, "StartDate": info.start_date_ms as f64 / 1000.0 }),
                );
            }
            let key = inner.key_of(&arn).map_err(|e| failed(e.to_string()))?;
            let (tx, rx) = oneshot::channel();
            lock(&inner.waiters).entry(key).or_default().push(tx);
            (arn, rx)
        };
        // Wait without holding the engine, so a shutdown is not held up by a child.
        let closed = {
            let inner = self
                .inner
                .upgrade()
                .ok_or_else(|| failed("the engine is shutting down".into()))?;
            Engine { inner }
                .describe_execution(&arn)
                .await
                .map_err(|e| failed(e.to_string()))?
                .status
                .is_closed()
        };
        if !closed {
            rx.await
                .map_err(|_| failed("the engine is shutting down".into()))?;
        }
        let inner = self
            .inner
            .upgrade()
            .ok_or_else(|| failed("the engine is shutting down".into()))?;
        let info = Engine { inner }
            .describe_execution(&arn)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let as_json = |text: &Option<String>| -> Value {
            match text {
                Some(t) if sync2 => serde_json::from_str(t).unwrap_or(Value::Null),
                Some(t) => Value::String(t.clone()),
                None => Value::Null,
            }
        };
        let described = serde_json::json!({
            "ExecutionArn": info.execution_arn,
            "StateMachineArn": info.state_machine_arn,
            "Name": info.name,
            "Status": info.status.as_str(),
            "StartDate": info.start_date_ms as f64 / 1000.0,
            "StopDate": info.stop_date_ms.map(|d| d as f64 / 1000.0),
            "Input": as_json(&Some(info.input.clone())),
            "Output": as_json(&info.output),
        });
        if info.status == ExecutionStatus::Succeeded {
            Ok(described)
        } else {
            Err(failed(described.to_string()))
        }
    }
}

fn express_key(arn: &str) -> String {
    format!("~{arn}")
}

/// Fires due timers: durable ones scanned from the store's time-ordered index, EXPRESS ones
/// from memory. Sleeps on the injected clock until the next one is due or a new one is armed.
async fn timer_loop(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        inner.timer_next.store(0, Ordering::SeqCst);
        let now = inner.config.clock.now_ms();
        let due = match inner.store.due_timers(now, 4096) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "timer scan failed");
                Vec::new()
            }
        };
        let mem_due: Vec<(u64, String, u64)> = {
            let mut timers = lock(&inner.mem_timers);
            let mut out = Vec::new();
            while let Some(first) = timers.first() {
                if first.0 > now {
                    break;
                }
                out.extend(timers.pop_first());
            }
            out
        };
        if !due.is_empty() || !mem_due.is_empty() {
            let fires = due
                .into_iter()
                .map(|t| (t.exec_key, t.timer, t.due_ms))
                .chain(
                    mem_due
                        .into_iter()
                        .map(|(due, key, timer)| (key, timer, due)),
                )
                .map(|(key, timer, due_ms)| {
                    let inner = inner.clone();
                    async move {
                        match inner
                            .drive(&key, Command::TimerFired { timer, due_ms })
                            .await
                        {
                            Ok(_) | Err(Error::ShuttingDown) => {}
                            Err(e @ (Error::ExecutionDoesNotExist(_) | Error::Corrupt(_))) => {
                                // A timer of nothing that can run: drop it, or it fires forever.
                                tracing::warn!(execution = %key, error = %e, "dropping a timer that cannot fire");
                                let mut writes = WriteSet::default();
                                writes.delete_timer(due_ms, &key, timer);
                                let _ = inner.committer.submit(writes).wait().await;
                            }
                            Err(e) => {
                                tracing::warn!(execution = %key, error = %e, "timer could not fire");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                });
            futures::future::join_all(fires).await;
            continue;
        }
        let next_durable = inner
            .store
            .next_due_after(now)
            .ok()
            .flatten()
            .unwrap_or(u64::MAX);
        let next_mem = lock(&inner.mem_timers)
            .first()
            .map(|t| t.0)
            .unwrap_or(u64::MAX);
        let next = next_durable.min(next_mem).max(1);
        let _ = inner
            .timer_next
            .compare_exchange(0, next, Ordering::SeqCst, Ordering::SeqCst);
        let sleep = inner.config.clock.sleep_until(next);
        let mut shutdown = inner.shutdown_signal.subscribe();
        let wake_notify = inner.timer_wake.clone();
        drop(inner);
        let wake = wake_notify.notified();
        tokio::select! {
            _ = sleep => {}
            _ = wake => {}
            _ = shutdown.changed() => {}
        }
    }
}
