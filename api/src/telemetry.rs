//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in memory before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Past this many buffered bytes the writer thread is woken at once.
const WAKE_AT: usize = 256 * 1024;
/// Past this many, a logging thread writes the batch itself: memory stays bounded and no line is dropped.
const WRITE_AT: usize = 8 * 1024 * 1024;

/// Sets up logging for `stepyard serve`. Request threads append each line to a shared buffer and a
/// background thread writes it out every 20 ms. One `write` per line cost a STANDARD start about
/// 50 us of server CPU (the log file's writes queue behind the store's fsyncs on the same disk);
/// a channel to a writer thread (tracing-appender's non-blocking writer) still woke that thread
/// and wrote every line or two (0.55 `write`s and 0.2 `sched_yield`s per request). Lines are
/// never dropped; keep the guard until exit, dropping it writes the rest.
pub fn init() -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = batched(std::io::stderr());
    // A second init (tests that run several servers in one process) is harmless, so its error is dropped.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    guard
}

struct Shared {
    state: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves only bytes behind: keep logging.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The [`MakeWriter`] handed to `tracing`: every line goes into the shared buffer.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

/// Writes what is buffered and stops the writer thread when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A batching writer over `out` and the guard that drains it.
pub fn batched(out: impl Write + Send + 'static) -> (BatchedWriter, LogGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Pending::default()),
        wake: Condvar::new(),
    });
    let out: Arc<Mutex<Box<dyn Write + Send>>> = Arc::new(Mutex::new(Box::new(out)));
    let writer = BatchedWriter {
        shared: shared.clone(),
        out: out.clone(),
    };
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("stepyard-log".into())
            .spawn(move || write_batches(&shared, &out))
            .ok()
    };
    (writer, LogGuard { shared, thread })
}

fn write_batches(shared: &Shared, out: &Mutex<Box<dyn Write + Send>>) {
    let mut spare = Vec::new();
    loop {
        let mut pending = shared.lock();
        if !pending.closed && pending.buf.len() < WAKE_AT {
            pending = shared
                .wake
                .wait_timeout(pending, FLUSH_EVERY)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        std::mem::swap(&mut pending.buf, &mut spare);
        let closed = pending.closed;
        // The output is locked before the buffer is let go: a logging thread that writes a batch
        // itself takes the same two locks in the same order, so batches go out in order.
        let mut out = lock_out(out);
        drop(pending);
        if !spare.is_empty() {
            write_to(&mut out, &spare);
            spare.clear();
        }
        if closed {
            return;
        }
    }
}

fn lock_out(out: &Mutex<Box<dyn Write + Send>>) -> MutexGuard<'_, Box<dyn Write + Send>> {
    out.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_to(out: &mut Box<dyn Write + Send>, bytes: &[u8]) {
    // Nowhere to report a failing stderr: the lines are dropped, the server goes on.
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

impl Write for BatchedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.closed {
            write_to(&mut lock_out(&self.out), bytes);
            return Ok(bytes.len());
        }
        pending.buf.extend_from_slice(bytes);
        let len = pending.buf.len();
        if len >= WRITE_AT {
            // Still holding the buffer's lock: see `write_batches` on the order of the two locks.
            write_to(&mut lock_out(&self.out), &pending.buf);
            pending.buf.clear();
        } else if len >= WAKE_AT && len - bytes.len() < WAKE_AT {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` that hands what it got to the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        let mut w = writer.make_writer();
                        w.write_all(
                            format!("t{t} line {i:05} {}\n", "x".repeat(i % 1000)).as_bytes(),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000, "no line lost or split");
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter(|line| line.starts_with(&format!("t{t} ")))
                .map(|line| line[8..13].parse().unwrap())
                .collect();
            assert_eq!(
                mine,
                (0..5000).collect::<Vec<_>>(),
                "thread {t}'s lines in order"
            );
        }
        // After the guard is gone, a late line is written straight through, not lost.
        writer.make_writer().write_all(b"late\n").unwrap();
        assert!(
            String::from_utf8(sink.0.lock().unwrap().clone())
                .unwrap()
                .ends_with("late\n")
        );
    }

    /// A `Write` that hands every write to the test through a channel.
    struct Channel(std::sync::mpsc::Sender<Vec<u8>>);

    impl Write for Channel {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_buffered_line_is_written_without_waiting_for_the_guard() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (writer, _guard) = batched(Channel(tx));
        writer.make_writer().write_all(b"one line\n").unwrap();
        // The writer thread's timer, not the guard (still alive), writes it.
        let written = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the line was never written");
        assert_eq!(written, b"one line\n");
    }
}
