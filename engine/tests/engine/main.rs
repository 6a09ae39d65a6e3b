//! The engine's integration tests: one binary, real sled in a temp dir, a manual clock, no sleeps.

mod common;

mod basics;
mod bus;
mod crash;
mod flow;
mod lifecycle;
mod tasks;
mod variables;
