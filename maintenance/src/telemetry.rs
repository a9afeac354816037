//! Query telemetry: what the router saw, turned into how hot each table and
//! each predicate column is.
//!
//! The daemon's session layer builds one [`QueryEvent`] per statement that
//! reached an engine and hands it to a [`TelemetrySender`]: a bounded channel
//! and a non-blocking `try_send`, so the query path never waits; when the
//! channel is full the event is dropped and the caller counts it. The
//! [`Heat`] aggregator drains the channel on its own task and keeps, per table
//! and per (table, column, operator class), exponentially decayed sums
//! ([`Decayed`], half-life configurable): queries, latency, bytes and files
//! scanned, rows returned. Aggregates and a window of raw events (statement
//! shapes, never literals) are flushed to the state store, so a restart keeps
//! the history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use floe_dialects::analyze_statement;
pub use floe_dialects::telemetry::{QueryEvent, QueryOutcome};
#[cfg(test)]
use floe_dialects::{Dialect, Operator};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::ops::now_ms;

/// The query path's end of the telemetry channel.
#[derive(Debug, Clone)]
pub struct TelemetrySender {
    tx: mpsc::Sender<QueryEvent>,
}

impl TelemetrySender {
    /// Hands `event` to the aggregator without waiting. False when the channel
    /// was full (or the aggregator gone) and the event was dropped: the caller
    /// counts it.
    pub fn emit(&self, event: QueryEvent) -> bool {
        self.tx.try_send(event).is_ok()
    }
}

/// A telemetry channel holding at most `capacity` events.
pub fn channel(capacity: usize) -> (TelemetrySender, mpsc::Receiver<QueryEvent>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (TelemetrySender { tx }, rx)
}

/// A sum that halves every half-life: `value` as of `at_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Decayed {
    value: f64,
    at_ms: i64,
}

impl Decayed {
    #[allow(clippy::cast_precision_loss)] // ms differences, far below 2^52
    fn factor(from_ms: i64, to_ms: i64, half_life: Duration) -> f64 {
        let half_life_ms = half_life.as_millis().max(1) as f64;
        let elapsed = (to_ms - from_ms).max(0) as f64;
        (-elapsed / half_life_ms).exp2()
    }

    /// Adds `x` at `now_ms`.
    pub fn add(&mut self, x: f64, now_ms: i64, half_life: Duration) {
        self.value = self.value(now_ms, half_life) + x;
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// The sum as of `now_ms`.
    pub fn value(&self, now_ms: i64, half_life: Duration) -> f64 {
        self.value * Decayed::factor(self.at_ms, now_ms, half_life)
    }
}

/// Telemetry settings (`[maintenance.telemetry]`).
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// How fast old queries stop counting: a query's weight halves every
    /// half-life.
    pub half_life: Duration,
    /// How long raw events are kept for inspection.
    pub raw_retention: Duration,
    /// At most this many raw events are kept.
    pub raw_max: usize,
    /// How often aggregates and new events are written to the state store.
    pub flush_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            half_life: Duration::from_secs(6 * 3600),
            raw_retention: Duration::from_secs(3600),
            raw_max: 10_000,
            flush_interval: Duration::from_secs(10),
        }
    }
}

/// A table's decayed query statistics, as kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TableAgg {
    queries: Decayed,
    latency_ms: Decayed,
    scanned_bytes: Decayed,
    scanned_files: Decayed,
    /// Queries whose engine reported what it scanned: the denominator of the
    /// scanned means.
    metered: Decayed,
    rows: Decayed,
    total: u64,
    last_seen_ms: i64,
    /// `column` → operator class → decayed query count and last use.
    columns: BTreeMap<String, BTreeMap<String, (Decayed, i64)>>,
}

/// How hot a table is: decayed sums as of the moment asked.
#[derive(Debug, Clone, Serialize)]
pub struct TableHeat {
    /// `catalog.namespace.table`.
    pub table: String,
    /// Decayed query count: queries in about the last half-life.
    pub queries: f64,
    /// Mean latency of those queries, ms.
    pub mean_latency_ms: f64,
    /// Mean bytes of data files scanned per metered query.
    pub mean_scanned_bytes: f64,
    /// Mean data files scanned per metered query.
    pub mean_scanned_files: f64,
    /// Mean rows returned per query.
    pub mean_rows: f64,
    /// Every query ever seen, undecayed.
    pub total_queries: u64,
    /// Last query, ms since the epoch.
    pub last_seen_ms: i64,
    /// Its predicate columns, hottest first.
    pub columns: Vec<ColumnHeat>,
}

