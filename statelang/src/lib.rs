//! The Amazon States Language as data: parse, validate and evaluate.
//!
//! Boundary: this crate is pure. No I/O, no clock, no randomness; everything
//! that varies comes in through arguments.
