//! Worker implementations (functions, containers, notifications) behind the engine's traits.

pub mod containers;
pub mod functions;
