//! The warm pool of one function revision: sandboxes (processes), the queue of invocations
//! waiting for one, and the Runtime API calls a sandbox makes.
//!
//! Lifecycle of a sandbox: *starting* (spawned, has not called `/next` yet) → *idle* (waits
//! in `/next`) ⇄ *busy* (holds one invocation until it posts a response or an error) → *gone*
//! (exited, killed on timeout or idleness, or retired with its pool). Everything the pool
//! decides (hand-off, queueing, spawning) happens under one lock with no await inside.
//!
//! **Invariant:** an invocation completes exactly once ([`Invocation::complete`] takes its
//! answer channel); a timeout, a crash and a late response race harmlessly.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::functions::LATEST;
use crate::functions::logs::{InvocationLog, LogBuffer};
use crate::functions::service::{FunctionError, TaskOrigin};
use crate::functions::spec::{Function, FunctionRuntime};
use crate::functions::store::Store;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- the interface the api crate serves ------------------------------------------------

/// What [`RuntimeApiServer::serve`] returns.
pub type ServeFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<RuntimeApiBinding>> + Send>>;

/// Serves the Lambda Runtime API for one sandbox on its own loopback address.
pub trait RuntimeApiServer: Send + Sync + 'static {
    /// Starts serving; serving stops when the returned binding is dropped.
    fn serve(&self, sandbox: SandboxApi) -> ServeFuture;
}

/// A sandbox's Runtime API address; dropping it stops the listener.
pub struct RuntimeApiBinding {
    pub address: SocketAddr,
    _guard: Box<dyn Send + Sync>,
}

impl RuntimeApiBinding {
    pub fn new(address: SocketAddr, guard: impl Send + Sync + 'static) -> Self {
        RuntimeApiBinding {
            address,
            _guard: Box::new(guard),
        }
    }
}

/// What `GET /2018-06-01/runtime/invocation/next` answers: the event and its headers.
#[derive(Debug, Clone)]
pub struct NextInvocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context` (JSON text), when the caller gave one.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`, never set here.
    pub cognito_identity: Option<String>,
    pub payload: Bytes,
}

/// Runtime API answers other than success, as the API maps them (400, 403, 410).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("Invalid request ID: '{0}' is not the invocation this runtime is running")]
    InvalidRequestId(String),
    #[error("init error reported after the runtime asked for an invocation")]
    InvalidStateTransition,
    #[error("the sandbox is shutting down")]
    Closed,
}

/// One sandbox's side of the Runtime API. Cheap to clone.
#[derive(Clone)]
pub struct SandboxApi(pub(crate) Arc<Sandbox>);

impl SandboxApi {
    /// Waits for the next invocation (the long poll of `/invocation/next`).
    pub async fn next(&self) -> Result<NextInvocation, RuntimeApiError> {
        let sandbox = &self.0;
        let pool = sandbox.pool.upgrade().ok_or(RuntimeApiError::Closed)?;
        // An invocation the runtime asks past without answering is a runtime bug; AWS fails it.
        let abandoned = lock(&sandbox.current).take();
        if let Some(inv) = abandoned {
            inv.complete(Err(FunctionError::new(
                "Runtime.InvalidResponse",
                &inv.request_id,
                "the runtime asked for the next invocation without answering this one",
            )));
        }
        if !sandbox.initialized.swap(true, Ordering::SeqCst) {
            pool.sandbox_ready();
        }
        let inv = pool.take(sandbox).await?;
        Ok(sandbox.deliver(inv))
    }

    /// `POST /invocation/{id}/response`.
    pub async fn respond(&self, request_id: &str, body: Bytes) -> Result<(), RuntimeApiError> {
        let inv = self.0.finish(request_id).await?;
        inv.complete(Ok(body));
        Ok(())
    }

    /// `POST /invocation/{id}/error`: `error_type` from `Lambda-Runtime-Function-Error-Type`.
    pub async fn fail(
        &self,
        request_id: &str,
        error_type: Option<String>,
        body: Bytes,
    ) -> Result<(), RuntimeApiError> {
        let inv = self.0.finish(request_id).await?;
        inv.complete(Err(FunctionError::from_runtime(
            error_type,
            body,
            &inv.request_id,
        )));
        Ok(())
    }