/// How often a column is filtered on with one operator class.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnHeat {
    /// The column.
    pub column: String,
    /// The operator class ([`Operator::as_str`]).
    pub operator: String,
    /// Decayed count of queries filtering on it so.
    pub queries: f64,
    /// Last such query, ms since the epoch.
    pub last_seen_ms: i64,
}

/// One event as kept for inspection: its shape, not its constants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawEvent {
    /// Start, ms since the epoch.
    pub at_ms: i64,
    /// The front end.
    pub protocol: String,
    /// The user.
    pub user: String,
    /// The client tag.
    pub tag: Option<String>,
    /// Fingerprint id, hex.
    pub fingerprint: String,
    /// The statement with constants as `?`.
    pub shape: String,
    /// Tables touched.
    pub tables: Vec<String>,
    /// Predicate columns, `table.column:operator`.
    pub columns: Vec<String>,
    /// The engine.
    pub engine: String,
    /// Latency, ms.
    pub latency_ms: f64,
    /// Rows returned.
    pub rows: u64,
    /// Bytes returned.
    pub bytes: u64,
    /// Data files scanned, where known.
    pub scanned_files: Option<u64>,
    /// Bytes of data files scanned, where known.
    pub scanned_bytes: Option<u64>,
    /// How it ended: `ok`, `error` or `cancelled`.
    pub outcome: String,
}

#[derive(Debug, Default)]
struct HeatState {
    tables: FastMap<String, TableAgg>,
    /// Tables changed since the last flush.
    dirty: std::collections::HashSet<String, foldhash::fast::RandomState>,
    raw: VecDeque<RawEvent>,
    /// Raw events not yet written.
    unflushed: usize,
    /// Fingerprint id → shape, so a repeated statement is not printed again.
    shapes: FastMap<u64, String>,
}

/// The aggregator's maps, looked up four times per event: foldhash (seeded
/// per process) costs a fraction of std's SipHash for these short keys.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The aggregator: decayed statistics per table and predicate column, raw
/// events, persistence.
#[derive(Debug)]
pub struct Heat {
    config: TelemetryConfig,
    state: Mutex<HeatState>,
    store: Option<sqlx::SqlitePool>,
}

/// Bounds the shape cache; cleared when full (shapes are cheap to recompute).
const SHAPES_MAX: usize = 4096;

impl Heat {
    /// An aggregator with nothing persisted.
    pub fn in_memory(config: TelemetryConfig) -> Heat {
        Heat {
            config,
            state: Mutex::new(HeatState::default()),
            store: None,
        }
    }

