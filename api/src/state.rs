//! What every handler shares: cheap to clone.

use std::sync::Arc;

use stepyard_engine::bus::{Bus, BusConfig};
use stepyard_engine::topics::Topics;
use stepyard_engine::{Engine, EngineConfig};
use stepyard_workers::containers::ContainerRuntime;
use stepyard_workers::events::ReqwestHttpSender;
use stepyard_workers::functions::Functions;

use crate::config::ServerConfig;
use crate::limits::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    engine: Engine,
    bus: Bus,
    topics: Topics,
    containers: ContainerRuntime,
    functions: Functions,
    rate_limiter: RateLimiter,
}

impl AppState {
    /// Opens the engine on the configured data folder (resuming every open execution) and the
    /// container runtime that serves `ecs:runTask`.
    pub async fn open(config: ServerConfig) -> anyhow::Result<Self> {
        // Before the engine opens: it registers its counters with the recorder on first use.
        crate::metrics::handle();
        // Paused until every worker is registered: after a restart, a timer that fires at once
        // must not dispatch to a worker that is not there yet.
        let engine = Engine::open(EngineConfig {
            region: config.region.clone(),
            account: config.account.clone(),
            start_paused: true,
            ..EngineConfig::new(config.data_dir.clone())
        })
        .await?;
        let containers = crate::routes::tasks_containers::open_runtime(&config, &engine)?;
        let functions = crate::routes::functions::open_runtime(&config, &engine)?;
        let bus = Bus::open(
            &engine,
            BusConfig {
                http: Some(Arc::new(ReqwestHttpSender::default())),
                ..BusConfig::default()
            },
        )
        .await?;
        engine.register_worker("arn:aws:states:::events:putEvents", Arc::new(bus.clone()));
        let topics = crate::routes::topics::open_topics(&config, &engine, &bus).await?;
        engine.start()?;
        Ok(AppState::with_engine(
            config, engine, bus, topics, containers, functions,
        ))
    }

    pub fn with_engine(
        config: ServerConfig,
        engine: Engine,
        bus: Bus,
        topics: Topics,
        containers: ContainerRuntime,
        functions: Functions,
    ) -> Self {
        crate::metrics::handle();
        let rate_limiter = RateLimiter::new(config.rate_limit_per_second);
        AppState {
            inner: Arc::new(Inner {
                config,
                engine,
                bus,
                topics,
                containers,
                functions,
                rate_limiter,
            }),
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    pub fn topics(&self) -> &Topics {
        &self.inner.topics
    }

    pub fn containers(&self) -> &ContainerRuntime {
        &self.inner.containers
    }

    pub fn functions(&self) -> &Functions {
        &self.inner.functions
    }

    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.rate_limiter
    }

    fn arn(&self, kind: &str, rest: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:{kind}:{rest}",
            self.inner.config.region, self.inner.config.account
        )
    }

    pub fn state_machine_arn(&self, name: &str) -> String {
        self.arn("stateMachine", name)
    }

    pub fn execution_arn(&self, state_machine: &str, execution: &str) -> String {
        self.arn("execution", &format!("{state_machine}:{execution}"))
    }

    pub fn activity_arn(&self, name: &str) -> String {
        self.arn("activity", name)
    }

    /// Stops the engine's loops and flushes the store.
    pub async fn close(&self) -> Result<(), stepyard_engine::Error> {
        self.inner.topics.shutdown().await;
        self.inner.bus.shutdown().await;
        if let Err(e) = self.inner.functions.shutdown().await {
            tracing::warn!(error = %e, "stopping the function sandboxes");
        }
        self.inner.engine.clone().shutdown().await
    }
}