    /// `POST /runtime/init/error`: the sandbox is stopped and the invocation waiting for it
    /// gets this error.
    pub async fn init_error(
        &self,
        error_type: Option<String>,
        body: Bytes,
    ) -> Result<(), RuntimeApiError> {
        let sandbox = &self.0;
        if sandbox.initialized.load(Ordering::SeqCst) {
            return Err(RuntimeApiError::InvalidStateTransition);
        }
        sandbox.drain_logs().await;
        *lock(&sandbox.init_error) = Some(FunctionError::from_runtime(error_type, body, ""));
        sandbox.kill();
        Ok(())
    }
}

// ---- invocations -------------------------------------------------------------------------

pub(crate) type Outcome = Result<Bytes, FunctionError>;

/// What the caller of an invocation gets back.
pub(crate) struct Answer {
    pub outcome: Outcome,
    pub log: InvocationLog,
    /// From handing the event to the runtime until its answer arrived.
    pub handler_time: Option<Duration>,
}

/// One invocation on its way through a pool.
pub(crate) struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub function: Arc<Function>,
    origin: Option<TaskOrigin>,
    started_ms: u64,
    delivered_at: Mutex<Option<Instant>>,
    answered_at: Mutex<Option<Instant>>,
    answer: Mutex<Option<oneshot::Sender<Answer>>>,
    log: Mutex<LogBuffer>,
    timer: Mutex<Option<tokio::task::AbortHandle>>,
    store: Store,
}

impl Invocation {
    pub fn new(
        request_id: String,
        payload: Bytes,
        client_context: Option<String>,
        origin: Option<TaskOrigin>,
        function: Arc<Function>,
        store: Store,
    ) -> (Arc<Invocation>, oneshot::Receiver<Answer>) {
        let (tx, rx) = oneshot::channel();
        let inv = Arc::new(Invocation {
            request_id,
            payload,
            client_context,
            function,
            origin,
            started_ms: now_ms(),
            delivered_at: Mutex::new(None),
            answered_at: Mutex::new(None),
            answer: Mutex::new(Some(tx)),
            log: Mutex::new(LogBuffer::default()),
            timer: Mutex::new(None),
            store,
        });
        (inv, rx)
    }

    pub fn push_line(&self, line: String) {
        lock(&self.log).push(line);
    }

    /// Records the outcome once: stores the logs and answers the caller. `false` if an
    /// outcome was already recorded.
    pub fn complete(&self, outcome: Outcome) -> bool {
        let Some(answer) = lock(&self.answer).take() else {
            return false;
        };
        if let Some(timer) = lock(&self.timer).take() {
            timer.abort();
        }
        let ended = now_ms();
        let answered = lock(&self.answered_at).unwrap_or_else(Instant::now);
        let handler_time = lock(&self.delivered_at).map(|t| answered.saturating_duration_since(t));
        let duration_ms = handler_time
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        let log = {
            let mut buffer = lock(&self.log);
            buffer.push(format!("END RequestId: {}", self.request_id));
            buffer.push(format!(
                "REPORT RequestId: {}\tDuration: {duration_ms:.2} ms\tMemory Size: {} MB",
                self.request_id, self.function.spec.memory_size_mb
            ));
            InvocationLog {
                request_id: self.request_id.clone(),
                function: self.function.spec.name.clone(),
                started_ms: self.started_ms,
                ended_ms: Some(ended),
                error: outcome.as_ref().err().map(|e| e.error_type.clone()),
                execution_arn: self.origin.as_ref().map(|o| o.execution_arn.clone()),
                state_name: self.origin.as_ref().map(|o| o.state_name.clone()),
                attempt: self.origin.as_ref().map(|o| o.attempt),
                lines: std::mem::take(&mut buffer.lines),
                truncated: buffer.truncated,
            }
        };
        if let Err(e) = self.store.put_log(&log) {
            tracing::warn!(request_id = %self.request_id, error = %e, "cannot store invocation logs");
        }
        let _ = answer.send(Answer {
            outcome,
            log,
            handler_time,
        });
        true
    }
}

