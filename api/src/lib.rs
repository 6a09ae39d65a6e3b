//! The Stepyard server: the only crate that knows HTTP.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it with
//! `app(state).oneshot(request)` and never need a socket; [`server::run`] binds it to one.

pub mod aws;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod runtime_api;
pub mod server;
pub mod state;
pub mod telemetry;

pub use routes::{app, openapi};
pub use state::AppState;
