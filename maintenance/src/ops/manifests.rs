//! Manifest consolidation (`rewrite_manifests`): the data manifests of the
//! current snapshot that are smaller than `commit.manifest.target-size-bytes`
//! (8 MiB) are merged, per partition spec, into manifests of about that size
//! with their entries clustered by partition, so planning a scan reads few
//! manifests and prunes whole ones. Data files do not change; the new snapshot
//! is a `replace` with the same totals.

use std::collections::{BTreeMap, HashMap};

use iceberg::spec::{
    FormatVersion, ManifestContentType, ManifestEntry, ManifestFile, Operation, Summary,
};
use iceberg::table::Table;
use iceberg::{Catalog, TableIdent};

use super::{FileAction, Outcome};
use crate::commit::{
    Committer, carry_entry, iceberg_error, manifest_list_path, manifest_writer, new_snapshot_id,
    with_main_snapshot, write_snapshot,
};
use crate::{Error, Result};

/// Iceberg's default `commit.manifest.target-size-bytes`.
pub const DEFAULT_TARGET_SIZE: u64 = 8 * 1024 * 1024;
const COMMIT_ATTEMPTS: usize = 4;

/// Parameters of a manifest rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Target manifest size; default the table's
    /// `commit.manifest.target-size-bytes`, else 8 MiB.
    pub target_size: Option<u64>,
}

/// What one rewrite would replace.
struct Plan {
    replaced: Vec<ManifestFile>,
    kept: Vec<ManifestFile>,
}

fn plan(table: &Table, manifests: &[ManifestFile], target: u64) -> Plan {
    let _ = table;
    let mut by_spec: BTreeMap<i32, Vec<&ManifestFile>> = BTreeMap::new();
    let mut kept = Vec::new();
    for manifest in manifests {
        if manifest.content == ManifestContentType::Data
            && u64::try_from(manifest.manifest_length).unwrap_or(0) < target
        {
            by_spec
                .entry(manifest.partition_spec_id)
                .or_default()
                .push(manifest);
        } else {
            kept.push(manifest.clone());
        }
    }
    let mut replaced = Vec::new();
    for (_, small) in by_spec {
        if small.len() > 1 {
            replaced.extend(small.into_iter().cloned());
        } else {
            kept.extend(small.into_iter().cloned());
        }
    }
    Plan { replaced, kept }
}

/// Consolidates `table`'s manifests.
pub(crate) async fn run(
    catalog: &dyn Catalog,
    ident: &TableIdent,
    committer: &dyn Committer,
    options: &ManifestOptions,
    dry_run: bool,
) -> Result<Outcome> {
    let wrap = |e| iceberg_error(ident, e);
    let mut last = String::new();
    for _ in 0..COMMIT_ATTEMPTS {
        let table = catalog.load_table(ident).await.map_err(wrap)?;
        let metadata = table.metadata();
        let mut outcome = Outcome::default();
        let Some(current) = metadata.current_snapshot() else {
            outcome.notes.push("the table has no snapshot".to_owned());
            return Ok(outcome);
        };
        if metadata.format_version() == FormatVersion::V3 {
            return Err(Error::Unsupported(format!(
                "{ident}: rewriting manifests of format v3 tables is not supported yet"
            )));
        }
        let target = options.target_size.unwrap_or_else(|| {
            metadata
                .properties()
                .get("commit.manifest.target-size-bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_TARGET_SIZE)
        });
        let list = table
            .manifest_list_reader(current)
            .load()
            .await
            .map_err(wrap)?;
        let Plan { replaced, kept } = plan(&table, list.entries(), target);
        outcome.notes.push(format!(
            "{} manifest(s): {} to merge, {} kept (target {target} bytes)",
            list.entries().len(),
            replaced.len(),
            kept.len()
        ));
        if replaced.is_empty() {
            return Ok(outcome);
        }
        if dry_run {
            outcome.files = replaced
                .iter()
                .map(|m| FileAction::WouldRewrite {
                    path: m.manifest_path.clone(),
                })
                .collect();
            return Ok(outcome);
        }
        let snapshot_id = new_snapshot_id(metadata);
        let sequence_number = metadata.next_sequence_number();
        let commit_uuid = uuid::Uuid::new_v4();
        // Live entries per spec, clustered by partition.
        let mut entries: BTreeMap<i32, Vec<(String, ManifestEntry)>> = BTreeMap::new();
        let mut input_bytes = 0u64;
        let mut input_entries = 0u64;
        for manifest_file in &replaced {
            input_bytes += u64::try_from(manifest_file.manifest_length).unwrap_or(0);
            let manifest = manifest_file
                .load_manifest(table.file_io())
                .await
                .map_err(wrap)?;
            for entry in manifest.entries() {
                input_entries += 1;
                if entry.is_alive() {
                    entries
                        .entry(manifest_file.partition_spec_id)
                        .or_default()
                        .push((
                            format!("{:?}", entry.data_file().partition()),
                            entry.as_ref().clone(),
                        ));
                }
            }
        }
        let per_entry = (input_bytes / input_entries.max(1)).max(1);
        let per_manifest = usize::try_from((target / per_entry).max(1)).unwrap_or(usize::MAX);
        let mut written: Vec<ManifestFile> = Vec::new();
        let mut counter = 0;
        let mut processed = 0u64;
        for (spec_id, mut spec_entries) in entries {
            spec_entries.sort_by(|a, b| a.0.cmp(&b.0));
            for chunk in spec_entries.chunks(per_manifest) {
                counter += 1;
                let path = format!(
                    "{}/metadata/{commit_uuid}-m{counter}.avro",
                    metadata.location()
                );
                let (mut writer, _) = manifest_writer(
                    &table,
                    path,
                    snapshot_id,
                    spec_id,
                    ManifestContentType::Data,
                )?;
                for (_, entry) in chunk {
                    processed += 1;
                    carry_entry(&mut writer, entry, false, current.snapshot_id()).map_err(wrap)?;
                }
                written.push(writer.write_manifest_file().await.map_err(wrap)?);
            }
        }
        let mut properties: HashMap<String, String> = current
            .summary()
            .additional_properties
            .iter()
            .filter(|(k, _)| k.starts_with("total-"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        properties.insert("manifests-created".to_owned(), written.len().to_string());
        properties.insert("manifests-replaced".to_owned(), replaced.len().to_string());
        properties.insert("manifests-kept".to_owned(), kept.len().to_string());
        properties.insert("entries-processed".to_owned(), processed.to_string());
        let created: Vec<String> = written.iter().map(|m| m.manifest_path.clone()).collect();
        let mut manifests = kept;
        manifests.extend(written);
        let list_path = manifest_list_path(metadata, snapshot_id, commit_uuid);
        let snapshot = write_snapshot(
            &table,
            snapshot_id,
            sequence_number,
            &list_path,
            manifests,
            Summary {
                operation: Operation::Replace,
                additional_properties: properties,
            },
        )
        .await?;
        let new = with_main_snapshot(&table, snapshot)?;
        match committer.swap(&table, new).await {
            Ok(_) => {
                outcome.new_snapshot = Some(snapshot_id);
                outcome
                    .files
                    .extend(replaced.iter().map(|m| FileAction::Replaced {
                        path: m.manifest_path.clone(),
                    }));
                outcome
                    .files
                    .extend(created.into_iter().map(|path| FileAction::Added { path }));
                return Ok(outcome);
            }
            Err(Error::Conflict(message)) => last = message,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!(
        "{ident}: gave up after {COMMIT_ATTEMPTS} commit attempts: {last}"
    )))
}