// ---- sandboxes ---------------------------------------------------------------------------

pub(crate) struct Sandbox {
    pub id: u64,
    pool: Weak<Pool>,
    current: Mutex<Option<Arc<Invocation>>>,
    /// Lines printed outside an invocation (init, or after an answer): they go to the next one.
    between: Mutex<LogBuffer>,
    initialized: AtomicBool,
    init_error: Mutex<Option<FunctionError>>,
    kill: Notify,
    /// Killed by the memory watchdog: the running invocation fails with `Runtime.OutOfMemory`.
    out_of_memory: AtomicBool,
    /// Asks the log reader to drain what the pipe holds now, and acknowledges.
    log_sync: Mutex<Option<mpsc::UnboundedSender<oneshot::Sender<()>>>>,
}

impl Sandbox {
    fn new(id: u64, pool: Weak<Pool>) -> Sandbox {
        Sandbox {
            id,
            pool,
            current: Mutex::new(None),
            between: Mutex::new(LogBuffer::default()),
            initialized: AtomicBool::new(false),
            init_error: Mutex::new(None),
            kill: Notify::new(),
            out_of_memory: AtomicBool::new(false),
            log_sync: Mutex::new(None),
        }
    }

    /// Marks the sandbox as over its memory size (its process is being killed).
    pub fn set_out_of_memory(&self) {
        self.out_of_memory.store(true, Ordering::SeqCst);
    }

    /// Whether an invocation is running in the sandbox now.
    pub fn busy(&self) -> bool {
        lock(&self.current).is_some()
    }

    pub fn kill(&self) {
        self.kill.notify_one();
    }

    pub async fn killed(&self) {
        self.kill.notified().await;
    }

    pub fn set_log_sync(&self, sender: mpsc::UnboundedSender<oneshot::Sender<()>>) {
        *lock(&self.log_sync) = Some(sender);
    }

    /// One line of the process's output.
    pub fn on_line(&self, line: String) {
        let current = lock(&self.current).clone();
        match current {
            Some(inv) => inv.push_line(line),
            None => lock(&self.between).push(line),
        }
    }

    /// Waits until every byte the process wrote so far has been read into lines.
    pub async fn drain_logs(&self) {
        let sender = lock(&self.log_sync).clone();
        if let Some(sender) = sender {
            let (ack, done) = oneshot::channel();
            if sender.send(ack).is_ok() {
                let _ = done.await;
            }
        }
    }

    fn deliver(self: &Arc<Self>, inv: Arc<Invocation>) -> NextInvocation {
        let timeout = inv.function.spec.timeout();
        let deadline_ms = now_ms() + timeout.as_millis() as u64;
        {
            let earlier = std::mem::take(&mut *lock(&self.between));
            let mut log = lock(&inv.log);
            let mut first = LogBuffer::default();
            first.append(earlier);
            first.push(format!(
                "START RequestId: {} Version: {LATEST}",
                inv.request_id
            ));
            first.append(std::mem::take(&mut *log));
            *log = first;
        }
        *lock(&inv.delivered_at) = Some(Instant::now());
        *lock(&self.current) = Some(inv.clone());
        let timer = {
            let inv = inv.clone();
            let sandbox = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                let error = FunctionError::new(
                    "Sandbox.Timedout",
                    &inv.request_id,
                    &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                );
                if inv.complete(Err(error))
                    && let Some(sandbox) = sandbox.upgrade()
                {
                    sandbox.kill();
                }
            })
        };
        *lock(&inv.timer) = Some(timer.abort_handle());
        NextInvocation {
            request_id: inv.request_id.clone(),
            deadline_ms,
            invoked_function_arn: inv.function.arn.clone(),
            trace_id: trace_id(&inv.request_id),
            client_context: inv.client_context.clone(),
            cognito_identity: None,
            payload: inv.payload.clone(),
        }
    }

    /// Checks that `request_id` is the open invocation, drains the logs, and takes it.
    async fn finish(&self, request_id: &str) -> Result<Arc<Invocation>, RuntimeApiError> {
        let open = lock(&self.current)
            .as_ref()
            .filter(|inv| inv.request_id == request_id)
            .cloned();
        let Some(inv) = open else {
            return Err(RuntimeApiError::InvalidRequestId(request_id.to_string()));
        };
        *lock(&inv.answered_at) = Some(Instant::now());
        self.drain_logs().await;
        let taken = {
            let mut current = lock(&self.current);
            match current.as_ref() {
                Some(inv) if inv.request_id == request_id => current.take(),
                _ => None,
            }
        };
        let inv = taken.ok_or_else(|| RuntimeApiError::InvalidRequestId(request_id.to_string()))?;
        if let Some(pool) = self.pool.upgrade() {
            lock(&pool.state).returning.insert(self.id);
        }
        Ok(inv)
    }
}

