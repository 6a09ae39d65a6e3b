//! Worker implementations (functions, containers, notifications) behind the engine's traits.

pub mod containers;
pub mod events;
pub mod functions;
pub mod notify;
