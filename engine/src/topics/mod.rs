//! Topics and notifications (the SNS idea): topics, subscriptions of kinds `http`/`https`
//! (SNS's notification JSON), `email` (through an SMTP relay), `function` and `eventbus`, with
//! optional filter policies on message attributes; Publish committed before it answers;
//! durable deliveries with per-subscription back-off and a dead-letter store.
//!
//! Storage is the `topics.v1` tree of the engine's database (key layout in `store.rs`). The
//! network is behind [`NotificationSender`] (implemented in `stepyard-workers`), event buses
//! behind [`BusSink`] (implemented by `stepyard-api` with the bus).

mod model;
mod service;
mod store;
mod worker;

pub use model::*;
pub use service::{
    BUS_EVENT_DETAIL_TYPE, BUS_EVENT_SOURCE, BusSink, DEFAULT_EMAIL_SUBJECT, DeliveryError,
    MAX_ATTRIBUTES, MAX_MESSAGE_BYTES, NotificationSender, Topics, TopicsConfig,
};
pub use worker::SNS_PUBLISH;
