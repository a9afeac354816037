//! Orphan file removal, with Spark's `remove_orphan_files` semantics: list
//! everything under the table's location and delete the files older than the
//! threshold (default three days) that no snapshot, branch or tag, no metadata
//! file, manifest list, manifest or statistics file references.
//!
//! The age threshold is what protects a writer in flight: its files exist
//! before its commit references them.
//!
//! Local warehouses are listed with the file system; `s3://` ones with
//! OpenDAL, configured from the table's own storage properties (endpoint,
//! region, credentials, path style) so the listing sees what the table's
//! file IO sees.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use iceberg::io::{
    CLIENT_REGION, S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_PATH_STYLE_ACCESS, S3_REGION,
    S3_SECRET_ACCESS_KEY, S3_SESSION_TOKEN,
};
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

/// Lists every object under an `s3://bucket/prefix` location, with the S3
/// settings of `props` (iceberg-rust's `s3.*` property names).
async fn list_s3(location: &str, props: &HashMap<String, String>) -> Result<Vec<Listed>> {
    let fail = |e: String| Error::State(format!("listing {location}: {e}"));
    // Listed paths keep the location's own scheme: they are compared with
    // the paths the table's metadata references, text for text.
    let (scheme, rest) = location
        .split_once("://")
        .ok_or_else(|| fail("not an s3:// location".to_owned()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut config = opendal::services::S3Config::default();
    config.bucket = bucket.to_owned();
    config.endpoint = props.get(S3_ENDPOINT).cloned();
    config.region = props
        .get(S3_REGION)
        .or_else(|| props.get(CLIENT_REGION))
        .cloned();
    config.access_key_id = props.get(S3_ACCESS_KEY_ID).cloned();
    config.secret_access_key = props.get(S3_SECRET_ACCESS_KEY).cloned();
    config.session_token = props.get(S3_SESSION_TOKEN).cloned();
    // Iceberg's default is virtual-host style, as iceberg-rust's S3 storage.
    config.enable_virtual_host_style = !props
        .get(S3_PATH_STYLE_ACCESS)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let operator = opendal::Operator::from_config(config)
        .map_err(|e| fail(e.to_string()))?
        .finish();
    let prefix = format!("{}/", prefix.trim_end_matches('/'));
    let mut lister = operator
        .lister_with(&prefix)
        .recursive(true)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    while let Some(entry) = lister.try_next().await.map_err(|e| fail(e.to_string()))? {
        let meta = entry.metadata();
        if meta.is_dir() {
            continue;
        }
        // An object store that reports no modification time gets "now":
        // such a file is never old enough to delete.
        let modified = meta
            .last_modified()
            .map(SystemTime::from)
            .unwrap_or_else(SystemTime::now);
        out.push(Listed {
            path: format!("{scheme}://{bucket}/{}", entry.path()),
            size: meta.content_length(),
            modified,
        });
    }
    Ok(out)
}

/// Removes (or, dry, lists) the orphan files of `table`.
pub(crate) async fn run(table: &Table, options: &OrphanOptions, dry_run: bool) -> Result<Outcome> {
    let ident = table.identifier();
    let location = normalize(table.metadata().location());
    let s3 = location.starts_with("s3://") || location.starts_with("s3a://");
    if location.contains("://") && !s3 {
        return Err(Error::Unsupported(format!(
            "{ident}: listing {location} (local and s3:// warehouses are listed)"
        )));
    }
    // Referenced first, listing second: a file committed between the two is
    // younger than any sane threshold, and the threshold is checked below.
    let referenced = referenced(table).await?;
    let mut listed = Vec::new();
    if s3 {
        listed = list_s3(&location, table.file_io().config().props()).await?;
    } else {
        list_local(Path::new(&location), &mut listed)
            .map_err(|e| Error::State(format!("{ident}: listing {location}: {e}")))?;
    }
    // The current metadata file is always referenced and always there: if
    // the listing does not show it, listed and referenced paths are spelled
    // differently, and every referenced file would look like an orphan.
    if let Some(current) = table.metadata_location().map(normalize)
        && !listed.iter().any(|f| f.path == current)
    {
        return Err(Error::State(format!(
            "{ident}: listing {location} did not find the current metadata file {current}; \
             refusing to judge any file an orphan"
        )));
    }
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
        match file_io
            .delete(crate::files::io_path(
                table.metadata().location(),
                &file.path,
            ))
            .await
        {
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
