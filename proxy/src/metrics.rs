//! Metrics: names, labels and the Prometheus exporter.
//!
//! Every metric Floe records is named here, so the set that `/metrics` shows is
//! readable in one file. Recording goes through the `metrics` facade and costs
//! a few atomic operations; rendering happens only when `/metrics` is scraped.

use std::sync::OnceLock;
use std::time::Duration;

use floe_dialects::StatementKind;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Connections accepted, by protocol.
pub const CONNECTIONS_TOTAL: &str = "floe_connections_total";
/// Connections open now, by protocol.
pub const CONNECTIONS_ACTIVE: &str = "floe_connections_active";
/// Connections refused, by protocol and reason (`limit`, `shutdown`).
pub const CONNECTIONS_REJECTED: &str = "floe_connections_rejected_total";
/// Statements finished, by protocol, kind and outcome.
pub const QUERIES_TOTAL: &str = "floe_queries_total";
/// Statement latency in seconds, from start to last row, by protocol and kind.
pub const QUERY_DURATION: &str = "floe_query_duration_seconds";
/// Rows returned to clients, by protocol.
pub const ROWS_TOTAL: &str = "floe_rows_returned_total";
/// Bytes of Arrow data returned to clients, by protocol.
pub const BYTES_TOTAL: &str = "floe_bytes_returned_total";

/// Telemetry events, by result: `sent` to the maintenance engine or
/// `dropped` because its channel was full.
pub const TELEMETRY_EVENTS: &str = "floe_telemetry_events_total";

/// `Parse` messages answered with the connection's previous plan of the same
/// text (the PostgreSQL front end's parse cache).
pub const PARSE_REUSED: &str = "floe_pg_parse_reused_total";

/// Counts one `Parse` answered from the connection's parse cache.
pub fn parse_reused() {
    metrics::counter!(PARSE_REUSED).increment(1);
}

/// Counts one telemetry event, sent or dropped (once per statement: through
/// a handle, as [`query_finished`] records).
pub fn telemetry_event(sent: bool) {
    let Some(handles) = QUERY_HANDLES.get() else {
        return;
    };
    handles.telemetry[usize::from(sent)]
        .get_or_init(|| {
            metrics::counter!(TELEMETRY_EVENTS, "result" => if sent { "sent" } else { "dropped" })
        })
        .increment(1);
}

/// The front end a client came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// PostgreSQL wire.
    Postgres,
    /// MySQL wire.
    MySql,
    /// Arrow Flight SQL.
    FlightSql,
}

impl Protocol {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
            Protocol::MySql => "mysql",
            Protocol::FlightSql => "flight_sql",
        }
    }
}

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It completed.
    Ok,
    /// It failed.
    Error,
    /// The client cancelled it or went away.
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// Installs the global recorder and returns the handle that renders `/metrics`.
///
/// # Errors
///
/// When a recorder is installed already.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let buckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0, 30.0, 60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(QUERY_DURATION.to_owned()), &buckets)?
        .install_recorder()?;
    metrics::describe_counter!(CONNECTIONS_TOTAL, "Client connections accepted");
    metrics::describe_gauge!(CONNECTIONS_ACTIVE, "Client connections open now");
    metrics::describe_counter!(CONNECTIONS_REJECTED, "Client connections refused");
    metrics::describe_counter!(QUERIES_TOTAL, "Statements finished");
    metrics::describe_histogram!(QUERY_DURATION, metrics::Unit::Seconds, "Statement latency");
    metrics::describe_counter!(ROWS_TOTAL, "Rows returned to clients");
    metrics::describe_counter!(
        PARSE_REUSED,
        "Parse messages answered with the connection's previous plan of the same text"
    );
    metrics::describe_counter!(
        BYTES_TOTAL,
        metrics::Unit::Bytes,
        "Arrow bytes returned to clients"
    );
    // A second install (tests running the daemon twice in one process) fails
    // above, so the handles always belong to the installed recorder.
    let _ = QUERY_HANDLES.set(QueryHandles::new());
    Ok(handle)
}

/// Records a finished statement.
pub fn query_finished(
    protocol: Protocol,
    kind: StatementKind,
    outcome: Outcome,
    elapsed: Duration,
    rows: u64,
    bytes: u64,
) {
    // Without an installed recorder every metric is a no-op anyway.
    let Some(handles) = QUERY_HANDLES.get() else {
        return;
    };
    match kind_index(kind) {
        Some(kind_slot) => {
            handles
                .finished(protocol, kind, kind_slot, outcome)
                .increment(1);
            handles
                .duration(protocol, kind, kind_slot)
                .record(elapsed.as_secs_f64());
        }
        None => {
            finished_counter(protocol, kind, outcome).increment(1);
            duration_histogram(protocol, kind).record(elapsed.as_secs_f64());
        }
    }
    if rows > 0 {
        handles.rows(protocol).increment(rows);
    }
    if bytes > 0 {
        handles.bytes(protocol).increment(bytes);
    }
}

const PROTOCOLS: usize = 3;
const KINDS: usize = 6;
const OUTCOMES: usize = 3;