/// An X-Ray-shaped trace header derived from the request id.
fn trace_id(request_id: &str) -> String {
    let hex: String = request_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    format!(
        "Root=1-{}-{};Parent={};Sampled=0",
        &hex[..8],
        &hex[8..32],
        &hex[16..32]
    )
}

// ---- the pool ------------------------------------------------------------------------------

/// Limits and collaborators of every pool.
pub(crate) struct PoolSettings {
    pub runtime_api: Arc<dyn RuntimeApiServer>,
    pub region: String,
    pub default_concurrency: u32,
    pub max_queue: usize,
    pub idle_timeout: Duration,
}

struct Waiter {
    sandbox: u64,
    since: Instant,
    tx: oneshot::Sender<Arc<Invocation>>,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Arc<Invocation>>,
    waiters: VecDeque<Waiter>,
    sandboxes: HashMap<u64, Arc<Sandbox>>,
    starting: usize,
    /// Sandboxes that answered and are on their way back to `/next`: queued work waits for
    /// them rather than starting a sandbox (sequential calls stay on one warm sandbox).
    returning: std::collections::HashSet<u64>,
    /// No new invocations (the function was updated or deleted): idle sandboxes stop.
    closed: bool,
    cold_starts: u64,
}

pub(crate) struct Pool {
    pub function: Arc<Function>,
    pub settings: Arc<PoolSettings>,
    state: Mutex<PoolState>,
    next_sandbox: AtomicU64,
    me: Weak<Pool>,
    /// The number of live sandboxes, for waiting on scaling and reaping.
    pub live: tokio::sync::watch::Sender<usize>,
}

/// Why an invocation could not be queued.
pub(crate) enum Rejected {
    Throttled(String),
    Closed,
}

impl Pool {
    pub fn new(function: Arc<Function>, settings: Arc<PoolSettings>) -> Arc<Pool> {
        let pool = Arc::new_cyclic(|me| Pool {
            function,
            settings,
            state: Mutex::new(PoolState::default()),
            next_sandbox: AtomicU64::new(1),
            me: me.clone(),
            live: tokio::sync::watch::Sender::new(0),
        });
        tokio::spawn(reap_idle(Arc::downgrade(&pool)));
        pool
    }

    fn limit(&self) -> usize {
        self.function
            .spec
            .reserved_concurrency
            .unwrap_or(self.settings.default_concurrency) as usize
    }

    pub fn process_command(&self) -> Option<(&[String], &std::path::Path)> {
        match &self.function.spec.runtime {
            FunctionRuntime::Process { command, code_dir } => Some((command, code_dir)),
            FunctionRuntime::Http { .. } => None,
        }
    }

