//! Per-engine load and latency: what the strategies predict from.
//!
//! - [`Latency`]: an exponentially weighted moving average of observed
//!   latency per query fingerprint (bounded LRU) and for the engine overall.
//! - [`Load`]: outstanding statements, the concurrency limit (a semaphore
//!   whose permit lives as long as the statement's result stream) and the
//!   queue in front of it, bounded in length and in waiting time.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lru::LruCache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, Result};

/// Weight of the newest observation in the moving averages.
const ALPHA: f64 = 0.3;
/// Fingerprints remembered per engine.
const SHAPES: usize = 4096;

/// A moving average with its number of observations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ewma {
    /// The average, in seconds.
    pub seconds: f64,
    /// The average bytes returned.
    pub bytes: f64,
    /// How many observations it is made of.
    pub samples: u64,
}

impl Ewma {
    fn observe(&mut self, seconds: f64, bytes: f64) {
        if self.samples == 0 {
            self.seconds = seconds;
            self.bytes = bytes;
        } else {
            self.seconds = ALPHA * seconds + (1.0 - ALPHA) * self.seconds;
            self.bytes = ALPHA * bytes + (1.0 - ALPHA) * self.bytes;
        }
        self.samples = self.samples.saturating_add(1);
    }
}

/// Observed latency of one engine.
#[derive(Debug)]
pub struct Latency {
    overall: Mutex<Ewma>,
    shapes: Mutex<LruCache<u64, Ewma>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            overall: Mutex::new(Ewma::default()),
            shapes: Mutex::new(LruCache::new(
                NonZeroUsize::new(SHAPES).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl Latency {
    /// Records one statement's latency and the bytes it returned.
    pub fn observe(&self, fingerprint: Option<u64>, elapsed: Duration, bytes: usize) {
        let seconds = elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // an estimate
        let bytes = bytes as f64;
        if let Ok(mut overall) = self.overall.lock() {
            overall.observe(seconds, bytes);
        }
        if let (Some(id), Ok(mut shapes)) = (fingerprint, self.shapes.lock()) {
            shapes
                .get_or_insert_mut(id, Ewma::default)
                .observe(seconds, bytes);
        }
    }

    /// The average for this query shape, if the engine has run it.
    pub fn for_shape(&self, fingerprint: u64) -> Option<Ewma> {
        self.shapes
            .lock()
            .ok()
            .and_then(|mut shapes| shapes.get(&fingerprint).copied())
    }

    /// The engine's overall average, if it has run anything.
    pub fn overall(&self) -> Option<Ewma> {
        self.overall
            .lock()
            .ok()
            .map(|e| *e)
            .filter(|e| e.samples > 0)
    }
}

/// Concurrency of one engine.
#[derive(Debug)]
pub struct Load {
    outstanding: Arc<AtomicUsize>,
    queued: AtomicUsize,
    limit: Option<Arc<Semaphore>>,
    max_concurrency: usize,
}

/// Held while a statement runs on an engine: counts it as outstanding and
/// holds its concurrency permit until dropped (with the result stream).
#[derive(Debug)]
pub struct Slot {
    outstanding: Arc<AtomicUsize>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Load {
    /// Load tracking with at most `max_concurrency` statements at once (0:
    /// unlimited).
    pub fn new(max_concurrency: usize) -> Self {
        Load {
            outstanding: Arc::new(AtomicUsize::new(0)),
            queued: AtomicUsize::new(0),
            limit: (max_concurrency > 0).then(|| Arc::new(Semaphore::new(max_concurrency))),
            max_concurrency,
        }
    }

    /// Statements running now.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Statements waiting for a permit now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The concurrency limit; 0 is none.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// Whether a statement would have to wait.
    pub fn is_full(&self) -> bool {
        self.limit
            .as_ref()
            .is_some_and(|limit| limit.available_permits() == 0)
    }

    /// A slot now, or `None` when the engine is at its limit.
    pub fn try_enter(&self) -> Option<Slot> {
        let permit = match &self.limit {
            None => None,
            Some(limit) => Some(Arc::clone(limit).try_acquire_owned().ok()?),
        };
        Some(self.slot(permit))
    }

    /// A slot, waiting in the queue for at most `timeout` when the engine is
    /// at its limit.
    ///
    /// # Errors
    ///
    /// The queue is full, or the wait timed out: the engine is overloaded.
    pub async fn enter(&self, engine: &str, queue_len: usize, timeout: Duration) -> Result<Slot> {
        if let Some(slot) = self.try_enter() {
            return Ok(slot);
        }
        let Some(limit) = &self.limit else {
            return Ok(self.slot(None));
        };
        let overloaded = |message: String| Error::EngineUnavailable {
            engine: engine.to_owned(),
            message,
            retryable: true,
        };
        if self.queued.fetch_add(1, Ordering::AcqRel) >= queue_len {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("floe_engine_queue_rejected_total", "engine" => engine.to_owned())
                .increment(1);
            return Err(overloaded(format!(
                "{} statements running and the queue of {queue_len} is full",
                self.max_concurrency
            )));
        }
        let waited = tokio::time::timeout(timeout, Arc::clone(limit).acquire_owned()).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(permit)) => Ok(self.slot(Some(permit))),
            Ok(Err(_)) => Err(overloaded("the engine is being removed".to_owned())),
            Err(_) => {
                metrics::counter!("floe_engine_queue_timeouts_total", "engine" => engine.to_owned())
                    .increment(1);
                Err(overloaded(format!(
                    "no free slot among {} within the queue timeout of {timeout:?}",
                    self.max_concurrency
                )))
            }
        }
    }

    fn slot(&self, permit: Option<OwnedSemaphorePermit>) -> Slot {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Slot {
            outstanding: Arc::clone(&self.outstanding),
            _permit: permit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_averages_lean_to_recent_observations() {
        let latency = Latency::default();
        latency.observe(Some(1), Duration::from_millis(100), 0);
        latency.observe(Some(1), Duration::from_millis(10), 0);
        let shape = latency.for_shape(1).map(|e| e.seconds);
        assert!(shape.is_some_and(|s| (s - 0.073).abs() < 1e-9), "{shape:?}");
        assert!(latency.for_shape(2).is_none());
        assert_eq!(latency.overall().map(|e| e.samples), Some(2));
    }

    #[tokio::test]
    async fn the_limit_queues_then_times_out() {
        let load = Load::new(1);
        let first = load.enter("e", 1, Duration::from_millis(10)).await;
        assert!(first.is_ok());
        assert!(load.is_full());
        let waited = load.enter("e", 1, Duration::from_millis(20)).await;
        assert!(matches!(waited, Err(Error::EngineUnavailable { .. })));
        drop(first);
        assert_eq!(load.outstanding(), 0);
        assert!(load.enter("e", 0, Duration::from_millis(10)).await.is_ok());
    }
}
