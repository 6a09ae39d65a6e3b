//! [`Functions`]: the handle the server and the engine use: definitions, invocations, logs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use serde_json::Value;

use crate::functions::http::{self, HttpGate};
use crate::functions::logs::InvocationLog;
use crate::functions::pool::{Invocation, Pool, PoolSettings, Rejected, now_ms};
use crate::functions::spec::{Function, FunctionRuntime, FunctionSpec, validate_name};
use crate::functions::store::Store;
use crate::functions::{Error, FunctionsConfig, LATEST, Result};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A handler's failure, as Lambda returns it: the error name and the error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// `errorType`: what Retry/Catch `ErrorEquals` match.
    pub error_type: String,
    /// The JSON error object (`{"errorMessage", "errorType", "requestId", "stackTrace"}`).
    pub payload: Bytes,
}

impl FunctionError {
    /// An error Stepyard reports itself (timeouts, crashes), in Lambda's words.
    pub(crate) fn new(error_type: &str, request_id: &str, message: &str) -> FunctionError {
        let message = if request_id.is_empty() {
            message.to_string()
        } else {
            format!("RequestId: {request_id} Error: {message}")
        };
        let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
        FunctionError {
            error_type: error_type.to_string(),
            payload: Bytes::from(body.to_string()),
        }
    }

    /// An error a runtime posted: the name is the body's `errorType`, else the
    /// `Lambda-Runtime-Function-Error-Type` header, else `Unhandled`. An empty `requestId`
    /// is filled in, as Lambda does.
    pub(crate) fn from_runtime(
        header: Option<String>,
        body: Bytes,
        request_id: &str,
    ) -> FunctionError {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut object)) => {
                let error_type = object
                    .get("errorType")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(header)
                    .unwrap_or_else(|| "Unhandled".into());
                let missing = object
                    .get("requestId")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                let payload =
                    if missing && !request_id.is_empty() && object.contains_key("requestId") {
                        object.insert("requestId".into(), Value::String(request_id.into()));
                        Bytes::from(Value::Object(object).to_string())
                    } else {
                        body
                    };
                FunctionError {
                    error_type,
                    payload,
                }
            }
            _ => {
                let error_type = header.unwrap_or_else(|| "Unhandled".into());
                let text = String::from_utf8_lossy(&body).into_owned();
                let object = serde_json::json!({ "errorType": error_type, "errorMessage": text });
                FunctionError {
                    error_type,
                    payload: Bytes::from(object.to_string()),
                }
            }
        }
    }

    /// The error object as text: a Task state's `Cause`.
    pub fn cause(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

type Reply = (
    std::result::Result<Bytes, FunctionError>,
    InvocationLog,
    Option<std::time::Duration>,
);

/// Which Task state made an invocation (for the logs' index by execution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOrigin {
    pub execution_arn: String,
    pub state_name: String,
    pub attempt: u32,
}

/// One call of a function.
#[derive(Debug, Clone, Default)]
pub struct Invoke {
    /// The event (JSON text).
    pub payload: Bytes,
    /// `Lambda-Runtime-Client-Context` (JSON text).
    pub client_context: Option<String>,
    /// A caller-chosen request id (the engine's stable invocation id); else a new UUID.
    pub request_id: Option<String>,
    pub origin: Option<TaskOrigin>,
}

/// A finished invocation.
#[derive(Debug, Clone)]
pub struct InvokeOutput {
    pub request_id: String,
    pub executed_version: String,
    /// The handler's result (JSON text) or its error.
    pub result: std::result::Result<Bytes, FunctionError>,
    pub log: InvocationLog,
    /// From handing the event to the handler until its answer arrived (for `process`: the
    /// handler plus its runtime client's own work; for `http`: the HTTP call). The rest of an
    /// invocation's time is Stepyard's.
    pub handler_time: Option<std::time::Duration>,
}

