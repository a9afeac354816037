//! Orphan file removal, with Spark's `remove_orphan_files` semantics: list
//! everything under the table's location and delete the files older than the
//! threshold (default three days) that no snapshot, branch or tag, no metadata
//! file, manifest list, manifest or statistics file references.
//!
//! The age threshold is what protects a writer in flight: its files exist
//! before its commit references them.

use std::path::Path;
use std::time::{Duration, SystemTime};

use iceberg::table::Table;

use super::{FileAction, Outcome};
use crate::files::{normalize, referenced};
use crate::{Error, Result};

/// Spark's default `older_than`: three days.
pub const DEFAULT_OLDER_THAN: Duration = Duration::from_secs(3 * 24 * 3600);

/// What to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrphanOptions {
    /// Only files older than this are removed (default three days).
    pub older_than: Option<Duration>,
}

/// A file found under the table location.
struct Listed {
    path: String,
    size: u64,
    modified: SystemTime,
}

/// Lists every file under a local directory, recursively.
fn list_local(root: &Path, out: &mut Vec<Listed>) -> std::io::Result<()> {
    if !root.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.is_dir() {
            list_local(&path, out)?;
        } else if meta.is_file() {
            out.push(Listed {
                path: path.display().to_string(),
                size: meta.len(),
                modified: meta.modified()?,
            });
        }
    }
    Ok(())
}

/// Removes (or, dry, lists) the orphan files of `table`.
pub(crate) async fn run(table: &Table, options: &OrphanOptions, dry_run: bool) -> Result<Outcome> {
    let ident = table.identifier();
    let location = normalize(table.metadata().location());
    if location.contains("://") {
        return Err(Error::Unsupported(format!(
            "{ident}: listing {location} (only local warehouses are listed in this build)"
        )));
    }
    // Referenced first, listing second: a file committed between the two is
    // younger than any sane threshold, and the threshold is checked below.
    let referenced = referenced(table).await?;
    let mut listed = Vec::new();
    list_local(Path::new(&location), &mut listed)
        .map_err(|e| Error::State(format!("{ident}: listing {location}: {e}")))?;
    let older_than = options.older_than.unwrap_or(DEFAULT_OLDER_THAN);
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut outcome = Outcome::default();
    let (mut young, mut kept) = (0u64, 0u64);
    let file_io = table.file_io();
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    for file in listed {
        if referenced.contains(&normalize(&file.path)) {
            kept += 1;
            continue;
        }
        if file.modified > cutoff {
            young += 1;
            continue;
        }
        if dry_run {
            outcome.bytes_removed += file.size;
            outcome
                .files
                .push(FileAction::WouldDelete { path: file.path });
            continue;
        }
        match file_io.delete(&file.path).await {
            Ok(()) => {
                outcome.bytes_removed += file.size;
                outcome.files.push(FileAction::Deleted { path: file.path });
            }
            Err(e) => outcome
                .notes
                .push(format!("could not delete {}: {e}", file.path)),
        }
    }
    outcome.notes.push(format!(
        "{kept} referenced file(s) kept, {young} unreferenced file(s) younger than {} kept",
        humantime::format_duration(older_than)
    ));
    Ok(outcome)
}
