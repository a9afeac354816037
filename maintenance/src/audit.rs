//! The audit trail: every maintenance run — who or what started it, table,
//! operation, parameters, start and end, status, error, before/after signals,
//! files and bytes removed and added, snapshot ids — in the state store
//! (SQLite in the data directory by default).
//!
//! A run is recorded as `running` before it touches anything and finished
//! after, so a crash leaves a `running` row that says what was under way.

use std::path::Path;

use serde::Serialize;
use sqlx::Row as _;

use crate::inventory::TableSignals;
use crate::ops::{Operation, Outcome};
use crate::{Error, Result};

/// The state store's audit table.
#[derive(Debug, Clone)]
pub struct AuditLog {
    pool: sqlx::SqlitePool,
}

/// How a run ended, as recorded.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    status: &'static str,
    error: Option<String>,
    after: String,
    outcome: String,
    files_removed: i64,
    bytes_removed: i64,
    files_added: i64,
    bytes_added: i64,
    snapshot_ids: String,
}

impl RunRecord {
    /// The record of a finished operation.
    pub fn finish(result: &Result<Outcome>, after: &TableSignals) -> RunRecord {
        let after = serde_json::to_string(after).unwrap_or_default();
        match result {
            Ok(outcome) => {
                let mut ids: Vec<i64> = outcome.snapshots_removed.clone();
                ids.extend(outcome.new_snapshot);
                RunRecord {
                    status: "succeeded",
                    error: None,
                    after,
                    outcome: serde_json::to_string(outcome).unwrap_or_default(),
                    files_removed: i64::try_from(outcome.files_removed()).unwrap_or(i64::MAX),
                    bytes_removed: i64::try_from(outcome.bytes_removed).unwrap_or(i64::MAX),
                    files_added: i64::try_from(outcome.files_added()).unwrap_or(i64::MAX),
                    bytes_added: i64::try_from(outcome.bytes_added).unwrap_or(i64::MAX),
                    snapshot_ids: serde_json::to_string(&ids).unwrap_or_default(),
                }
            }
            Err(e) => RunRecord {
                status: "failed",
                error: Some(e.to_string()),
                after,
                outcome: "{}".to_owned(),
                snapshot_ids: "[]".to_owned(),
                ..RunRecord::default()
            },
        }
    }
}

/// One row of the audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The run's id.
    pub id: i64,
    /// `catalog.namespace.table`.
    pub table: String,
    /// The operation.
    pub operation: String,
    /// Who or what started it.
    pub started_by: String,
    /// Parameters, as JSON.
    pub parameters: serde_json::Value,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// The error of a failed run.
    pub error: Option<String>,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// Signals before, as JSON.
    pub before: serde_json::Value,
    /// Signals after, as JSON.
    pub after: serde_json::Value,
    /// Files removed (or, dry, that would be).
    pub files_removed: i64,
    /// Bytes removed.
    pub bytes_removed: i64,
    /// Files added.
    pub files_added: i64,
    /// Bytes added.
    pub bytes_added: i64,
    /// Snapshots removed and committed.
    pub snapshot_ids: serde_json::Value,
    /// The full outcome (files, notes), as JSON.
    pub outcome: serde_json::Value,
}

pub(crate) fn state_error(e: sqlx::Error) -> Error {
    Error::State(format!("state store: {e}"))
}

/// Opens (creating if needed) the SQLite state store at `path`: the audit
/// trail, telemetry and API-set policies share it.
pub(crate) async fn connect(path: &Path) -> Result<sqlx::SqlitePool> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::State(format!("creating {}: {e}", parent.display())))?;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .busy_timeout(std::time::Duration::from_secs(10));
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(state_error)
}

