//! Snapshot expiry, with Iceberg's semantics (`history.expire.*`, Spark's
//! `expire_snapshots`): snapshots older than `older_than` go, except the
//! `retain_last` newest ancestors of every branch, every branch and tag head,
//! and what a ref's own retention keeps; then the files that only the expired
//! snapshots reached are deleted.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use iceberg::spec::{SnapshotReference, SnapshotRetention, TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;

use super::{FileAction, Outcome};
use crate::commit::{Committer, iceberg_error};
use crate::files::{Walker, metadata_files, normalize};
use crate::{Error, Result, failpoint};

/// Iceberg's default `history.expire.max-snapshot-age-ms`: five days.
pub const DEFAULT_OLDER_THAN: Duration = Duration::from_secs(5 * 24 * 3600);
/// Iceberg's default `history.expire.min-snapshots-to-keep`.
pub const DEFAULT_RETAIN_LAST: u32 = 1;

/// What to expire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpireOptions {
    /// Snapshots older than this expire; default: the table's
    /// `history.expire.max-snapshot-age-ms`, else five days.
    pub older_than: Option<Duration>,
    /// The newest snapshots of each branch kept whatever their age; default:
    /// the table's `history.expire.min-snapshots-to-keep`, else 1.
    pub retain_last: Option<u32>,
}

/// The refs of a table (iceberg 0.10 has no public accessor for them; they
/// are part of the metadata's serialized form).
pub(crate) fn refs(metadata: &TableMetadata) -> HashMap<String, SnapshotReference> {
    serde_json::to_value(metadata)
        .ok()
        .and_then(|v| v.get("refs").cloned())
        .and_then(|refs| serde_json::from_value(refs).ok())
        .unwrap_or_else(|| {
            metadata
                .current_snapshot_id()
                .map(|id| {
                    HashMap::from([(
                        "main".to_owned(),
                        SnapshotReference::new(id, SnapshotRetention::branch(None, None, None)),
                    )])
                })
                .unwrap_or_default()
        })
}

/// The ids of the snapshots `options` expire at `now_ms`, oldest first.
pub fn select(metadata: &TableMetadata, options: &ExpireOptions, now_ms: i64) -> Vec<i64> {
    let property = |key: &str| {
        metadata
            .properties()
            .get(key)
            .and_then(|v| v.parse::<i64>().ok())
    };
    let max_age_ms = options
        .older_than
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .or_else(|| property("history.expire.max-snapshot-age-ms"))
        .unwrap_or(DEFAULT_OLDER_THAN.as_millis() as i64);
    let min_keep = options
        .retain_last
        .map(i64::from)
        .or_else(|| property("history.expire.min-snapshots-to-keep"))
        .unwrap_or(i64::from(DEFAULT_RETAIN_LAST))
        .max(1);
    let mut retained: HashSet<i64> = HashSet::new();
    for reference in refs(metadata).values() {
        retained.insert(reference.snapshot_id);
        let SnapshotRetention::Branch {
            min_snapshots_to_keep,
            max_snapshot_age_ms,
            ..
        } = &reference.retention
        else {
            continue;
        };
        // A branch's own retention wins over the table's, as in Iceberg.
        let keep = min_snapshots_to_keep.map_or(min_keep, i64::from);
        let cutoff = now_ms - max_snapshot_age_ms.unwrap_or(max_age_ms);
        let mut id = Some(reference.snapshot_id);
        let mut kept = 0;
        while let Some(snapshot) = id.and_then(|i| metadata.snapshot_by_id(i)) {
            if kept < keep || snapshot.timestamp_ms() >= cutoff {
                retained.insert(snapshot.snapshot_id());
                kept += 1;
                id = snapshot.parent_snapshot_id();
            } else {
                break;
            }
        }
    }
    let cutoff = now_ms - max_age_ms;
    let mut expired: Vec<(i64, i64)> = metadata
        .snapshots()
        .filter(|s| !retained.contains(&s.snapshot_id()) && s.timestamp_ms() < cutoff)
        .map(|s| (s.timestamp_ms(), s.snapshot_id()))
        .collect();
    expired.sort_unstable();
    expired.into_iter().map(|(_, id)| id).collect()
}