    /// Hands `inv` to an idle sandbox, or queues it (starting a sandbox when allowed).
    pub fn submit(&self, mut inv: Arc<Invocation>) -> Result<(), Rejected> {
        let mut st = lock(&self.state);
        if st.closed {
            return Err(Rejected::Closed);
        }
        while let Some(waiter) = st.waiters.pop_front() {
            match waiter.tx.send(inv) {
                Ok(()) => return Ok(()),
                Err(back) => inv = back,
            }
        }
        let limit = self.limit();
        if limit == 0 {
            return Err(Rejected::Throttled(format!(
                "function '{}' has a reserved concurrency of 0",
                self.function.spec.name
            )));
        }
        if st.queue.len() >= self.settings.max_queue {
            return Err(Rejected::Throttled(format!(
                "function '{}' has {} invocations running and {} waiting (the limit)",
                self.function.spec.name,
                st.sandboxes.len(),
                st.queue.len()
            )));
        }
        st.queue.push_back(inv);
        self.scale(&mut st);
        Ok(())
    }

    /// Starts sandboxes while queued invocations outnumber the ones starting, within the limit.
    fn scale(&self, st: &mut PoolState) {
        while st.queue.len() > st.starting + st.returning.len() && st.sandboxes.len() < self.limit()
        {
            let Some(me) = self.me.upgrade() else { return };
            let id = self.next_sandbox.fetch_add(1, Ordering::Relaxed);
            let sandbox = Arc::new(Sandbox::new(id, self.me.clone()));
            st.sandboxes.insert(id, sandbox.clone());
            st.starting += 1;
            st.cold_starts += 1;
            tokio::spawn(crate::functions::process::run_sandbox(me, sandbox));
        }
        self.live.send_replace(st.sandboxes.len());
    }

    fn sandbox_ready(&self) {
        let mut st = lock(&self.state);
        st.starting = st.starting.saturating_sub(1);
    }

    /// The next invocation for `sandbox`: queued, or the next one submitted.
    async fn take(&self, sandbox: &Arc<Sandbox>) -> Result<Arc<Invocation>, RuntimeApiError> {
        let rx = {
            let mut st = lock(&self.state);
            st.returning.remove(&sandbox.id);
            if let Some(inv) = st.queue.pop_front() {
                return Ok(inv);
            }
            if st.closed {
                drop(st);
                sandbox.kill();
                return Err(RuntimeApiError::Closed);
            }
            let (tx, rx) = oneshot::channel();
            st.waiters.push_back(Waiter {
                sandbox: sandbox.id,
                since: Instant::now(),
                tx,
            });
            rx
        };
        let mut guard = WaitGuard {
            rx: Some(rx),
            pool: self.me.clone(),
        };
        let rx = guard.rx.as_mut().unwrap_or_else(|| unreachable!());
        let result = rx.await;
        guard.rx = None;
        result.map_err(|_| RuntimeApiError::Closed)
    }

    fn requeue_front(&self, mut inv: Arc<Invocation>) {
        let mut st = lock(&self.state);
        while let Some(waiter) = st.waiters.pop_front() {
            match waiter.tx.send(inv) {
                Ok(()) => return,
                Err(back) => inv = back,
            }
        }
        st.queue.push_front(inv);
        self.scale(&mut st);
    }

    /// A sandbox's process ended: fail what it held, start replacements for queued work.
    pub fn sandbox_exited(&self, sandbox: &Arc<Sandbox>, reason: String) {
        let (victim, init_error) = {
            let mut st = lock(&self.state);
            st.sandboxes.remove(&sandbox.id);
            st.returning.remove(&sandbox.id);
            let initialized = sandbox.initialized.load(Ordering::SeqCst);
            if !initialized {
                st.starting = st.starting.saturating_sub(1);
            }
            st.waiters.retain(|w| w.sandbox != sandbox.id);
            let current = lock(&sandbox.current).take();
            let init_error = lock(&sandbox.init_error).take();
            // A sandbox that died before taking any work fails one queued invocation, so a
            // function that cannot start answers every caller instead of restarting forever.
            let victim = match current {
                Some(inv) => Some(inv),
                None if !initialized || init_error.is_some() => st.queue.pop_front(),
                None => None,
            };
            self.scale(&mut st);
            (victim, init_error)
        };
        if let Some(inv) = victim {
            let out_of_memory = sandbox.out_of_memory.load(Ordering::SeqCst);
            let error = init_error.unwrap_or_else(|| {
                FunctionError::new(
                    if out_of_memory {
                        "Runtime.OutOfMemory"
                    } else {
                        "Runtime.ExitError"
                    },
                    &inv.request_id,
                    &if out_of_memory {
                        // Lambda's words for a function killed over its memory size.
                        "Runtime exited with error: signal: killed".to_string()
                    } else {
                        format!("Runtime exited with error: {reason}")
                    },
                )
            });
            let remaining = std::mem::take(&mut *lock(&sandbox.between));
            lock(&inv.log).append(remaining);
            inv.complete(Err(error));
        }
    }

