//! The runtime: one driver task per live job takes it through its lifecycle (see `job.rs`);
//! callers (the worker, the REST API) watch the job's record on a channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use crate::containers::definitions::{
    ContainerSpec, DefinitionRef, DefinitionStatus, Overrides, ResultSource, TaskDefinition,
    TaskDefinitionSpec,
};
use crate::containers::docker::{self, CreateSpec, DockerClient, DockerError};
use crate::containers::job::{JobMode, JobOrigin, JobRecord, JobStatus, Outcome, StopCode};
use crate::containers::store::Store;
use crate::containers::{ContainerConfig, Error, Result};

/// Input larger than this reaches the container only as a file.
const MAX_INPUT_ENV_BYTES: usize = 64 * 1024;
/// Lines of log in a failure's cause.
const CAUSE_LOG_LINES: usize = 20;
const CAUSE_LOG_BYTES: usize = 4096;

pub(crate) const INPUT_FILE: &str = "/stepyard/input.json";
pub(crate) const RESULT_FILE: &str = "/stepyard/result.json";

/// A failed `.waitForTaskToken` container: the server fails the waiting task with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackFailure {
    pub task_token: String,
    pub error: String,
    pub cause: String,
}

/// A job to run.
#[derive(Debug, Clone)]
pub struct RunJob {
    pub definition: String,
    pub overrides: Overrides,
    pub input: Value,
    /// Overrides the definition's timeout.
    pub timeout: Option<Duration>,
}

/// Whether a driver starts a job it just recorded, or one that may already have a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Recorded by this process a moment ago: no container can exist yet, skip looking.
    Fresh,
    /// Found in the store (a re-dispatch, a restart): look for its container first.
    Existing,
}

/// A cheap-to-clone handle on the container runtime.
#[derive(Clone)]
pub struct ContainerRuntime {
    inner: Arc<Inner>,
}

struct Live {
    updates: watch::Sender<JobRecord>,
    stop: Arc<Notify>,
}

