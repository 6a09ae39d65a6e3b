//! Stepyard's durable core: state machines, executions, history events, timers, task tokens
//! and activities, on an embedded sled store.
//!
//! ```no_run
//! # async fn demo() -> stepyard_engine::Result<()> {
//! use stepyard_engine::*;
//! let engine = Engine::open(EngineConfig::new("./data")).await?;
//! engine.register_function("double", |input| async move {
//!     Ok(serde_json::json!(input["n"].as_i64().unwrap_or(0) * 2))
//! });
//! let sm = engine.create_state_machine(CreateStateMachine {
//!     name: "demo".into(),
//!     definition: r#"{"StartAt":"D","States":{"D":{"Type":"Task",
//!         "Resource":"arn:aws:lambda:us-east-1:123456789012:function:double","End":true}}}"#.into(),
//!     ..Default::default()
//! }).await?;
//! let started = engine.start_execution(StartExecution {
//!     state_machine_arn: sm.arn, input: Some(r#"{"n":21}"#.into()), ..Default::default()
//! }).await?;
//! let done = engine.await_execution(&started.execution_arn).await?;
//! assert_eq!(done.output.as_deref(), Some("42"));
//! engine.shutdown().await
//! # }
//! ```
//!
//! Boundary: the engine knows nothing of HTTP; `stepyard-api` maps [`Error`] variants to AWS's
//! error types. Workers (function runtimes, containers) implement [`TaskWorker`].

mod arn;
pub mod bus;
mod clock;
mod engine;
mod error;
mod history;
mod interp;
mod model;
mod records;
mod store;
mod tags;
pub mod topics;
mod worker;

pub use clock::{Clock, IdGenerator, ManualClock, Sleep, SystemClock, UuidGenerator};
pub use engine::{Engine, EngineConfig};
pub use error::{Error, Result};
pub use history::{HistoryEvent, HistoryEventType};
pub use model::*;
pub use worker::{FnWorker, TaskError, TaskRequest, TaskWorker, WorkerMatch};