/// A function's warm pool right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Sandboxes alive (starting, idle or busy).
    pub sandboxes: usize,
    pub idle: usize,
    pub queued: usize,
    /// Sandboxes started since the pool was made (cold starts).
    pub cold_starts: u64,
}

/// Functions and their runtimes. Cheap to clone.
#[derive(Clone)]
pub struct Functions {
    inner: Arc<Inner>,
}

struct Inner {
    config: FunctionsConfig,
    store: Store,
    settings: Arc<PoolSettings>,
    functions: RwLock<HashMap<String, Arc<Function>>>,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    gates: Mutex<HashMap<String, Arc<HttpGate>>>,
    http: reqwest::Client,
    /// Serialises create/update/delete.
    writes: tokio::sync::Mutex<()>,
}

impl Functions {
    /// Opens the store; sandboxes start on demand.
    pub fn open(config: FunctionsConfig) -> Result<Functions> {
        let store = Store::open(&config.state_dir, config.keep_logs)?;
        let functions = store
            .functions()?
            .into_iter()
            .map(|f| (f.spec.name.clone(), Arc::new(f)))
            .collect();
        let settings = Arc::new(PoolSettings {
            runtime_api: config.runtime_api.clone(),
            region: config.region.clone(),
            default_concurrency: config.default_concurrency,
            max_queue: config.max_queue,
            idle_timeout: config.idle_timeout,
        });
        Ok(Functions {
            inner: Arc::new(Inner {
                config,
                store,
                settings,
                functions: RwLock::new(functions),
                pools: Mutex::new(HashMap::new()),
                gates: Mutex::new(HashMap::new()),
                http: reqwest::Client::new(),
                writes: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn arn_of(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.inner.config.region, self.inner.config.account
        )
    }

    // ---- definitions ---------------------------------------------------------------------

    pub async fn create(&self, spec: FunctionSpec) -> Result<Function> {
        spec.validate()?;
        let _writes = self.inner.writes.lock().await;
        if self.cached(&spec.name).is_some() {
            return Err(Error::AlreadyExists(spec.name));
        }
        let now = now_ms();
        let function = Function {
            arn: self.arn_of(&spec.name),
            spec,
            revision: 1,
            created_ms: now,
            updated_ms: now,
        };
        self.inner.store.put_function(&function).await?;
        self.write_cache(function.clone());
        Ok(function)
    }

    /// Replaces a function's spec; running invocations finish on the old revision.
    pub async fn update(&self, name: &str, spec: FunctionSpec) -> Result<Function> {
        if spec.name != name {
            return Err(Error::InvalidFunction {
                field: "name",
                message: format!("'{}' differs from the function '{name}'", spec.name),
            });
        }
        spec.validate()?;
        let _writes = self.inner.writes.lock().await;
        let old = self.get(name)?;
        let function = Function {
            spec,
            arn: old.arn,
            revision: old.revision + 1,
            created_ms: old.created_ms,
            updated_ms: now_ms(),
        };
        self.inner.store.put_function(&function).await?;
        self.write_cache(function.clone());
        self.retire(name);
        Ok(function)
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let _writes = self.inner.writes.lock().await;
        if !self.inner.store.delete_function(name).await? {
            return Err(Error::NotFound(self.arn_of(name)));
        }
        self.inner
            .functions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.retire(name);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<Function> {
        self.cached(name)
            .map(|f| (*f).clone())
            .ok_or_else(|| Error::NotFound(self.arn_of(name)))
    }

    /// Every function, by name.
    pub fn list(&self) -> Vec<Function> {
        let mut all: Vec<Function> = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|f| (**f).clone())
            .collect();
        all.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        all
    }

    fn cached(&self, name: &str) -> Option<Arc<Function>> {
        self.inner
            .functions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn write_cache(&self, function: Function) {
        self.inner
            .functions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(function.spec.name.clone(), Arc::new(function));
    }

    /// The pool of an older revision takes no more work; its sandboxes stop once idle.
    fn retire(&self, name: &str) {
        if let Some(pool) = lock(&self.inner.pools).remove(name) {
            pool.close();
        }
        lock(&self.inner.gates).remove(name);
    }

    fn pool(&self, function: &Arc<Function>) -> Arc<Pool> {
        let mut pools = lock(&self.inner.pools);
        match pools.get(&function.spec.name) {
            Some(pool) if pool.function.revision == function.revision => pool.clone(),
            _ => {
                let pool = Pool::new(function.clone(), self.inner.settings.clone());
                if let Some(old) = pools.insert(function.spec.name.clone(), pool.clone()) {
                    old.close();
                }
                pool
            }
        }
    }

    fn gate(&self, function: &Function) -> Arc<HttpGate> {
        lock(&self.inner.gates)
            .entry(function.spec.name.clone())
            .or_insert_with(|| {
                let limit = function
                    .spec
                    .reserved_concurrency
                    .unwrap_or(self.inner.config.default_concurrency);
                Arc::new(HttpGate::new(
                    limit.max(1) as usize,
                    self.inner.config.max_queue,
                ))
            })
            .clone()
    }

    // ---- invocations ---------------------------------------------------------------------

    /// Runs the function and waits for its answer (`RequestResponse`).
    pub async fn invoke(&self, name: &str, invoke: Invoke) -> Result<InvokeOutput> {
        validate_name(name).map_err(|_| Error::NotFound(self.arn_of(name)))?;
        let function = self
            .cached(name)
            .ok_or_else(|| Error::NotFound(self.arn_of(name)))?;
        let request_id = invoke
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (result, log, handler_time) = match &function.spec.runtime {
            FunctionRuntime::Process { .. } => {
                self.invoke_process(function.clone(), request_id.clone(), invoke)
                    .await?
            }
            FunctionRuntime::Http { url } => {
                self.invoke_http(&function, url, request_id.clone(), invoke)
                    .await?
            }
        };
        Ok(InvokeOutput {
            request_id,
            executed_version: LATEST.into(),
            result,
            log,
            handler_time,
        })
    }

    /// Queues the function and returns its request id at once (`InvocationType: Event`).
    pub fn invoke_async(&self, name: &str, mut invoke: Invoke) -> Result<String> {
        if self.cached(name).is_none() {
            return Err(Error::NotFound(self.arn_of(name)));
        }
        let request_id = invoke
            .request_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        let this = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            if let Err(e) = this.invoke(&name, invoke).await {
                tracing::warn!(function = %name, error = %e, "an asynchronous invocation failed to run");
            }
        });
        Ok(request_id)
    }

    async fn invoke_process(
        &self,
        function: Arc<Function>,
        request_id: String,
        invoke: Invoke,
    ) -> Result<Reply> {
        // A pool closed by an update between lookup and submit: use the new one.
        for _ in 0..2 {
            let function = self.cached(&function.spec.name).unwrap_or(function.clone());
            let pool = self.pool(&function);
            let (inv, answer) = Invocation::new(
                request_id.clone(),
                invoke.payload.clone(),
                invoke.client_context.clone(),
                invoke.origin.clone(),
                function.clone(),
                self.inner.store.clone(),
            );
            match pool.submit(inv) {
                Ok(()) => {
                    return match answer.await {
                        Ok(answer) => Ok((answer.outcome, answer.log, answer.handler_time)),
                        Err(_) => Ok((
                            Err(FunctionError::new(
                                "Runtime.ExitError",
                                &request_id,
                                "the sandbox was stopped (server shutdown)",
                            )),
                            empty_log(&function, &request_id),
                            None,
                        )),
                    };
                }
                Err(Rejected::Throttled(message)) => return Err(Error::TooManyRequests(message)),
                Err(Rejected::Closed) => {
                    let mut pools = lock(&self.inner.pools);
                    if pools
                        .get(&function.spec.name)
                        .is_some_and(|p| Arc::ptr_eq(p, &pool))
                    {
                        pools.remove(&function.spec.name);
                    }
                }
            }
        }
        Err(Error::NotFound(self.arn_of(&function.spec.name)))
    }

    async fn invoke_http(
        &self,
        function: &Arc<Function>,
        url: &str,
        request_id: String,
        invoke: Invoke,
    ) -> Result<Reply> {
        let gate = self.gate(function);
        let started_ms = now_ms();
        let started = std::time::Instant::now();
        let mut lines = vec![format!("START RequestId: {request_id} Version: {LATEST}")];
        let outcome = http::invoke(
            &self.inner.http,
            &gate,
            function,
            url,
            &request_id,
            invoke.payload,
            &mut lines,
        )
        .await
        .map_err(Error::TooManyRequests)?;
        lines.push(format!("END RequestId: {request_id}"));
        lines.push(format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms",
            started.elapsed().as_secs_f64() * 1000.0
        ));
        let log = InvocationLog {
            request_id: request_id.clone(),
            function: function.spec.name.clone(),
            started_ms,
            ended_ms: Some(now_ms()),
            error: outcome.as_ref().err().map(|e| e.error_type.clone()),
            execution_arn: invoke.origin.as_ref().map(|o| o.execution_arn.clone()),
            state_name: invoke.origin.as_ref().map(|o| o.state_name.clone()),
            attempt: invoke.origin.as_ref().map(|o| o.attempt),
            lines,
            truncated: false,
        };
        if let Err(e) = self.inner.store.put_log(&log) {
            tracing::warn!(%request_id, error = %e, "cannot store invocation logs");
        }
        Ok((outcome, log, Some(started.elapsed())))
    }

    // ---- logs and state ------------------------------------------------------------------

    /// One invocation's logs.
    pub fn logs(&self, name: &str, request_id: &str) -> Result<InvocationLog> {
        match self.inner.store.log(request_id)? {
            Some(log) if log.function == name => Ok(log),
            _ => Err(Error::InvocationNotFound(request_id.to_string())),
        }
    }

    /// The invocations Task states of this execution made, oldest first.
    pub fn invocations_of_execution(&self, execution_arn: &str) -> Result<Vec<InvocationLog>> {
        self.inner.store.logs_of_execution(execution_arn)
    }

    pub fn pool_stats(&self, name: &str) -> PoolStats {
        lock(&self.inner.pools)
            .get(name)
            .map(|pool| {
                let (sandboxes, idle, queued, cold_starts) = pool.stats();
                PoolStats {
                    sandboxes,
                    idle,
                    queued,
                    cold_starts,
                }
            })
            .unwrap_or_default()
    }

    /// Waits until the function's live sandbox count satisfies `done` (scaling, reaping).
    pub async fn wait_for_sandboxes(&self, name: &str, done: impl Fn(usize) -> bool) {
        let pool = lock(&self.inner.pools).get(name).cloned();
        if let Some(pool) = pool {
            let mut live = pool.live.subscribe();
            let _ = live.wait_for(|n| done(*n)).await;
        }
    }

    /// Stops every sandbox and flushes the store (server shutdown).
    pub async fn shutdown(&self) -> Result<()> {
        let pools: Vec<Arc<Pool>> = lock(&self.inner.pools).drain().map(|(_, p)| p).collect();
        for pool in pools {
            pool.kill_all();
        }
        self.inner.store.flush().await
    }
}

fn empty_log(function: &Function, request_id: &str) -> InvocationLog {
    InvocationLog {
        request_id: request_id.to_string(),
        function: function.spec.name.clone(),
        started_ms: now_ms(),
        ended_ms: Some(now_ms()),
        error: None,
        execution_arn: None,
        state_name: None,
        attempt: None,
        lines: Vec::new(),
        truncated: false,
    }
}