/// Expires snapshots of `table` and deletes the files only they reached.
pub(crate) async fn run(
    table: &Table,
    committer: &dyn Committer,
    options: &ExpireOptions,
    dry_run: bool,
) -> Result<Outcome> {
    let ident = table.identifier();
    let metadata = table.metadata();
    let expired = select(metadata, options, super::now_ms());
    let mut outcome = Outcome::default();
    if expired.is_empty() {
        outcome.notes.push("no snapshot to expire".to_owned());
        return Ok(outcome);
    }
    let expired_set: HashSet<i64> = expired.iter().copied().collect();
    let kept: Vec<_> = metadata
        .snapshots()
        .filter(|s| !expired_set.contains(&s.snapshot_id()))
        .cloned()
        .collect();
    let gone: Vec<_> = metadata
        .snapshots()
        .filter(|s| expired_set.contains(&s.snapshot_id()))
        .cloned()
        .collect();
    let mut walker = Walker::new(table);
    let keep = walker.reach(kept.iter()).await?;
    let reach = walker.reach(gone.iter()).await?;
    let mut protected = metadata_files(table);
    protected.extend(keep.manifest_lists.iter().cloned());
    protected.extend(keep.manifests.iter().cloned());
    protected.extend(keep.live_content.iter().cloned());
    let mut candidates: Vec<String> = reach
        .content
        .iter()
        .chain(&reach.manifests)
        .chain(&reach.manifest_lists)
        .filter(|p| !protected.contains(*p))
        .cloned()
        .collect();
    // Statistics files of expired snapshots go too.
    for snapshot in &gone {
        if let Some(stats) = metadata.statistics_for_snapshot(snapshot.snapshot_id()) {
            candidates.push(normalize(&stats.statistics_path));
        }
    }
    candidates.sort();
    candidates.dedup();
    outcome.snapshots_removed = expired.clone();
    outcome.notes.push(format!(
        "{} snapshot(s) expire, {} kept",
        expired.len(),
        kept.len()
    ));
    if dry_run {
        outcome.files = candidates
            .into_iter()
            .map(|path| FileAction::WouldDelete { path })
            .collect();
        return Ok(outcome);
    }
    let new = TableMetadataBuilder::new_from_metadata(
        metadata.clone(),
        table.metadata_location().map(str::to_owned),
    )
    .remove_snapshots(&expired)
    .build()
    .map_err(|e| iceberg_error(ident, e))?
    .metadata;
    let committed = committer.swap(table, new).await?;
    failpoint::hit("expire.committed", metadata.location()).await?;
    if !committer.deletes_files() {
        outcome.notes.push(format!(
            "{} file(s) no longer referenced are left to the catalog's own unreferenced-file removal (its storage refuses deletes)",
            candidates.len()
        ));
        return Ok(outcome);
    }
    // The commit is what makes the files unreferenced; a crash from here on
    // leaves orphans for the orphan sweep, never a broken table.
    let file_io = committed.file_io();
    let location = committed.metadata().location().to_owned();
    for path in candidates {
        let io_path = crate::files::io_path(&location, &path);
        let size = super::file_size(file_io, &io_path).await;
        match file_io.delete(&io_path).await {
            Ok(()) => {
                outcome.bytes_removed += size;
                outcome.files.push(FileAction::Deleted { path });
            }
            Err(e) => outcome.notes.push(format!("could not delete {path}: {e}")),
        }
    }
    if committed.metadata().snapshots().len() == metadata.snapshots().len() {
        return Err(Error::State(format!(
            "{ident}: expiry committed but no snapshot was removed"
        )));
    }
    Ok(outcome)
}
