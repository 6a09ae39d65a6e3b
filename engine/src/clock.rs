//! Injected time and identifiers: the engine never reads the system clock or makes random ids
//! anywhere else, so tests drive time with [`ManualClock`] instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future the clock hands out; resolves when the clock reaches a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Wall-clock time in milliseconds since the Unix epoch, and a way to wait for it to pass a point.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves once `now_ms() >= deadline_ms` (it may also resolve earlier: callers re-check).
    fn sleep_until(&self, deadline_ms: u64) -> Sleep;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to: [`ManualClock::advance`]. Cheap to clone; clones share time.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    now: AtomicU64,
    moved: tokio::sync::watch::Sender<u64>,
}

impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        let (moved, _) = tokio::sync::watch::channel(start_ms);
        ManualClock {
            inner: Arc::new(ManualInner {
                now: AtomicU64::new(start_ms),
                moved,
            }),
        }
    }

    /// Moves time forward and wakes everything waiting on a deadline now passed.
    pub fn advance(&self, by: Duration) {
        let now = self
            .inner
            .now
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst)
            + by.as_millis() as u64;
        self.inner.moved.send_replace(now);
    }
}

impl Default for ManualClock {
    /// 2026-01-01T00:00:00Z.
    fn default() -> Self {
        ManualClock::new(1_767_225_600_000)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.inner.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let mut moved = self.inner.moved.subscribe();
        Box::pin(async move {
            loop {
                if *moved.borrow_and_update() >= deadline_ms {
                    return;
                }
                if moved.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

/// Makes the unique ids the engine needs: execution names, task tokens, invocation ids, revisions.
pub trait IdGenerator: Send + Sync + 'static {
    /// A new id, unique for the lifetime of the data folder.
    fn new_id(&self) -> String;
}

/// Time-ordered random UUIDs (v7: a millisecond timestamp, then 74 random bits).
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidGenerator;

impl IdGenerator for UuidGenerator {
    fn new_id(&self) -> String {
        // Generated execution names become store keys: ids that grow with time land next to
        // each other in sled's tree, so a commit group dirties a few leaves instead of one per
        // execution (random v4 keys made every insert rewrite a different page).
        uuid::Uuid::now_v7().to_string()
    }
}