impl AuditLog {
    /// Opens (creating if needed) the state store at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the database cannot be opened or migrated.
    pub async fn open(path: &Path) -> Result<AuditLog> {
        let pool = connect(path).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS maintenance_runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                table_name TEXT NOT NULL,
                operation TEXT NOT NULL,
                started_by TEXT NOT NULL,
                parameters TEXT NOT NULL,
                dry_run INTEGER NOT NULL,
                status TEXT NOT NULL,
                error TEXT,
                started_ms INTEGER NOT NULL,
                finished_ms INTEGER,
                before TEXT NOT NULL,
                after TEXT,
                files_removed INTEGER NOT NULL DEFAULT 0,
                bytes_removed INTEGER NOT NULL DEFAULT 0,
                files_added INTEGER NOT NULL DEFAULT 0,
                bytes_added INTEGER NOT NULL DEFAULT 0,
                snapshot_ids TEXT NOT NULL DEFAULT '[]',
                outcome TEXT NOT NULL DEFAULT '{}'
            )",
        )
        .execute(&pool)
        .await
        .map_err(state_error)?;
        Ok(AuditLog { pool })
    }

    /// Records the start of a run; returns its id.
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the row cannot be written.
    pub async fn start(
        &self,
        table: &str,
        operation: Operation,
        parameters: &serde_json::Value,
        dry_run: bool,
        started_by: &str,
        before: &TableSignals,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO maintenance_runs (table_name, operation, started_by, parameters, dry_run, status, started_ms, before)
             VALUES (?, ?, ?, ?, ?, 'running', ?, ?) RETURNING id",
        )
        .bind(table)
        .bind(operation.as_str())
        .bind(started_by)
        .bind(parameters.to_string())
        .bind(dry_run)
        .bind(crate::ops::now_ms())
        .bind(serde_json::to_string(before).unwrap_or_default())
        .fetch_one(&self.pool)
        .await
        .map_err(state_error)?;
        row.try_get::<i64, _>(0).map_err(state_error)
    }

    /// Records how run `id` ended.
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the row cannot be written.
    pub async fn finish(&self, id: i64, record: &RunRecord) -> Result<()> {
        sqlx::query(
            "UPDATE maintenance_runs SET status = ?, error = ?, finished_ms = ?, after = ?,
             files_removed = ?, bytes_removed = ?, files_added = ?, bytes_added = ?,
             snapshot_ids = ?, outcome = ? WHERE id = ?",
        )
        .bind(record.status)
        .bind(&record.error)
        .bind(crate::ops::now_ms())
        .bind(&record.after)
        .bind(record.files_removed)
        .bind(record.bytes_removed)
        .bind(record.files_added)
        .bind(record.bytes_added)
        .bind(&record.snapshot_ids)
        .bind(&record.outcome)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(state_error)?;
        Ok(())
    }

    /// The newest `limit` runs, of one table when `table` is given.
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the store cannot be read.
    pub async fn runs(&self, table: Option<&str>, limit: u32) -> Result<Vec<Run>> {
        let rows = sqlx::query(
            "SELECT id, table_name, operation, started_by, parameters, dry_run, status, error,
                    started_ms, finished_ms, before, after, files_removed, bytes_removed,
                    files_added, bytes_added, snapshot_ids, outcome
             FROM maintenance_runs WHERE (? IS NULL OR table_name = ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(table)
        .bind(table)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(state_error)?;
        let json = |text: Option<String>| -> serde_json::Value {
            text.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        rows.into_iter()
            .map(|row| {
                Ok(Run {
                    id: row.try_get(0)?,
                    table: row.try_get(1)?,
                    operation: row.try_get(2)?,
                    started_by: row.try_get(3)?,
                    parameters: json(row.try_get(4)?),
                    dry_run: row.try_get(5)?,
                    status: row.try_get(6)?,
                    error: row.try_get(7)?,
                    started_ms: row.try_get(8)?,
                    finished_ms: row.try_get(9)?,
                    before: json(row.try_get(10)?),
                    after: json(row.try_get(11)?),
                    files_removed: row.try_get(12)?,
                    bytes_removed: row.try_get(13)?,
                    files_added: row.try_get(14)?,
                    bytes_added: row.try_get(15)?,
                    snapshot_ids: json(row.try_get(16)?),
                    outcome: json(row.try_get(17)?),
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(state_error)
    }
}