struct Inner {
    config: ContainerConfig,
    /// `Err` when the client could not even be made (a malformed host): every run says why.
    docker: std::result::Result<DockerClient, String>,
    store: Store,
    slots: Arc<Semaphore>,
    live: Mutex<HashMap<String, Live>>,
    api_url: RwLock<Option<String>>,
    callbacks: mpsc::UnboundedSender<CallbackFailure>,
    callback_rx: Mutex<Option<mpsc::UnboundedReceiver<CallbackFailure>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The job id of a Task state's invocation: the same invocation always maps to the same job.
pub(crate) fn job_id_for_invocation(invocation_id: &str) -> String {
    let digest = Sha256::digest(invocation_id.as_bytes());
    hex::encode(&digest[..16])
}

fn container_name(job_id: &str) -> String {
    format!("stepyard-{job_id}")
}

impl ContainerRuntime {
    /// Opens the store. Docker is not contacted here: see [`ContainerRuntime::recover`].
    pub fn open(config: ContainerConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            Error::Store(format!("cannot create {}: {e}", config.state_dir.display()))
        })?;
        let store = Store::open(&config.state_dir)?;
        let docker = DockerClient::new(&config.docker_host).map_err(|e| e.to_string());
        let (callbacks, callback_rx) = mpsc::unbounded_channel();
        Ok(ContainerRuntime {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.max_running.max(1))),
                api_url: RwLock::new(config.api_url.clone()),
                config,
                docker,
                store,
                live: Mutex::new(HashMap::new()),
                callbacks,
                callback_rx: Mutex::new(Some(callback_rx)),
            }),
        })
    }

    pub fn config(&self) -> &ContainerConfig {
        &self.inner.config
    }

    /// The failures of `.waitForTaskToken` containers, for the server to send to the engine
    /// (the runtime holds no engine handle). Only the first call gets the receiver.
    pub fn take_callback_failures(&self) -> Option<mpsc::UnboundedReceiver<CallbackFailure>> {
        lock(&self.inner.callback_rx).take()
    }

    /// Sets the URL containers get as `STEPYARD_API_URL`.
    pub fn set_api_url(&self, url: impl Into<String>) {
        *self
            .inner
            .api_url
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(url.into());
    }

    pub fn api_url(&self) -> Option<String> {
        self.inner
            .api_url
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn docker(&self) -> std::result::Result<&DockerClient, String> {
        self.inner.docker.as_ref().map_err(|e| e.clone())
    }

    /// Checks that the Docker engine answers (for a warning at start).
    pub async fn ping(&self) -> Result<()> {
        let docker = self.docker().map_err(Error::Docker)?;
        docker
            .ping()
            .await
            .map_err(|e| Error::Docker(e.to_string()))
    }

    /// Where a `bridge` container reaches the host (Docker's bridge gateway).
    pub async fn bridge_gateway(&self) -> Result<Option<std::net::IpAddr>> {
        let docker = self.docker().map_err(Error::Docker)?;
        docker
            .bridge_gateway()
            .await
            .map_err(|e| Error::Docker(e.to_string()))
    }

    /// After a restart: adopts the containers of unfinished jobs (waiting for those still
    /// running, collecting those that ended while the server was down), resumes jobs that were
    /// queued, and removes containers whose job is already recorded as stopped. Returns the
    /// number of jobs picked up.
    pub async fn recover(&self) -> Result<usize> {
        let docker = self.docker().map_err(Error::Docker)?;
        let containers = docker
            .list_managed()
            .await
            .map_err(|e| Error::Docker(e.to_string()))?;
        let mut picked = 0;
        for (id, labels) in containers {
            let Some(job_id) = labels.get(docker::LABEL_JOB) else {
                continue;
            };
            match self.inner.store.job(job_id)? {
                Some(rec) if rec.is_stopped() => {
                    if let Err(e) = docker.remove(&id).await {
                        tracing::warn!(job = %job_id, error = %e, "cannot remove a finished job's container");
                    }
                }
                Some(rec) => {
                    self.ensure_driver(rec, Resume::Existing);
                    picked += 1;
                }
                None => {
                    tracing::warn!(container = %id, job = %job_id, "a Stepyard container without a job record (another data folder?): left alone");
                }
            }
        }
        for rec in self.inner.store.jobs()? {
            if !rec.is_stopped() && !lock(&self.inner.live).contains_key(&rec.id) {
                self.ensure_driver(rec, Resume::Existing);
                picked += 1;
            }
        }
        Ok(picked)
    }

    /// The latest active revision of each family whose image is not on the Docker engine, as
    /// (`family:revision`, image): for a warning at start, since such a task would fail.
    pub async fn missing_images(&self) -> Result<Vec<(String, String)>> {
        let docker = self.docker().map_err(Error::Docker)?;
        let mut missing = Vec::new();
        for def in self.families()? {
            if def.status != DefinitionStatus::Active {
                continue;
            }
            let found = docker
                .image_exists(&def.spec.image)
                .await
                .map_err(|e| Error::Docker(e.to_string()))?;
            if !found {
                missing.push((def.name(), def.spec.image.clone()));
            }
        }
        Ok(missing)
    }

    // ---- task definitions ---------------------------------------------------------------

    /// Registers `spec` as its family's next revision.
    pub async fn register_definition(&self, spec: TaskDefinitionSpec) -> Result<TaskDefinition> {
        spec.validate(&self.inner.config.allowed_mount_roots)?;
        let now = self.inner.config.clock.now_ms();
        self.inner.store.register(spec, now).await
    }

    /// Resolves `family`, `family:revision` or an ECS ARN to a stored revision (the latest
    /// active one for a bare family).
    pub fn definition(&self, reference: &str) -> Result<TaskDefinition> {
        let r = DefinitionRef::parse(reference)?;
        match r.revision {
            Some(rev) => self
                .inner
                .store
                .definition(&r.family, rev)?
                .ok_or_else(|| Error::DefinitionNotFound(reference.to_string())),
            None => self
                .inner
                .store
                .revisions(&r.family)?
                .into_iter()
                .rev()
                .find(|d| d.status == DefinitionStatus::Active)
                .ok_or_else(|| Error::DefinitionNotFound(reference.to_string())),
        }
    }

    /// The latest revision of every family.
    pub fn families(&self) -> Result<Vec<TaskDefinition>> {
        self.inner.store.families()
    }

    /// Every revision of a family, oldest first.
    pub fn revisions(&self, family: &str) -> Result<Vec<TaskDefinition>> {
        let revisions = self.inner.store.revisions(family)?;
        if revisions.is_empty() {
            return Err(Error::DefinitionNotFound(family.to_string()));
        }
        Ok(revisions)
    }

    /// Marks a revision INACTIVE (ECS's DeregisterTaskDefinition): it runs no new jobs.
    pub async fn deregister(&self, family: &str, revision: u32) -> Result<TaskDefinition> {
        self.inner
            .store
            .set_status(family, revision, DefinitionStatus::Inactive)
            .await?
            .ok_or_else(|| Error::DefinitionNotFound(format!("{family}:{revision}")))
    }

    // ---- jobs ----------------------------------------------------------------------------

    /// Starts a job outside any workflow (`POST /v1/tasks`) and returns it once it is queued.
    pub async fn run(&self, run: RunJob) -> Result<JobRecord> {
        let def = self.runnable(&run.definition)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let rec = self.new_job(id, &def, &run, JobMode::Detached, None, None);
        self.inner.store.put_job(&rec).await?;
        self.ensure_driver(rec.clone(), Resume::Fresh);
        Ok(rec)
    }

    fn runnable(&self, reference: &str) -> Result<TaskDefinition> {
        let def = self.definition(reference)?;
        if def.status == DefinitionStatus::Inactive {
            return Err(Error::DefinitionInactive(def.name()));
        }
        Ok(def)
    }

    pub(crate) fn new_job(
        &self,
        id: String,
        def: &TaskDefinition,
        run: &RunJob,
        mode: JobMode,
        origin: Option<JobOrigin>,
        task_token: Option<String>,
    ) -> JobRecord {
        let spec = ContainerSpec::resolve(def, &run.overrides);
        let timeout_seconds = run
            .timeout
            .map(|t| t.as_secs().max(1))
            .or(spec.timeout_seconds);
        JobRecord {
            id,
            spec,
            input: run.input.clone(),
            mode,
            origin,
            task_token,
            status: JobStatus::Pending,
            container_id: None,
            created_ms: self.inner.config.clock.now_ms(),
            started_ms: None,
            stopping_ms: None,
            stopped_ms: None,
            deadline_ms: None,
            timeout_seconds,
            exit_code: None,
            oom_killed: false,
            stop_code: None,
            stopped_reason: None,
            outcome: None,
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The job as it is now.
    pub fn job(&self, id: &str) -> Result<JobRecord> {
        if let Some(live) = lock(&self.inner.live).get(id) {
            return Ok(live.updates.borrow().clone());
        }
        self.inner
            .store
            .job(id)?
            .ok_or_else(|| Error::JobNotFound(id.to_string()))
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let mut jobs = self.inner.store.jobs()?;
        jobs.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
        Ok(jobs)
    }

    /// Asks a job to stop (SIGTERM, then SIGKILL after the grace). Returns the job as it is;
    /// a stopped job is left as it is.
    pub fn stop(&self, id: &str) -> Result<JobRecord> {
        if let Some(live) = lock(&self.inner.live).get(id) {
            live.stop.notify_one();
            return Ok(live.updates.borrow().clone());
        }
        self.job(id)
    }

    /// The job's output so far (read from Docker while it runs, from the store after).
    pub async fn logs(&self, id: &str) -> Result<Vec<u8>> {
        let rec = self.job(id)?;
        if let Some(logs) = self.inner.store.logs(id)? {
            return Ok(logs);
        }
        let (Some(container), Ok(docker)) = (&rec.container_id, self.docker()) else {
            return Ok(Vec::new());
        };
        match docker
            .logs(container, self.inner.config.log_limit_bytes)
            .await
        {
            Ok(logs) => Ok(logs.combined),
            // Finished between the two reads: the store has them now.
            Err(_) => Ok(self.inner.store.logs(id)?.unwrap_or_default()),
        }
    }

    /// Waits until the job satisfies `done`, and returns it.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&JobRecord) -> bool) -> Result<JobRecord> {
        let rx = lock(&self.inner.live)
            .get(id)
            .map(|live| live.updates.subscribe());
        let Some(mut rx) = rx else {
            return self.job(id);
        };
        let result = match rx.wait_for(|rec| done(rec) || rec.is_stopped()).await {
            Ok(rec) => rec.clone(),
            // The driver ended: its last word is in the store.
            Err(_) => self.job(id)?,
        };
        Ok(result)
    }

    /// Makes sure a driver runs for an unfinished job and returns a watch on its record.
    pub(crate) fn ensure_driver(
        &self,
        rec: JobRecord,
        resume: Resume,
    ) -> watch::Receiver<JobRecord> {
        let mut live = lock(&self.inner.live);
        if let Some(l) = live.get(&rec.id) {
            return l.updates.subscribe();
        }
        let (tx, rx) = watch::channel(rec.clone());
        let stop = Arc::new(Notify::new());
        live.insert(
            rec.id.clone(),
            Live {
                updates: tx.clone(),
                stop: stop.clone(),
            },
        );
        drop(live);
        let runtime = self.clone();
        tokio::spawn(async move {
            let id = rec.id.clone();
            let rec = runtime.drive(rec, resume, &tx, &stop).await;
            lock(&runtime.inner.live).remove(&id);
            tx.send_replace(rec);
        });
        rx
    }

    // ---- the driver ----------------------------------------------------------------------

    async fn save(&self, rec: &JobRecord, tx: &watch::Sender<JobRecord>) {
        if let Err(e) = self.inner.store.put_job(rec).await {
            tracing::error!(job = %rec.id, error = %e, "cannot store a job's record");
        }
        tx.send_replace(rec.clone());
    }

    /// Takes the job to `Stopped` and returns its final record.
    async fn drive(
        &self,
        mut rec: JobRecord,
        resume: Resume,
        tx: &watch::Sender<JobRecord>,
        stop: &Notify,
    ) -> JobRecord {
        if rec.is_stopped() {
            return rec;
        }
        let docker = match self.docker() {
            Ok(d) => d.clone(),
            Err(message) => {
                self.fail_to_start(
                    &mut rec,
                    tx,
                    format!("the Docker engine is unusable: {message}"),
                )
                .await;
                return rec;
            }
        };
        let name = container_name(&rec.id);
        let found = match resume {
            Resume::Fresh => Ok(None),
            Resume::Existing => docker.inspect(&name).await,
        };
        let existing = match found {
            Ok(Some(found)) if found.never_started => {
                // Its input may be missing: make it again.
                let _ = docker.remove(&found.id).await;
                None
            }
            Ok(found) => found,
            Err(e) => {
                self.fail_unreachable(&mut rec, tx, e).await;
                return rec;
            }
        };
        // Held while the container runs: the per-server running limit.
        let mut _slot = None;
        let container = match existing {
            // Adopted: created before a restart (or by a driver that was interrupted).
            Some(found) => {
                rec.container_id = Some(found.id.clone());
                if rec.status == JobStatus::Pending {
                    // Started just before a crash, before its record said so.
                    let now = self.inner.config.clock.now_ms();
                    rec.status = JobStatus::Running;
                    rec.started_ms = Some(now);
                    rec.deadline_ms = rec.timeout_seconds.map(|s| now + s * 1000);
                    self.save(&rec, tx).await;
                }
                found.id
            }
            None if rec.status != JobStatus::Pending => {
                rec.status = JobStatus::Stopped;
                rec.stopped_ms = Some(self.inner.config.clock.now_ms());
                rec.stop_code = Some(StopCode::EssentialContainerExited);
                let reason = "the container disappeared (removed outside Stepyard while the server was down)";
                rec.stopped_reason = Some(reason.into());
                rec.outcome = Some(Outcome::Failed {
                    error: "States.TaskFailed".into(),
                    cause: reason.into(),
                });
                self.finish(&mut rec, tx, &docker, None, Vec::new()).await;
                return rec;
            }
            None => {
                let slots = self.inner.slots.clone();
                let permit = tokio::select! {
                    permit = slots.acquire_owned() => permit.ok(),
                    () = stop.notified() => None,
                };
                let Some(permit) = permit else {
                    rec.status = JobStatus::Stopped;
                    rec.stopped_ms = Some(self.inner.config.clock.now_ms());
                    rec.stop_code = Some(StopCode::UserInitiated);
                    rec.stopped_reason = Some("Task stopped by user before it started".into());
                    rec.outcome = Some(Outcome::Failed {
                        error: "States.TaskFailed".into(),
                        cause: "the task was stopped by a user before it started".into(),
                    });
                    self.save(&rec, tx).await;
                    return rec;
                };
                _slot = Some(permit);
                match self.create_and_start(&docker, &name, &mut rec).await {
                    Ok(id) => {
                        self.save(&rec, tx).await;
                        id
                    }
                    Err(e) => {
                        if let Some(id) = &rec.container_id {
                            let _ = docker.remove(id).await;
                        }
                        match e {
                            DockerError::Unreachable { .. } => {
                                self.fail_unreachable(&mut rec, tx, e).await
                            }
                            other => self.fail_to_start(&mut rec, tx, other.to_string()).await,
                        }
                        return rec;
                    }
                }
            }
        };
        // Wait for the end, stopping the container at the deadline or on request.
        loop {
            let deadline = match (rec.status, rec.deadline_ms) {
                (JobStatus::Running, Some(ms)) => Some(self.inner.config.clock.sleep_until(ms)),
                _ => None,
            };
            let stopping = rec.status == JobStatus::Stopping;
            tokio::select! {
                waited = docker.wait(&container) => match waited {
                    Ok(()) => match docker.inspect(&container).await {
                        Ok(Some(found)) if found.running => continue,
                        Ok(Some(_)) => break,
                        Ok(None) => break,
                        Err(e) => {
                            self.fail_unreachable(&mut rec, tx, e).await;
                            return rec;
                        }
                    },
                    Err(e) => {
                        // The engine may be restarting: look once more before giving up.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        match docker.inspect(&container).await {
                            Ok(Some(_)) => continue,
                            _ => {
                                self.fail_unreachable(&mut rec, tx, e).await;
                                return rec;
                            }
                        }
                    }
                },
                () = async {
                    match deadline {
                        Some(sleep) => sleep.await,
                        None => std::future::pending().await,
                    }
                } => {
                    if self.inner.config.clock.now_ms() < rec.deadline_ms.unwrap_or(0) {
                        continue;
                    }
                    self.begin_stop(&mut rec, tx, StopCode::ServiceSchedulerInitiated).await;
                    self.send_stop(&docker, &container, &rec).await;
                }
                () = stop.notified(), if !stopping => {
                    self.begin_stop(&mut rec, tx, StopCode::UserInitiated).await;
                    self.send_stop(&docker, &container, &rec).await;
                }
            }
        }
        self.collect(&mut rec, tx, &docker, &container).await;
        rec
    }

    async fn begin_stop(&self, rec: &mut JobRecord, tx: &watch::Sender<JobRecord>, code: StopCode) {
        rec.status = JobStatus::Stopping;
        rec.stopping_ms = Some(self.inner.config.clock.now_ms());
        rec.stop_code = Some(code);
        self.save(rec, tx).await;
    }

    async fn send_stop(&self, docker: &DockerClient, container: &str, rec: &JobRecord) {
        if let Err(e) = docker.stop(container, self.inner.config.stop_grace).await {
            tracing::warn!(job = %rec.id, error = %e, "cannot stop a container");
        }
    }

    async fn create_and_start(
        &self,
        docker: &DockerClient,
        name: &str,
        rec: &mut JobRecord,
    ) -> std::result::Result<String, DockerError> {
        let spec = &rec.spec;
        let input = serde_json::to_vec(&rec.input).unwrap_or_default();
        let mut env: BTreeMap<String, String> = spec.environment.clone();
        if input.len() <= MAX_INPUT_ENV_BYTES {
            env.insert(
                "STEPYARD_INPUT".into(),
                String::from_utf8_lossy(&input).into(),
            );
        }
        env.insert("STEPYARD_INPUT_FILE".into(), INPUT_FILE.into());
        env.insert("STEPYARD_RESULT_FILE".into(), RESULT_FILE.into());
        let (region, account) = (&self.inner.config.region, &self.inner.config.account);
        env.insert("STEPYARD_TASK_ARN".into(), rec.task_arn(region, account));
        if let Some(url) = self.api_url() {
            env.insert("STEPYARD_API_URL".into(), url);
        }
        if let Some(token) = &rec.task_token {
            env.insert("STEPYARD_TASK_TOKEN".into(), token.clone());
        }
        let mut labels = HashMap::from([
            (docker::LABEL_MANAGED.to_string(), "true".to_string()),
            (docker::LABEL_JOB.to_string(), rec.id.clone()),
            (docker::LABEL_DEFINITION.to_string(), spec.definition_name()),
        ]);
        if let Some(origin) = &rec.origin {
            env.insert(
                "STEPYARD_EXECUTION_ARN".into(),
                origin.execution_arn.clone(),
            );
            env.insert("STEPYARD_STATE_NAME".into(), origin.state_name.clone());
            labels.insert(docker::LABEL_EXECUTION.into(), origin.execution_arn.clone());
            labels.insert(docker::LABEL_STATE.into(), origin.state_name.clone());
            labels.insert(docker::LABEL_ATTEMPT.into(), origin.attempt.to_string());
            labels.insert(
                docker::LABEL_INVOCATION.into(),
                origin.invocation_id.clone(),
            );
        }
        let create = CreateSpec {
            name: name.to_string(),
            image: spec.image.clone(),
            command: spec.command.clone(),
            entrypoint: spec.entrypoint.clone(),
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            working_dir: spec.working_dir.clone(),
            labels,
            nano_cpus: spec.cpu.map(|c| c as i64 * 1_000_000_000 / 1024),
            memory_bytes: spec.memory_mib.map(|m| (m * 1024 * 1024) as i64),
            pids_limit: spec.pids_limit,
            network_mode: spec.network_mode.docker_name(),
            binds: spec
                .mounts
                .iter()
                .map(|m| format!("{}:{}:ro", m.source.display(), m.target))
                .collect(),
        };
        let id = match docker.create(create).await {
            Ok(id) => id,
            // A driver that died between create and the next record: take the container over.
            Err(DockerError::Conflict(_)) => match docker.inspect(name).await? {
                Some(found) => found.id,
                None => return Err(DockerError::Conflict(name.to_string())),
            },
            Err(e) => return Err(e),
        };
        rec.container_id = Some(id.clone());
        docker
            .upload(&id, &[(&INPUT_FILE[1..], 0o644, &input)])
            .await?;
        docker.start(&id).await?;
        let now = self.inner.config.clock.now_ms();
        rec.status = JobStatus::Running;
        rec.started_ms = Some(now);
        rec.deadline_ms = rec.timeout_seconds.map(|s| now + s * 1000);
        Ok(id)
    }

    async fn fail_to_start(
        &self,
        rec: &mut JobRecord,
        tx: &watch::Sender<JobRecord>,
        cause: String,
    ) {
        rec.status = JobStatus::Stopped;
        rec.stopped_ms = Some(self.inner.config.clock.now_ms());
        rec.stop_code = Some(StopCode::TaskFailedToStart);
        rec.stopped_reason = Some(cause.clone());
        rec.outcome = Some(Outcome::Failed {
            error: "States.TaskFailed".into(),
            cause: format!(
                "container task {} could not start: {cause}",
                rec.spec.definition_name()
            ),
        });
        self.save(rec, tx).await;
        self.report_callback_failure(rec);
    }

    async fn fail_unreachable(
        &self,
        rec: &mut JobRecord,
        tx: &watch::Sender<JobRecord>,
        e: DockerError,
    ) {
        if rec.status == JobStatus::Pending {
            return self.fail_to_start(rec, tx, e.to_string()).await;
        }
        rec.status = JobStatus::Stopped;
        rec.stopped_ms = Some(self.inner.config.clock.now_ms());
        rec.stopped_reason = Some(e.to_string());
        rec.outcome = Some(Outcome::Failed {
            error: "States.TaskFailed".into(),
            cause: format!(
                "lost track of container task {}: {e}",
                rec.spec.definition_name()
            ),
        });
        self.save(rec, tx).await;
        self.report_callback_failure(rec);
    }

    /// Reads the ended container's state, logs and result, stores the outcome, removes it.
    async fn collect(
        &self,
        rec: &mut JobRecord,
        tx: &watch::Sender<JobRecord>,
        docker: &DockerClient,
        container: &str,
    ) {
        let config = &self.inner.config;
        // Three independent reads: at once (reading the result file is the slow one, Docker
        // mounts the container's filesystem for it).
        let wants_file = matches!(rec.spec.result, ResultSource::Auto | ResultSource::File);
        let (inspected, logs, file) = tokio::join!(
            docker.inspect(container),
            docker.logs(container, config.log_limit_bytes),
            async {
                if wants_file {
                    docker
                        .read_file(container, RESULT_FILE, config.max_result_bytes)
                        .await
                        .ok()
                        .flatten()
                } else {
                    None
                }
            }
        );
        let inspected = inspected.ok().flatten();
        let (combined, stdout) = match logs {
            Ok(l) => (l.combined, l.stdout),
            Err(e) => (format!("(logs unavailable: {e})").into_bytes(), Vec::new()),
        };
        rec.status = JobStatus::Stopped;
        rec.stopped_ms = Some(config.clock.now_ms());
        rec.exit_code = inspected.as_ref().and_then(|i| i.exit_code);
        rec.oom_killed = inspected.as_ref().is_some_and(|i| i.oom_killed);
        let name = rec.spec.definition_name();
        let tail = log_tail(&combined);
        let exit = rec.exit_code.unwrap_or(-1);
        let (stop_code, reason, outcome) = match rec.stop_code {
            Some(StopCode::ServiceSchedulerInitiated) => {
                let secs = rec.timeout_seconds.unwrap_or(0);
                (
                    StopCode::ServiceSchedulerInitiated,
                    format!("Stopped by Stepyard: timed out after {secs}s"),
                    Outcome::Failed {
                        error: "States.Timeout".into(),
                        cause: format!(
                            "container task {name} timed out after {secs}s and was stopped (SIGTERM, then SIGKILL after {}s).{tail}",
                            config.stop_grace.as_secs()
                        ),
                    },
                )
            }
            Some(StopCode::UserInitiated) => (
                StopCode::UserInitiated,
                "Task stopped by user".to_string(),
                Outcome::Failed {
                    error: "States.TaskFailed".into(),
                    cause: format!(
                        "container task {name} was stopped by a user (exit code {exit}).{tail}"
                    ),
                },
            ),
            _ if rec.oom_killed => {
                let limit = rec
                    .spec
                    .memory_mib
                    .map(|m| format!(" (limit {m} MiB)"))
                    .unwrap_or_default();
                (
                    StopCode::EssentialContainerExited,
                    "OutOfMemoryError: Container killed due to memory usage".to_string(),
                    Outcome::Failed {
                        error: "States.TaskFailed".into(),
                        cause: format!(
                            "container task {name} was killed for using too much memory{limit}: OutOfMemoryError, exit code {exit}.{tail}"
                        ),
                    },
                )
            }
            _ if exit != 0 => (
                StopCode::EssentialContainerExited,
                "Essential container in task exited".to_string(),
                Outcome::Failed {
                    error: "States.TaskFailed".into(),
                    cause: format!("container task {name} exited with code {exit}.{tail}"),
                },
            ),
            _ => {
                let outcome = match result_of(rec.spec.result, file.as_deref(), &stdout) {
                    Ok(result) => Outcome::Succeeded { result },
                    Err(problem) => Outcome::Failed {
                        error: "States.TaskFailed".into(),
                        cause: format!("container task {name} exited with code 0, but {problem}"),
                    },
                };
                (
                    StopCode::EssentialContainerExited,
                    "Essential container in task exited".to_string(),
                    outcome,
                )
            }
        };
        rec.stop_code = Some(stop_code);
        rec.stopped_reason = Some(reason);
        rec.outcome = Some(outcome);
        self.finish(rec, tx, docker, Some(container), combined)
            .await;
    }

    async fn finish(
        &self,
        rec: &mut JobRecord,
        tx: &watch::Sender<JobRecord>,
        docker: &DockerClient,
        container: Option<&str>,
        logs: Vec<u8>,
    ) {
        if let Err(e) = self.inner.store.finish_job(rec, &logs).await {
            tracing::error!(job = %rec.id, error = %e, "cannot store a job's outcome");
        }
        // Logs are kept: the container can go (before anyone hears of the end, so a finished
        // job never has a container). A failed removal is retried by `recover`.
        if let Some(container) = container
            && let Err(e) = docker.remove(container).await
        {
            tracing::warn!(job = %rec.id, error = %e, "cannot remove a finished container");
        }
        tx.send_replace(rec.clone());
        self.report_callback_failure(rec);
    }

    fn report_callback_failure(&self, rec: &JobRecord) {
        if rec.mode != JobMode::Callback || rec.started_ms.is_none() {
            return;
        }
        if let (Some(token), Some(Outcome::Failed { error, cause })) =
            (&rec.task_token, &rec.outcome)
        {
            let _ = self.inner.callbacks.send(CallbackFailure {
                task_token: token.clone(),
                error: error.clone(),
                cause: cause.clone(),
            });
        }
    }
}

