//! Engine health: Healthy / Degraded / Down, from active probes and from the
//! outcome of every statement, with a circuit breaker.
//!
//! - A failed probe opens the circuit at once (Down): the engine gets no
//!   traffic while it stays Down.
//! - Engine failures of statements (connection lost, timeout) count up; the
//!   first makes a Healthy engine Degraded, [`FAILURES_TO_OPEN`] in a row open
//!   the circuit.
//! - An engine-failure rate of half or more over the last [`WINDOW`] outcomes
//!   (at least ten of them) keeps an engine Degraded even when failures never
//!   come three in a row: a flapping engine is ranked after steady ones.
//! - A Down engine that answers a probe is half-open (Degraded): it is ranked
//!   after healthy engines, and [`SUCCESSES_TO_CLOSE`] successes in a row
//!   (probes or statements), with the failure rate below half, close the
//!   circuit again (Healthy).
//!
//! Every transition is logged and counted in metrics.

use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// Engine failures in a row that open the circuit.
pub const FAILURES_TO_OPEN: u32 = 3;
/// Successes in a row that close a half-open circuit.
pub const SUCCESSES_TO_CLOSE: u32 = 2;
/// Outcomes the failure rate is computed over.
pub const WINDOW: u32 = 20;
/// Outcomes needed before the failure rate counts.
const MIN_SAMPLES: u32 = 10;

/// An engine's health as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Answering normally.
    Healthy,
    /// Recent failures, or recovering from Down (half-open): still routed to,
    /// after the healthy engines.
    Degraded,
    /// The circuit is open: not routed to until a probe succeeds.
    Down,
}

impl HealthState {
    /// The state's name, as metrics and `EXPLAIN ROUTE` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Down => "down",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            HealthState::Healthy => 2.0,
            HealthState::Degraded => 1.0,
            HealthState::Down => 0.0,
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
struct Inner {
    state: HealthState,
    failures: u32,
    successes: u32,
    since: Instant,
    last_error: Option<String>,
    /// The last [`WINDOW`] outcomes, newest in bit 0, failures as 1.
    outcomes: u32,
    samples: u32,
}

impl Inner {
    fn record(&mut self, failed: bool) {
        let mask = (1u32 << WINDOW) - 1;
        self.outcomes = ((self.outcomes << 1) | u32::from(failed)) & mask;
        self.samples = (self.samples + 1).min(WINDOW);
    }

    /// Whether half or more of the recent outcomes were engine failures.
    fn failing_often(&self) -> bool {
        self.samples >= MIN_SAMPLES && self.outcomes.count_ones() * 2 >= self.samples
    }
}

/// One engine's health, shared by every session and the prober.
#[derive(Debug)]
pub struct Health {
    engine: String,
    inner: Mutex<Inner>,
}

impl Health {
    /// A new engine starts Healthy: traffic, or the first probe, proves otherwise.
    pub fn new(engine: &str) -> Self {
        metrics::gauge!("floe_engine_health", "engine" => engine.to_owned())
            .set(HealthState::Healthy.gauge());
        Health {
            engine: engine.to_owned(),
            inner: Mutex::new(Inner {
                state: HealthState::Healthy,
                failures: 0,
                successes: 0,
                since: Instant::now(),
                last_error: None,
                outcomes: 0,
                samples: 0,
            }),
        }
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.inner
            .lock()
            .map_or(HealthState::Degraded, |inner| inner.state)
    }

    /// The last engine failure seen, for `EXPLAIN ROUTE` and the admin API.
    pub fn last_error(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|i| i.last_error.clone())
    }

    /// A statement or probe succeeded.
    pub fn success(&self) {
        self.update(|inner| {
            inner.failures = 0;
            inner.successes = inner.successes.saturating_add(1);
            inner.record(false);
            match inner.state {
                HealthState::Down => Some(HealthState::Degraded),
                HealthState::Degraded
                    if inner.successes >= SUCCESSES_TO_CLOSE && !inner.failing_often() =>
                {
                    Some(HealthState::Healthy)
                }
                _ => None,
            }
        });
    }

    /// A statement failed for an engine-side reason.
    pub fn failure(&self, error: &str) {
        self.update(|inner| {
            inner.successes = 0;
            inner.failures = inner.failures.saturating_add(1);
            inner.last_error = Some(error.to_owned());
            inner.record(true);
            if inner.failures >= FAILURES_TO_OPEN {
                Some(HealthState::Down)
            } else if inner.state == HealthState::Healthy {
                Some(HealthState::Degraded)
            } else {
                None
            }
        });
    }

    /// An active probe failed: the engine is not reachable now.
    pub fn probe_failed(&self, error: &str) {
        self.update(|inner| {
            inner.successes = 0;
            inner.failures = inner.failures.saturating_add(1);
            inner.last_error = Some(error.to_owned());
            inner.record(true);
            Some(HealthState::Down)
        });
    }

    fn update(&self, change: impl FnOnce(&mut Inner) -> Option<HealthState>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let Some(next) = change(&mut inner) else {
            return;
        };
        let previous = inner.state;
        if next == previous {
            return;
        }
        let held = inner.since.elapsed();
        inner.state = next;
        inner.since = Instant::now();
        if next == HealthState::Healthy {
            inner.successes = 0;
        }
        let error = inner.last_error.clone().unwrap_or_default();
        drop(inner);
        metrics::gauge!("floe_engine_health", "engine" => self.engine.clone()).set(next.gauge());
        metrics::counter!(
            "floe_engine_health_transitions_total",
            "engine" => self.engine.clone(),
            "to" => next.as_str()
        )
        .increment(1);
        if next == HealthState::Healthy {
            tracing::info!(engine = %self.engine, from = %previous, to = %next, after = ?held, "engine health changed");
        } else {
            tracing::warn!(engine = %self.engine, from = %previous, to = %next, %error, "engine health changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_degrade_then_open_the_circuit() {
        let health = Health::new("e");
        health.failure("lost");
        assert_eq!(health.state(), HealthState::Degraded);
        health.failure("lost");
        assert_eq!(health.state(), HealthState::Degraded);
        health.failure("lost");
        assert_eq!(health.state(), HealthState::Down);
        assert_eq!(health.last_error().as_deref(), Some("lost"));
    }

    #[test]
    fn a_down_engine_recovers_through_half_open() {
        let health = Health::new("e");
        health.probe_failed("refused");
        assert_eq!(health.state(), HealthState::Down);
        health.success();
        assert_eq!(health.state(), HealthState::Degraded);
        health.success();
        assert_eq!(health.state(), HealthState::Healthy);
    }

    #[test]
    fn a_flapping_engine_stays_degraded_until_its_failure_rate_drops() {
        let health = Health::new("e");
        // Two failures, two successes: never three failures in a row, and
        // two successes in a row would close the circuit on their own.
        for _ in 0..5 {
            health.failure("lost");
            health.failure("lost");
            health.success();
            health.success();
        }
        assert_eq!(
            health.state(),
            HealthState::Degraded,
            "half the outcomes failed"
        );
        for _ in 0..12 {
            health.success();
        }
        assert_eq!(health.state(), HealthState::Healthy, "the rate dropped");
    }

    #[test]
    fn a_failure_while_half_open_counts_toward_opening_again() {
        let health = Health::new("e");
        health.probe_failed("refused");
        health.success();
        health.failure("lost");
        assert_eq!(health.state(), HealthState::Degraded);
        health.probe_failed("refused");
        assert_eq!(health.state(), HealthState::Down);
    }
}