/// The handles of the per-statement metrics, each registered on first use.
///
/// `metrics::counter!` with labels builds its key (label vector, hash) and
/// looks it up in the registry on every call; a profile of `pgbench -S`
/// through Floe showed that per statement. A handle is the metric's atomic
/// itself, so a statement records with a few atomic operations.
struct QueryHandles {
    finished: [OnceLock<Counter>; PROTOCOLS * KINDS * OUTCOMES],
    duration: [OnceLock<Histogram>; PROTOCOLS * KINDS],
    rows: [OnceLock<Counter>; PROTOCOLS],
    bytes: [OnceLock<Counter>; PROTOCOLS],
    /// `floe_telemetry_events_total`: dropped, sent.
    telemetry: [OnceLock<Counter>; 2],
}

/// Set by [`install`]: handles taken before a recorder is installed would be
/// no-ops for good.
static QUERY_HANDLES: OnceLock<QueryHandles> = OnceLock::new();

impl QueryHandles {
    fn new() -> Self {
        QueryHandles {
            finished: std::array::from_fn(|_| OnceLock::new()),
            duration: std::array::from_fn(|_| OnceLock::new()),
            rows: std::array::from_fn(|_| OnceLock::new()),
            bytes: std::array::from_fn(|_| OnceLock::new()),
            telemetry: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn finished(
        &self,
        protocol: Protocol,
        kind: StatementKind,
        kind_slot: usize,
        outcome: Outcome,
    ) -> &Counter {
        let slot = (protocol as usize * KINDS + kind_slot) * OUTCOMES + outcome as usize;
        self.finished[slot].get_or_init(|| finished_counter(protocol, kind, outcome))
    }

    fn duration(&self, protocol: Protocol, kind: StatementKind, kind_slot: usize) -> &Histogram {
        let slot = protocol as usize * KINDS + kind_slot;
        self.duration[slot].get_or_init(|| duration_histogram(protocol, kind))
    }

    fn rows(&self, protocol: Protocol) -> &Counter {
        self.rows[protocol as usize]
            .get_or_init(|| metrics::counter!(ROWS_TOTAL, "protocol" => protocol.as_str()))
    }

    fn bytes(&self, protocol: Protocol) -> &Counter {
        self.bytes[protocol as usize]
            .get_or_init(|| metrics::counter!(BYTES_TOTAL, "protocol" => protocol.as_str()))
    }
}

/// `floe_queries_total` of one protocol, kind and outcome.
fn finished_counter(protocol: Protocol, kind: StatementKind, outcome: Outcome) -> Counter {
    metrics::counter!(QUERIES_TOTAL, "protocol" => protocol.as_str(), "kind" => kind.as_str(), "outcome" => outcome.as_str())
}

/// `floe_query_duration_seconds` of one protocol and kind.
fn duration_histogram(protocol: Protocol, kind: StatementKind) -> Histogram {
    metrics::histogram!(QUERY_DURATION, "protocol" => protocol.as_str(), "kind" => kind.as_str())
}

/// A kind's slot among the cached handles; `None` for a kind added to the
/// (non-exhaustive) enum after this table, recorded without a cached handle.
fn kind_index(kind: StatementKind) -> Option<usize> {
    Some(match kind {
        StatementKind::Read => 0,
        StatementKind::Write => 1,
        StatementKind::Ddl => 2,
        StatementKind::Transaction => 3,
        StatementKind::Session => 4,
        StatementKind::Utility => 5,
        _ => return None,
    })
}

/// Records an accepted connection; the returned guard records its close.
pub fn connection_opened(protocol: Protocol) -> ConnectionGauge {
    metrics::counter!(CONNECTIONS_TOTAL, "protocol" => protocol.as_str()).increment(1);
    metrics::gauge!(CONNECTIONS_ACTIVE, "protocol" => protocol.as_str()).increment(1.0);
    ConnectionGauge { protocol }
}

/// Records a refused connection.
pub fn connection_rejected(protocol: Protocol, reason: &'static str) {
    metrics::counter!(CONNECTIONS_REJECTED, "protocol" => protocol.as_str(), "reason" => reason)
        .increment(1);
}

/// Decrements the open-connections gauge when dropped.
#[derive(Debug)]
pub struct ConnectionGauge {
    protocol: Protocol,
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_ACTIVE, "protocol" => self.protocol.as_str()).decrement(1.0);
    }
}

/// Copies the translation cache's counters into metrics every second until
/// `shutdown`: `floe_translation_cache_hits_total`, `_misses_total`,
/// `_evictions_total` and the `floe_translation_cache_entries` gauge. The
/// cache counts with atomics on the query path; metrics read them here, off it.
pub async fn export_translation_cache(
    router: std::sync::Arc<floe_router::Router>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stats = router.translation_stats();
        metrics::counter!("floe_translation_cache_hits_total").absolute(stats.hits);
        metrics::counter!("floe_translation_cache_misses_total").absolute(stats.misses);
        metrics::counter!("floe_translation_cache_evictions_total").absolute(stats.evictions);
        #[allow(clippy::cast_precision_loss)] // a gauge of a count far below 2^52
        metrics::gauge!("floe_translation_cache_entries").set(stats.entries as f64);
    }
}
