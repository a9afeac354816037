//! The four maintenance operations and the run that chains them.
//!
//! Adding an operation: a module with its options and a `run` returning an
//! [`Outcome`], a variant of [`Operation`], an arm in [`maintain_table`]. The
//! order of [`Operation::ALL`] is the order a run applies them in: expire →
//! orphans → compact → manifests (expiry first so orphan removal sees what it
//! unreferenced; manifests last so they describe the compacted files).

pub mod compact;
pub mod expire;
pub mod manifests;
pub mod orphans;
pub mod properties;
mod zorder;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use iceberg::{Catalog, TableIdent};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditLog, RunRecord};
use crate::commit::{Committer, iceberg_error};
use crate::inventory::{TableSignals, signals};
use crate::{Error, Result};

pub use compact::{CompactOptions, Strategy};
pub use expire::ExpireOptions;
pub use manifests::ManifestOptions;
pub use orphans::OrphanOptions;

/// A maintenance operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Expire old snapshots and delete the files only they referenced.
    Expire,
    /// Delete files nothing references.
    Orphans,
    /// Rewrite data files (binpack or sort).
    Compact,
    /// Consolidate manifests.
    Manifests,
}

impl Operation {
    /// Every operation, in the order a run applies them.
    pub const ALL: [Operation; 4] = [
        Operation::Expire,
        Operation::Orphans,
        Operation::Compact,
        Operation::Manifests,
    ];

    /// The operation's name in the CLI, config and audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Expire => "expire",
            Operation::Orphans => "orphans",
            Operation::Compact => "compact",
            Operation::Manifests => "manifests",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Operation> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s.trim())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown operation `{s}`; expected expire, orphans, compact or manifests"
                ))
            })
    }
}

/// What an operation did (or, dry, would do) to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FileAction {
    /// Deleted.
    Deleted {
        /// The file.
        path: String,
    },
    /// A dry run would delete it.
    WouldDelete {
        /// The file.
        path: String,
    },
    /// Replaced in the table by new files (kept on storage until expiry).
    Replaced {
        /// The file.
        path: String,
    },
    /// A dry run would rewrite it.
    WouldRewrite {
        /// The file.
        path: String,
    },
    /// Written.
    Added {
        /// The file.
        path: String,
    },
}

/// The result of one operation on one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Files touched.
    pub files: Vec<FileAction>,
    /// Bytes deleted or replaced.
    pub bytes_removed: u64,
    /// Bytes written.
    pub bytes_added: u64,
    /// Snapshots removed from the table.
    pub snapshots_removed: Vec<i64>,
    /// The snapshot the operation committed.
    pub new_snapshot: Option<i64>,
    /// What it decided and why, for people.
    pub notes: Vec<String>,
}

impl Outcome {
    fn count(&self, pick: fn(&FileAction) -> bool) -> u64 {
        self.files.iter().filter(|f| pick(f)).count() as u64
    }

    /// Files deleted, replaced, or (dry) that would be.
    pub fn files_removed(&self) -> u64 {
        self.count(|f| !matches!(f, FileAction::Added { .. }))
    }

    /// Files written.
    pub fn files_added(&self) -> u64 {
        self.count(|f| matches!(f, FileAction::Added { .. }))
    }
}

/// The parameters of a run: which operations and how.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The operations; run in [`Operation::ALL`] order whatever the order here.
    pub operations: Vec<Operation>,
    /// Expiry parameters.
    pub expire: ExpireOptions,
    /// Orphan removal parameters.
    pub orphans: OrphanOptions,
    /// Compaction parameters.
    pub compact: CompactOptions,
    /// Manifest rewrite parameters.
    pub manifests: ManifestOptions,
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Who or what started the run, for the audit trail (`cli:root`,
    /// `schedule`, `api:alice`...).
    pub started_by: String,
}

/// One operation's report: the outcome with the table's signals around it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `catalog.namespace.table`.
    pub table: String,
    /// The operation.
    pub operation: Operation,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Signals before.
    pub before: TableSignals,
    /// Signals after.
    pub after: TableSignals,
    /// What happened.
    pub outcome: Outcome,
    /// The audit trail's id of this run.
    pub run_id: Option<i64>,
}

/// Where a run happens: a catalog, its committer and its audit trail.
#[derive(Clone)]
pub struct Target {
    /// The catalog's configured name.
    pub catalog_name: String,
    /// The catalog.
    pub catalog: Arc<dyn Catalog>,
    /// Commits replace snapshots and metadata changes.
    pub committer: Arc<dyn Committer>,
    /// Records every run.
    pub audit: Option<AuditLog>,
}