/// The last lines of the logs, for a failure's cause (empty when there are none).
fn log_tail(logs: &[u8]) -> String {
    let text = String::from_utf8_lossy(logs);
    let text = text.trim_end();
    if text.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut tail = lines[lines.len().saturating_sub(CAUSE_LOG_LINES)..].join("\n");
    if tail.len() > CAUSE_LOG_BYTES {
        let mut cut = tail.len() - CAUSE_LOG_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = tail[cut..].to_string();
    }
    format!(" Last log lines:\n{tail}")
}

/// The container's result per its definition's [`ResultSource`].
fn result_of(
    source: ResultSource,
    file: Option<&[u8]>,
    stdout: &[u8],
) -> std::result::Result<Value, String> {
    let from_file = || -> Option<std::result::Result<Value, String>> {
        file.map(|bytes| {
            serde_json::from_slice(bytes)
                .map_err(|e| format!("{RESULT_FILE} is not valid JSON: {e}"))
        })
    };
    let from_stdout = || last_json_line(stdout);
    Ok(match source {
        ResultSource::None => Value::Null,
        ResultSource::File => from_file().transpose()?.unwrap_or(Value::Null),
        ResultSource::Stdout => from_stdout().unwrap_or(Value::Null),
        ResultSource::Auto => match from_file() {
            Some(r) => r?,
            None => from_stdout().unwrap_or(Value::Null),
        },
    })
}

