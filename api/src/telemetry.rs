//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sets up logging for `stepyard serve`. Lines are written by a background thread, in batches:
/// one unbuffered `write` per request line cost a STANDARD start about 50 us of server CPU
/// (the log file's writes queue behind the store's fsyncs on the same disk). Lines are never
/// dropped (the channel blocks when full); keep the guard until exit, dropping it writes the
/// rest.
pub fn init() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("stepyard-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    // A second init (tests that run several servers in one process) is harmless, so its error is dropped.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    guard
}