    /// A process that could not be started fails one queued invocation.
    pub fn sandbox_failed_to_start(&self, sandbox: &Arc<Sandbox>, message: String) {
        let victim = {
            let mut st = lock(&self.state);
            st.sandboxes.remove(&sandbox.id);
            st.starting = st.starting.saturating_sub(1);
            let victim = st.queue.pop_front();
            self.scale(&mut st);
            victim
        };
        if let Some(inv) = victim {
            let error = FunctionError::new("Runtime.InvalidEntrypoint", &inv.request_id, &message);
            inv.complete(Err(error));
        }
    }

    /// No new invocations; idle sandboxes stop now, busy ones after their invocation.
    pub fn close(&self) {
        let idle: Vec<Arc<Sandbox>> = {
            let mut st = lock(&self.state);
            st.closed = true;
            let ids: Vec<u64> = st.waiters.drain(..).map(|w| w.sandbox).collect();
            ids.iter()
                .filter_map(|id| st.sandboxes.get(id).cloned())
                .collect()
        };
        for sandbox in idle {
            sandbox.kill();
        }
    }

    /// Stops every sandbox at once (server shutdown).
    pub fn kill_all(&self) {
        let all: Vec<Arc<Sandbox>> = {
            let mut st = lock(&self.state);
            st.closed = true;
            st.waiters.clear();
            st.sandboxes.values().cloned().collect()
        };
        for sandbox in all {
            sandbox.kill();
        }
    }

    pub fn stats(&self) -> (usize, usize, usize, u64) {
        let st = lock(&self.state);
        let idle = st.waiters.iter().filter(|w| !w.tx.is_closed()).count();
        (st.sandboxes.len(), idle, st.queue.len(), st.cold_starts)
    }

    fn reap(&self) {
        let idle_timeout = self.settings.idle_timeout;
        let expired: Vec<Arc<Sandbox>> = {
            let mut st = lock(&self.state);
            let mut expired = Vec::new();
            st.waiters.retain(|w| {
                if w.tx.is_closed() {
                    return false;
                }
                if w.since.elapsed() >= idle_timeout {
                    expired.push(w.sandbox);
                    return false;
                }
                true
            });
            expired
                .iter()
                .filter_map(|id| st.sandboxes.get(id).cloned())
                .collect()
        };
        for sandbox in expired {
            tracing::debug!(function = %self.function.spec.name, sandbox = sandbox.id, "stopping an idle sandbox");
            sandbox.kill();
        }
    }
}

/// Puts an invocation back in the queue if `/next` was abandoned (the runtime hung up) after
/// the invocation was handed over but before it was read.
struct WaitGuard {
    rx: Option<oneshot::Receiver<Arc<Invocation>>>,
    pool: Weak<Pool>,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if let Ok(inv) = rx.try_recv()
                && let Some(pool) = self.pool.upgrade()
            {
                pool.requeue_front(inv);
            }
        }
    }
}

async fn reap_idle(pool: Weak<Pool>) {
    let period = match pool.upgrade() {
        Some(p) => (p.settings.idle_timeout / 4).max(Duration::from_millis(20)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(pool) = pool.upgrade() else { return };
        pool.reap();
        let done = {
            let st = lock(&pool.state);
            st.closed && st.sandboxes.is_empty()
        };
        if done {
            return;
        }
    }
}