/// The last stdout line that is a JSON object or array.
fn last_json_line(stdout: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(stdout);
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        if line.starts_with('{') || line.starts_with('[') {
            serde_json::from_str(line).ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_from_the_file_then_stdout() {
        let stdout = b"starting\n{\"n\":1}\nnot json {\n{\"n\":2}\ndone\n";
        assert_eq!(
            result_of(ResultSource::Auto, None, stdout),
            Ok(serde_json::json!({"n": 2}))
        );
        assert_eq!(
            result_of(ResultSource::Auto, Some(b"[1]"), stdout),
            Ok(serde_json::json!([1]))
        );
        assert_eq!(result_of(ResultSource::File, None, stdout), Ok(Value::Null));
        assert!(
            result_of(ResultSource::Auto, Some(b"{oops"), stdout)
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert_eq!(
            result_of(ResultSource::Stdout, None, b"42\n"),
            Ok(Value::Null)
        );
    }

    #[test]
    fn invocations_map_to_stable_job_ids() {
        let a = job_id_for_invocation("inv-1");
        assert_eq!(a, job_id_for_invocation("inv-1"));
        assert_ne!(a, job_id_for_invocation("inv-2"));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn log_tails_are_short() {
        let logs: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(logs.as_bytes());
        assert!(
            tail.contains("line 99") && !tail.contains("line 79\n"),
            "{tail}"
        );
    }
}
