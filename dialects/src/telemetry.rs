//! The telemetry record the router side produces and the maintenance side
//! consumes: one [`QueryEvent`] per statement that reached an engine. It lives
//! here, in the bottom crate, so that neither of the two has to know the
//! other; the daemon moves events between them over a bounded channel.

use std::time::Duration;

use crate::{Dialect, Operator};

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryOutcome {
    /// It ran to the end.
    Ok,
    /// The engine or Floe failed it.
    Error,
    /// The client cancelled it or went away.
    Cancelled,
}

impl QueryOutcome {
    /// `ok`, `error` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryOutcome::Ok => "ok",
            QueryOutcome::Error => "error",
            QueryOutcome::Cancelled => "cancelled",
        }
    }
}

/// One statement that reached an engine.
#[derive(Debug, Clone)]
pub struct QueryEvent {
    /// When it started, ms since the epoch.
    pub at_ms: i64,
    /// The front end: `postgres`, `mysql`, `flight_sql`.
    pub protocol: &'static str,
    /// The authenticated user.
    pub user: String,
    /// The client's tag (`SET floe.tag`): a person, an agent, an application.
    pub tag: Option<String>,
    /// The statement's fingerprint id, when the router computed it.
    pub fingerprint: Option<u64>,
    /// The statement as the client wrote it; reduced to its shape (constants
    /// removed) before anything keeps it.
    pub sql: String,
    /// The dialect it was written in.
    pub dialect: Dialect,
    /// The tables it touched, `catalog.namespace.table`.
    pub tables: Vec<String>,
    /// Its predicate columns: index into `tables`, column, operator class.
    pub columns: Vec<(usize, String, Operator)>,
    /// The engine that ran it.
    pub engine: String,
    /// From start to the last row.
    pub latency: Duration,
    /// Rows returned (or touched, for a command).
    pub rows: u64,
    /// Bytes of the rows returned, as Arrow memory.
    pub bytes: u64,
    /// Data files the engine read, where it can tell.
    pub scanned_files: Option<u64>,
    /// Bytes of those files.
    pub scanned_bytes: Option<u64>,
    /// How it ended.
    pub outcome: QueryOutcome,
}