/// Now, in ms since the epoch (the unit of every time in the state store).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) async fn file_size(file_io: &iceberg::io::FileIO, path: &str) -> u64 {
    match file_io.new_input(path) {
        Ok(input) => input.metadata().await.map_or(0, |m| m.size),
        Err(_) => 0,
    }
}

/// Runs the requested operations on one table, in order, recording each in
/// the audit trail. Stops at the first failing operation (later ones would
/// build on a state the failed one did not reach).
///
/// # Errors
///
/// The failing operation's error; earlier reports are lost to the caller but
/// kept in the audit trail.
pub async fn maintain_table(
    target: &Target,
    ident: &TableIdent,
    request: &Request,
) -> Result<Vec<Report>> {
    let mut operations = request.operations.clone();
    operations.sort();
    operations.dedup();
    let mut reports = Vec::new();
    for operation in operations {
        let report = run_one(target, ident, operation, request).await?;
        reports.push(report);
    }
    Ok(reports)
}

async fn run_one(
    target: &Target,
    ident: &TableIdent,
    operation: Operation,
    request: &Request,
) -> Result<Report> {
    let wrap = |e| iceberg_error(ident, e);
    let name = format!("{}.{}", target.catalog_name, ident);
    let table = target.catalog.load_table(ident).await.map_err(wrap)?;
    let before = table_signals(&table);
    let parameters = parameters(operation, request);
    let run_id = match &target.audit {
        Some(audit) => Some(
            audit
                .start(
                    &name,
                    operation,
                    &parameters,
                    request.dry_run,
                    &request.started_by,
                    &before,
                )
                .await?,
        ),
        None => None,
    };
    let committer = target.committer.as_ref();
    let catalog = target.catalog.as_ref();
    let result = match operation {
        Operation::Expire => expire::run(&table, committer, &request.expire, request.dry_run).await,
        Operation::Orphans if !committer.deletes_files() => Err(Error::Unsupported(format!(
            "{}: removing orphan files where the catalog's storage refuses deletes (Amazon S3 Tables removes unreferenced files itself)",
            table.identifier()
        ))),
        Operation::Orphans => orphans::run(&table, &request.orphans, request.dry_run).await,
        Operation::Compact => {
            compact::run(catalog, ident, committer, &request.compact, request.dry_run).await
        }
        Operation::Manifests => {
            manifests::run(
                catalog,
                ident,
                committer,
                &request.manifests,
                request.dry_run,
            )
            .await
        }
    };
    let after = match target.catalog.load_table(ident).await {
        Ok(t) => table_signals(&t),
        Err(_) => before.clone(),
    };
    if let (Some(audit), Some(id)) = (&target.audit, run_id) {
        let record = RunRecord::finish(&result, &after);
        audit.finish(id, &record).await?;
    }
    let outcome = result?;
    Ok(Report {
        table: name,
        operation,
        dry_run: request.dry_run,
        before,
        after,
        outcome,
        run_id,
    })
}

fn table_signals(table: &iceberg::table::Table) -> TableSignals {
    let ident = table.identifier();
    signals(&ident.namespace().join("."), ident.name(), table.metadata())
}

fn parameters(operation: Operation, request: &Request) -> serde_json::Value {
    let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs());
    match operation {
        Operation::Expire => serde_json::json!({
            "older_than_secs": secs(request.expire.older_than),
            "retain_last": request.expire.retain_last,
        }),
        Operation::Orphans => serde_json::json!({
            "older_than_secs": secs(request.orphans.older_than),
        }),
        Operation::Compact => serde_json::json!({
            "strategy": match &request.compact.strategy {
                Strategy::Binpack => "binpack".to_owned(),
                Strategy::Sort(_) => "sort".to_owned(),
                Strategy::ZOrder(_) => "zorder".to_owned(),
            },
            "sort_by": match &request.compact.strategy {
                Strategy::Sort(columns) | Strategy::ZOrder(columns) => columns.clone(),
                Strategy::Binpack => Vec::new(),
            },
            "target_file_size": request.compact.target_file_size,
            "min_input_files": request.compact.min_input_files,
            "rewrite_all": request.compact.rewrite_all,
        }),
        Operation::Manifests => serde_json::json!({
            "target_size": request.manifests.target_size,
        }),
    }
}