    /// An aggregator persisted in the state store at `path`, starting from
    /// what an earlier run left there.
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the store cannot be opened or read.
    pub async fn open(config: TelemetryConfig, path: &Path) -> Result<Heat> {
        let pool = crate::audit::connect(path).await?;
        for ddl in [
            "CREATE TABLE IF NOT EXISTS telemetry_heat (
                table_name TEXT PRIMARY KEY,
                heat TEXT NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS telemetry_events (
                at_ms INTEGER NOT NULL,
                event TEXT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS telemetry_events_at ON telemetry_events (at_ms)",
        ] {
            sqlx::query(ddl)
                .execute(&pool)
                .await
                .map_err(crate::audit::state_error)?;
        }
        let mut state = HeatState::default();
        for row in sqlx::query("SELECT table_name, heat FROM telemetry_heat")
            .fetch_all(&pool)
            .await
            .map_err(crate::audit::state_error)?
        {
            let table: String = row.try_get(0).map_err(crate::audit::state_error)?;
            let heat: String = row.try_get(1).map_err(crate::audit::state_error)?;
            // A row an older Floe wrote differently is dropped, not fatal.
            if let Ok(agg) = serde_json::from_str::<TableAgg>(&heat) {
                state.tables.insert(table, agg);
            }
        }
        let since = now_ms() - duration_ms(config.raw_retention);
        let limit = i64::try_from(config.raw_max).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT event FROM (SELECT at_ms, event FROM telemetry_events WHERE at_ms >= ?
             ORDER BY at_ms DESC LIMIT ?) ORDER BY at_ms",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&pool)
        .await
        .map_err(crate::audit::state_error)?;
        for row in rows {
            let text: String = row.try_get(0).map_err(crate::audit::state_error)?;
            if let Ok(event) = serde_json::from_str::<RawEvent>(&text) {
                state.raw.push_back(event);
            }
        }
        Ok(Heat {
            config,
            state: Mutex::new(state),
            store: Some(pool),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HeatState> {
        // A panic while aggregating leaves counts, not broken invariants.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The settings.
    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    /// Adds one event to the statistics and the raw window.
    #[allow(clippy::cast_precision_loss)] // byte and row counts as f64 sums
    pub fn record(&self, event: QueryEvent) {
        let half_life = self.config.half_life;
        let now = event.at_ms;
        let mut state = self.lock();
        let (fingerprint, shape) = shape_of(&mut state.shapes, &event);
        let mut columns = Vec::with_capacity(event.columns.len());
        for (index, table) in event.tables.iter().enumerate() {
            // Looked up before inserting: a table seen before (nearly every
            // event's) costs no copy of its name.
            if !state.tables.contains_key(table) {
                state.tables.insert(table.clone(), TableAgg::default());
            }
            if !state.dirty.contains(table) {
                state.dirty.insert(table.clone());
            }
            let Some(agg) = state.tables.get_mut(table) else {
                continue;
            };
            agg.queries.add(1.0, now, half_life);
            agg.latency_ms
                .add(event.latency.as_secs_f64() * 1000.0, now, half_life);
            agg.rows.add(event.rows as f64, now, half_life);
            if let (Some(files), Some(bytes)) = (event.scanned_files, event.scanned_bytes) {
                // A multi-table statement's scan is not split per table:
                // each table is charged the whole, an upper bound.
                agg.metered.add(1.0, now, half_life);
                agg.scanned_files.add(files as f64, now, half_life);
                agg.scanned_bytes.add(bytes as f64, now, half_life);
            }
            agg.total += 1;
            agg.last_seen_ms = agg.last_seen_ms.max(now);
            // A column counts once per query and operator, however often it
            // appears (a statement has a handful: a scan of the earlier
            // ones needs no set allocated per table).
            let mine = || event.columns.iter().filter(|(i, _, _)| *i == index);
            for (n, (_, column, op)) in mine().enumerate() {
                if mine().take(n).any(|(_, c, o)| c == column && o == op) {
                    continue;
                }
                if !agg.columns.contains_key(column) {
                    agg.columns.insert(column.clone(), BTreeMap::new());
                }
                let Some(ops) = agg.columns.get_mut(column) else {
                    continue;
                };
                if !ops.contains_key(op.as_str()) {
                    ops.insert(op.as_str().to_owned(), (Decayed::default(), 0));
                }
                if let Some((count, last)) = ops.get_mut(op.as_str()) {
                    count.add(1.0, now, half_life);
                    *last = (*last).max(now);
                }
                columns.push([table.as_str(), ".", column.as_str(), ":", op.as_str()].concat());
            }
        }
        state.raw.push_back(RawEvent {
            at_ms: event.at_ms,
            protocol: event.protocol.to_owned(),
            user: event.user,
            tag: event.tag,
            fingerprint,
            shape,
            tables: event.tables,
            columns,
            engine: event.engine,
            latency_ms: event.latency.as_secs_f64() * 1000.0,
            rows: event.rows,
            bytes: event.bytes,
            scanned_files: event.scanned_files,
            scanned_bytes: event.scanned_bytes,
            outcome: event.outcome.as_str().to_owned(),
        });
        state.unflushed += 1;
        let cutoff = now - duration_ms(self.config.raw_retention);
        while state.raw.len() > self.config.raw_max
            || state.raw.front().is_some_and(|e| e.at_ms < cutoff)
        {
            state.raw.pop_front();
        }
        state.unflushed = state.unflushed.min(state.raw.len());
    }

    /// Every table queried, hottest first, as of `now_ms`.
    pub fn tables(&self, now_ms: i64) -> Vec<TableHeat> {
        let state = self.lock();
        let mut out: Vec<TableHeat> = state
            .tables
            .iter()
            .map(|(name, agg)| self.heat_of(name, agg, now_ms))
            .collect();
        out.sort_by(|a, b| b.queries.total_cmp(&a.queries));
        out
    }

    /// One table's heat as of `now_ms`.
    pub fn table(&self, table: &str, now_ms: i64) -> Option<TableHeat> {
        let state = self.lock();
        state
            .tables
            .get(table)
            .map(|agg| self.heat_of(table, agg, now_ms))
    }

    fn heat_of(&self, name: &str, agg: &TableAgg, now: i64) -> TableHeat {
        let half_life = self.config.half_life;
        let queries = agg.queries.value(now, half_life);
        let metered = agg.metered.value(now, half_life);
        let mean = |sum: &Decayed, over: f64| {
            if over > 0.0 {
                sum.value(now, half_life) / over
            } else {
                0.0
            }
        };
        let mut columns: Vec<ColumnHeat> = agg
            .columns
            .iter()
            .flat_map(|(column, ops)| {
                ops.iter().map(move |(op, (count, last))| ColumnHeat {
                    column: column.clone(),
                    operator: op.clone(),
                    queries: count.value(now, half_life),
                    last_seen_ms: *last,
                })
            })
            .collect();
        columns.sort_by(|a, b| b.queries.total_cmp(&a.queries));
        TableHeat {
            table: name.to_owned(),
            queries,
            mean_latency_ms: mean(&agg.latency_ms, queries),
            mean_scanned_bytes: mean(&agg.scanned_bytes, metered),
            mean_scanned_files: mean(&agg.scanned_files, metered),
            mean_rows: mean(&agg.rows, queries),
            total_queries: agg.total,
            last_seen_ms: agg.last_seen_ms,
            columns,
        }
    }

    /// The newest raw events (at most `limit`), of one table when given,
    /// newer than `since_ms` when given; oldest first.
    pub fn events(
        &self,
        table: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Vec<RawEvent> {
        let state = self.lock();
        let mut out: Vec<RawEvent> = state
            .raw
            .iter()
            .rev()
            .filter(|e| since_ms.is_none_or(|s| e.at_ms > s))
            .filter(|e| table.is_none_or(|t| e.tables.iter().any(|x| x == t)))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Writes changed aggregates and new raw events to the state store and
    /// forgets events older than the retention window there.
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the store cannot be written; what was not
    /// written is tried again at the next flush.
    pub async fn flush(&self) -> Result<()> {
        let Some(pool) = &self.store else {
            return Ok(());
        };
        let (tables, events) = {
            let mut state = self.lock();
            let dirty: Vec<String> = state.dirty.drain().collect();
            let tables: Vec<(String, String)> = dirty
                .into_iter()
                .filter_map(|t| {
                    let json = serde_json::to_string(state.tables.get(&t)?).ok()?;
                    Some((t, json))
                })
                .collect();
            let skip = state.raw.len() - state.unflushed;
            let events: Vec<(i64, String)> = state
                .raw
                .iter()
                .skip(skip)
                .filter_map(|e| Some((e.at_ms, serde_json::to_string(e).ok()?)))
                .collect();
            state.unflushed = 0;
            (tables, events)
        };
        if tables.is_empty() && events.is_empty() {
            return Ok(());
        }
        let result = async {
            let mut tx = pool.begin().await?;
            for (table, heat) in &tables {
                sqlx::query(
                    "INSERT INTO telemetry_heat (table_name, heat) VALUES (?, ?)
                     ON CONFLICT (table_name) DO UPDATE SET heat = excluded.heat",
                )
                .bind(table)
                .bind(heat)
                .execute(&mut *tx)
                .await?;
            }
            // Many rows per statement: at thousands of statements a second a
            // flush carries tens of thousands of events, and one INSERT each
            // kept SQLite's worker thread busy.
            for chunk in events.chunks(EVENTS_PER_INSERT) {
                let mut insert =
                    sqlx::QueryBuilder::new("INSERT INTO telemetry_events (at_ms, event) ");
                insert.push_values(chunk, |mut row, (at, event)| {
                    row.push_bind(at).push_bind(event);
                });
                insert.build().execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM telemetry_events WHERE at_ms < ?")
                .bind(now_ms() - duration_ms(self.config.raw_retention))
                .execute(&mut *tx)
                .await?;
            // And no more than the window holds: under load a flush writes
            // up to `raw_max` events, so the retention alone let the store
            // grow to an hour of them (millions of rows) where a restart
            // reads back only the newest `raw_max`. Rows are inserted in
            // order, so the newest are the highest rowids.
            sqlx::query(
                "DELETE FROM telemetry_events WHERE rowid <= \
                 (SELECT rowid FROM telemetry_events ORDER BY rowid DESC LIMIT 1 OFFSET ?)",
            )
            .bind(i64::try_from(self.config.raw_max).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            // Put the tables back so the next flush writes them; the events
            // stay in memory for inspection either way.
            let mut state = self.lock();
            state.dirty.extend(tables.into_iter().map(|(t, _)| t));
            return Err(crate::audit::state_error(e));
        }
        Ok(())
    }

    /// Drains `events` into the statistics until `cancel`, flushing every
    /// `flush_interval` and once more at the end.
    pub async fn run(
        self: Arc<Self>,
        mut events: mpsc::Receiver<QueryEvent>,
        cancel: CancellationToken,
    ) {
        let mut flush = tokio::time::interval(self.config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The channel is drained on a tick, not per event: waking this task
        // for each statement costs a task poll per statement, and with more
        // than one worker thread may wake another thread to run it; a tick
        // costs 1 / DRAIN_INTERVAL wake-ups a second whatever the load.
        // (On session 11's machine the difference was within pgbench's noise:
        // benchmarks/RESULTS.md.)
        let mut drain = tokio::time::interval(DRAIN_INTERVAL);
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = drain.tick() => loop {
                    match events.try_recv() {
                        Ok(event) => self.record(event),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return self.finish(events).await,
                    }
                },
                _ = flush.tick() => {
                    if let Err(e) = self.flush().await {
                        tracing::warn!(error = %e, "telemetry flush failed; retrying at the next one");
                    }
                }
            }
        }
        self.finish(events).await;
    }

    /// Records what is left in `events` and flushes a last time.
    async fn finish(&self, mut events: mpsc::Receiver<QueryEvent>) {
        while let Ok(event) = events.try_recv() {
            self.record(event);
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "final telemetry flush failed");
        }
    }
}

/// How often the aggregator takes the events the query path sent: at most
/// this much later than the statement, they count.
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// Raw events written by one `INSERT` (two bound values each, far below
/// SQLite's limit on bound parameters).
const EVENTS_PER_INSERT: usize = 500;

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The event's fingerprint (hex) and shape, from the cache when the router
/// already computed the id, else by analysing the statement (off the query
/// path: this runs on the aggregator's task).
fn shape_of(shapes: &mut FastMap<u64, String>, event: &QueryEvent) -> (String, String) {
    if let Some(id) = event.fingerprint
        && let Some(shape) = shapes.get(&id)
    {
        return (hex(id), shape.clone());
    }
    match analyze_statement(&event.sql, event.dialect) {
        Ok(analysis) => {
            let fingerprint = analysis.fingerprint();
            if shapes.len() >= SHAPES_MAX {
                shapes.clear();
            }
            shapes.insert(fingerprint.id, fingerprint.normalized.clone());
            (hex(fingerprint.id), fingerprint.normalized)
        }
        Err(_) => (String::new(), String::new()),
    }
}

/// `id` as 16 lower-case hex digits (`{id:016x}`), without `format!`: made
/// for every event.
fn hex(id: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(16);
    for i in (0..16).rev() {
        // A nibble: the index is below 16.
        text.push(char::from(DIGITS[((id >> (i * 4)) & 0xf) as usize]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_print_as_sixteen_hex_digits() {
        for id in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(hex(id), format!("{id:016x}"));
        }
    }

    fn event(at_ms: i64, sql: &str, column: &str, op: Operator) -> QueryEvent {
        QueryEvent {
            at_ms,
            protocol: "postgres",
            user: "u".to_owned(),
            tag: None,
            fingerprint: None,
            sql: sql.to_owned(),
            dialect: Dialect::Postgres,
            tables: vec!["lake.demo.t".to_owned()],
            columns: vec![(0, column.to_owned(), op)],
            engine: "lake".to_owned(),
            latency: Duration::from_millis(10),
            rows: 1,
            bytes: 8,
            scanned_files: Some(4),
            scanned_bytes: Some(4000),
            outcome: QueryOutcome::Ok,
        }
    }

    #[test]
    fn a_full_channel_drops_without_waiting() {
        let (sender, mut rx) = channel(2);
        let e = || event(1, "SELECT 1 FROM t WHERE a = 1", "a", Operator::Equality);
        assert!(sender.emit(e()));
        assert!(sender.emit(e()));
        // Full: the third is dropped at once (a blocking send would hang here).
        assert!(!sender.emit(e()));
        assert!(rx.try_recv().is_ok());
        assert!(sender.emit(e()), "room again once the aggregator took one");
        drop(rx);
        assert!(!sender.emit(e()), "no aggregator: dropped, not an error");
    }

    #[tokio::test]
    async fn the_store_keeps_no_more_events_than_the_window() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::State(e.to_string()))?;
        let path = dir.path().join("state.db");
        let config = TelemetryConfig {
            raw_max: 5,
            ..TelemetryConfig::default()
        };
        let heat = Heat::open(config.clone(), &path).await?;
        let now = now_ms();
        for round in 0..3 {
            for i in 0..4 {
                let at = now + round * 10 + i;
                heat.record(event(
                    at,
                    "SELECT * FROM t WHERE a = 1",
                    "a",
                    Operator::Equality,
                ));
            }
            heat.flush().await?;
        }
        let pool = heat.store.as_ref().expect("a store");
        let (rows, oldest): (i64, i64) =
            sqlx::query_as("SELECT count(*), min(at_ms) FROM telemetry_events")
                .fetch_one(pool)
                .await
                .map_err(crate::audit::state_error)?;
        assert_eq!(rows, 5, "twelve events written, the window holds five");
        assert_eq!(oldest, now + 13, "the newest five are kept");
        drop(heat);
        let reopened = Heat::open(config, &path).await?;
        assert_eq!(reopened.events(None, None, 100).len(), 5);
        Ok(())
    }

    #[test]
    fn decays_by_half_each_half_life() {
        let mut d = Decayed::default();
        let half = Duration::from_secs(10);
        d.add(8.0, 0, half);
        assert!((d.value(10_000, half) - 4.0).abs() < 1e-9);
        d.add(4.0, 10_000, half);
        assert!((d.value(20_000, half) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn aggregates_tables_columns_and_shapes() {
        let heat = Heat::in_memory(TelemetryConfig::default());
        heat.record(event(
            1_000,
            "SELECT * FROM t WHERE a = 1",
            "a",
            Operator::Equality,
        ));
        heat.record(event(
            2_000,
            "SELECT * FROM t WHERE a = 2",
            "a",
            Operator::Equality,
        ));
        heat.record(event(
            3_000,
            "SELECT * FROM t WHERE b > 2",
            "b",
            Operator::Range,
        ));
        let tables = heat.tables(3_000);
        assert_eq!(tables.len(), 1);
        let t = &tables[0];
        assert_eq!(t.total_queries, 3);
        assert!((t.mean_scanned_bytes - 4000.0).abs() < 1.0);
        assert_eq!(t.columns[0].column, "a");
        assert_eq!(t.columns[0].operator, "eq");
        let events = heat.events(None, None, 10);
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].fingerprint, events[1].fingerprint,
            "same shape, same id"
        );
        assert!(
            !events[0].shape.contains('1'),
            "constants are not kept: {}",
            events[0].shape
        );
        assert_eq!(heat.events(None, Some(1_000), 10).len(), 2);
    }
}
