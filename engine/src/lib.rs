//! Stepyard's durable core.
