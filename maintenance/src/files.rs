//! Which files a table's metadata references, walked from its snapshots.
//!
//! Expiry deletes what only expired snapshots reached; orphan removal deletes
//! what nothing reaches. Both ask this module, and both compare paths in one
//! normal form ([`normalize`]) because a warehouse path may be written with or
//! without a `file:` scheme.

use std::collections::{HashMap, HashSet};

use iceberg::spec::{Manifest, ManifestFile, SnapshotRef};
use iceberg::table::Table;

use crate::Result;
use crate::commit::iceberg_error;

/// A path in one spelling: no `file://` / `file:` scheme for local files.
pub fn normalize(path: &str) -> String {
    let stripped = path
        .strip_prefix("file://")
        .or_else(|| path.strip_prefix("file:"))
        .unwrap_or(path);
    stripped.to_owned()
}

/// The path to hand a table's file IO for a [`normalize`]d path: a local
/// path gets its `file://` scheme back when the table's own location has
/// one, since storage chosen by scheme (a REST catalog's) needs it.
pub fn io_path(table_location: &str, path: &str) -> String {
    if !path.contains("://") && table_location.starts_with("file:") {
        format!("file://{path}")
    } else {
        path.to_owned()
    }
}

/// Files reached from a set of snapshots.
#[derive(Debug, Default, Clone)]
pub struct Reached {
    /// Manifest lists.
    pub manifest_lists: HashSet<String>,
    /// Manifests.
    pub manifests: HashSet<String>,
    /// Data and delete files in any entry (live or deleted) of those manifests.
    pub content: HashSet<String>,
    /// Data and delete files in live entries only: what reading the snapshots
    /// needs.
    pub live_content: HashSet<String>,
}

/// Reads manifest lists and manifests once each while walking snapshots.
pub(crate) struct Walker<'a> {
    table: &'a Table,
    lists: HashMap<String, Vec<ManifestFile>>,
    /// Per manifest: (every file, live files).
    manifests: HashMap<String, (Vec<String>, Vec<String>)>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(table: &'a Table) -> Self {
        Walker {
            table,
            lists: HashMap::new(),
            manifests: HashMap::new(),
        }
    }

    /// The files `snapshots` reach.
    pub(crate) async fn reach<'s>(
        &mut self,
        snapshots: impl IntoIterator<Item = &'s SnapshotRef>,
    ) -> Result<Reached> {
        let ident = self.table.identifier().clone();
        let file_io = self.table.file_io().clone();
        let mut reached = Reached::default();
        for snapshot in snapshots {
            let list_path = snapshot.manifest_list().to_owned();
            reached.manifest_lists.insert(normalize(&list_path));
            if !self.lists.contains_key(&list_path) {
                let list = self
                    .table
                    .manifest_list_reader(snapshot)
                    .load()
                    .await
                    .map_err(|e| iceberg_error(&ident, e))?;
                self.lists
                    .insert(list_path.clone(), list.entries().to_vec());
            }
            let manifests = self.lists.get(&list_path).cloned().unwrap_or_default();
            for manifest_file in manifests {
                let path = manifest_file.manifest_path.clone();
                reached.manifests.insert(normalize(&path));
                if !self.manifests.contains_key(&path) {
                    let manifest = manifest_file
                        .load_manifest(&file_io)
                        .await
                        .map_err(|e| iceberg_error(&ident, e))?;
                    let all = manifest
                        .entries()
                        .iter()
                        .map(|e| normalize(e.file_path()))
                        .collect();
                    let live = manifest
                        .entries()
                        .iter()
                        .filter(|e| e.is_alive())
                        .map(|e| normalize(e.file_path()))
                        .collect();
                    self.manifests.insert(path.clone(), (all, live));
                }
                if let Some((all, live)) = self.manifests.get(&path) {
                    reached.content.extend(all.iter().cloned());
                    reached.live_content.extend(live.iter().cloned());
                }
            }
        }
        Ok(reached)
    }
}

/// The manifests of the table's current snapshot, each read (none without a
/// snapshot).
///
/// # Errors
///
/// When the manifest list or a manifest cannot be read.
pub async fn current_manifests(table: &Table) -> Result<Vec<(ManifestFile, Manifest)>> {
    let wrap = |e| iceberg_error(table.identifier(), e);
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let list = table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .map_err(wrap)?;
    let mut out = Vec::with_capacity(list.entries().len());
    for manifest_file in list.entries().to_vec() {
        let manifest = manifest_file
            .load_manifest(table.file_io())
            .await
            .map_err(wrap)?;
        out.push((manifest_file, manifest));
    }
    Ok(out)
}

/// Metadata files the table's current metadata references: itself, the
/// metadata log, statistics files.
pub fn metadata_files(table: &Table) -> HashSet<String> {
    let metadata = table.metadata();
    let mut out: HashSet<String> = metadata
        .metadata_log()
        .iter()
        .map(|entry| normalize(&entry.metadata_file))
        .collect();
    if let Some(current) = table.metadata_location() {
        out.insert(normalize(current));
    }
    out.extend(
        metadata
            .statistics_iter()
            .map(|s| normalize(&s.statistics_path)),
    );
    out.extend(
        metadata
            .partition_statistics_iter()
            .map(|s| normalize(&s.statistics_path)),
    );
    out
}

/// Every file the table references from any snapshot, ref or metadata.
///
/// # Errors
///
/// When a manifest list or manifest cannot be read: then nothing may be
/// called unreferenced.
pub async fn referenced(table: &Table) -> Result<HashSet<String>> {
    let metadata = table.metadata();
    let mut walker = Walker::new(table);
    let reached = walker.reach(metadata.snapshots()).await?;
    let mut out = metadata_files(table);
    out.extend(reached.manifest_lists);
    out.extend(reached.manifests);
    out.extend(reached.content);
    Ok(out)
}
