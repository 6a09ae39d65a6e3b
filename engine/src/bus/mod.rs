//! The event bus (the EventBridge idea): buses, rules with event patterns or schedules,
//! targets, durable deliveries with retries and dead letters, archives and replays.
pub mod pattern;
pub mod transform;

mod model;
mod schedule;
mod service;
mod store;

pub use model::*;
pub use schedule::{Schedule, ScheduleError};
pub use service::{
    Bus, BusConfig, DEFAULT_BUS, DeliveryError, HttpCall, HttpSender, MAX_ENTRIES,
    MAX_ENTRIES_BYTES, MAX_TARGETS, TargetCall, TargetInvoker,
};
