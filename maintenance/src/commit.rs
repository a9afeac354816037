//! The commit layer: what iceberg 0.10 cannot commit for Floe.
//!
//! iceberg-rust has no rewrite (replace) action, and its `TableCommit` cannot
//! be built outside the crate, so a compaction or a manifest rewrite cannot go
//! through `Catalog::update_table`. Floe builds the new snapshot itself from
//! public pieces (manifest writers, the manifest list writer,
//! `Snapshot::builder`, `TableMetadataBuilder`) and swaps the table's metadata
//! through a [`Committer`]: one implementation per catalog kind, each an
//! atomic compare-and-swap against the metadata the change was built on, so a
//! concurrent commit is never overwritten — the caller re-reads and rebuilds.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, MAIN_BRANCH, ManifestContentType, ManifestFile,
    ManifestListWriter, ManifestWriter, ManifestWriterBuilder, Operation, Snapshot,
    SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary, TableMetadata,
    TableMetadataBuilder,
};
use iceberg::table::Table;
use iceberg::{Catalog, MetadataLocation, TableIdent};
use uuid::Uuid;

use crate::{Error, Result};

/// Swaps a table's metadata for a new version, atomically, if and only if the
/// table still is at the version the change was built on.
#[async_trait]
pub trait Committer: Send + Sync {
    /// Writes `new` next to `base`'s metadata and makes it current.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when the table moved since `base` was read (nothing
    /// changed; re-read and rebuild), other errors when the swap failed.
    async fn swap(&self, base: &Table, new: TableMetadata) -> Result<Table>;

    /// Whether Floe may delete files in this catalog's storage. Amazon S3
    /// Tables refuses object deletes in table buckets: the service removes
    /// unreferenced files itself.
    fn deletes_files(&self) -> bool {
        true
    }
}

/// A committer for the SQL catalog (SQLite or PostgreSQL): the same
/// compare-and-swap on `iceberg_tables.metadata_location` that
/// `iceberg-catalog-sql` does.
pub struct SqlCommitter {
    pool: sqlx::AnyPool,
    postgres: bool,
    catalog_name: String,
}

impl SqlCommitter {
    /// Connects to the catalog database at `uri` (as configured: a SQLite
    /// URL or path, or a `postgres://` URL).
    ///
    /// # Errors
    ///
    /// [`Error::State`] when the database cannot be opened.
    pub async fn connect(uri: &str, catalog_name: &str) -> Result<SqlCommitter> {
        let postgres = crate::catalog::is_postgres_url(uri);
        let url = if postgres {
            uri.to_owned()
        } else {
            let path = uri
                .strip_prefix("sqlite://")
                .or_else(|| uri.strip_prefix("sqlite:"))
                .unwrap_or(uri);
            format!("sqlite://{path}")
        };
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .map_err(|e| Error::State(format!("catalog database {}: {e}", redact(&url))))?;
        Ok(SqlCommitter {
            pool,
            postgres,
            catalog_name: catalog_name.to_owned(),
        })
    }
}

#[async_trait]
impl Committer for SqlCommitter {
    async fn swap(&self, base: &Table, new: TableMetadata) -> Result<Table> {
        let ident = base.identifier();
        let (current, location) = write_next_metadata(base, &new).await?;
        crate::failpoint::hit("commit.swap", base.metadata().location()).await?;
        let query = if self.postgres {
            "UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2 \
             WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = $6"
        } else {
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = ?"
        };
        let swapped = sqlx::query(query)
            .bind(&location)
            .bind(&current)
            .bind(&self.catalog_name)
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .bind(&current)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::State(format!("committing {ident}: {e}")))?;
        if swapped.rows_affected() == 0 {
            return Err(abandon(base, &location).await);
        }
        committed_table(base, new, location)
    }
}

/// Writes `new` as the next metadata version after `base`'s and returns
/// (`base`'s metadata location, the new file's). Every committer writes
/// first and swaps second: the file is referenced by nothing until the swap.
///
/// # Errors
///
/// [`Error::Conflict`] when the next version's file exists already (another
/// writer got there first), [`Error::Table`] when writing fails.
pub(crate) async fn write_next_metadata(
    base: &Table,
    new: &TableMetadata,
) -> Result<(String, String)> {
    let ident = base.identifier();
    let current = base
        .metadata_location()
        .ok_or_else(|| Error::State(format!("{ident} has no metadata location")))?
        .to_owned();
    // A new version with a new id: never the current file (overwriting it
    // would commit without the compare-and-swap).
    let location = MetadataLocation::from_str(&current)
        .map_err(|e| iceberg_error(ident, e))?
        .with_next_version()
        .with_new_metadata(new);
    if base
        .file_io()
        .exists(location.to_string())
        .await
        .map_err(|e| iceberg_error(ident, e))?
    {
        return Err(Error::Conflict(format!(
            "{ident}: metadata file {location} exists already"
        )));
    }
    new.write_to(base.file_io(), &location)
        .await
        .map_err(|e| iceberg_error(ident, e))?;
    Ok((current, location.to_string()))
}

/// The conflict error of a swap that lost, after removing the metadata file
/// it wrote: that file is referenced by nothing, so it goes now rather than
/// waiting for the orphan sweep.
pub(crate) async fn abandon(base: &Table, location: &str) -> Error {
    let _ = base.file_io().delete(location).await;
    Error::Conflict(format!("{} changed since it was read", base.identifier()))
}

/// The table as committed: `new` at `location`, with `base`'s file IO.
pub(crate) fn committed_table(base: &Table, new: TableMetadata, location: String) -> Result<Table> {
    let ident = base.identifier();
    Table::builder()
        .identifier(ident.clone())
        .metadata(new)
        .metadata_location(location)
        .file_io(base.file_io().clone())
        .runtime(iceberg::Runtime::current())
        .build()
        .map_err(|e| iceberg_error(ident, e))
}

/// A committer that goes through the catalog itself, for changes iceberg-rust
/// can express (snapshot expiry): kept behind the same trait so operations
/// do not care.
pub struct CatalogCommitter {
    /// The catalog.
    pub catalog: Arc<dyn Catalog>,
}

/// `url` without a password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 && url[scheme + 3..at].contains(':') => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

pub(crate) fn iceberg_error(ident: &TableIdent, source: iceberg::Error) -> Error {
    if source.kind() == iceberg::ErrorKind::CatalogCommitConflicts {
        return Error::Conflict(format!("{ident}: {source}"));
    }
    Error::Table {
        table: ident.to_string(),
        source: Box::new(source),
    }
}

/// A replacement of data files by others with the same rows: what binpack
/// and sort compaction commit.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// Paths of the live data files the new files replace.
    pub removed: HashSet<String>,
    /// The new data files.
    pub added: Vec<DataFile>,
    /// The sequence number of the snapshot the rewrite read: the new files
    /// get it as their data sequence number, so that equality deletes
    /// committed meanwhile still apply to them (as Iceberg's Java
    /// `use-starting-sequence-number`).
    pub starting_sequence_number: i64,
    /// Also drop delete files that can no longer apply to any live data file
    /// (their rows were removed when the files they targeted were rewritten),
    /// so that readers stop loading them and readers without delete support
    /// (pyiceberg with equality deletes) can read the table again.
    pub remove_dangling_deletes: bool,
}

/// What a replace snapshot changed, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaceSummary {
    /// The new snapshot.
    pub snapshot_id: i64,
    /// Data files removed / added.
    pub files_removed: u64,
    /// Data files added.
    pub files_added: u64,
    /// Bytes removed.
    pub bytes_removed: u64,
    /// Bytes added.
    pub bytes_added: u64,
    /// Delete files dropped as dangling.
    pub deletes_removed: u64,
}

/// Builds the table metadata with a `replace` snapshot that applies `rewrite`
/// on top of `table`'s current snapshot.
///
/// # Errors
///
/// [`Error::Conflict`] when a file to remove is no longer live in the current
/// snapshot (a concurrent delete or overwrite took it: the rewrite must be
/// abandoned), other errors when manifests cannot be read or written.
pub async fn replace_snapshot(
    table: &Table,
    rewrite: &Rewrite,
) -> Result<(TableMetadata, ReplaceSummary)> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let metadata = table.metadata();
    if metadata.format_version() == FormatVersion::V3 {
        return Err(Error::Unsupported(format!(
            "{ident}: rewriting format v3 tables (row lineage) is not supported yet"
        )));
    }
    let Some(current) = metadata.current_snapshot() else {
        return Err(Error::Conflict(format!("{ident} has no current snapshot")));
    };
    let file_io = table.file_io();
    let snapshot_id = new_snapshot_id(metadata);
    let sequence_number = metadata.next_sequence_number();
    let commit_uuid = Uuid::new_v4();
    let mut counter = 0u32;
    let mut manifest_path = || {
        counter += 1;
        format!(
            "{}/metadata/{commit_uuid}-m{counter}.avro",
            metadata.location()
        )
    };
    let manifest_list = table
        .manifest_list_reader(current)
        .load()
        .await
        .map_err(wrap)?;
    let mut collector = SnapshotSummaryCollector::default();
    let schema = Arc::clone(metadata.current_schema());
    let mut found = HashSet::new();
    let mut manifests: Vec<ManifestFile> = Vec::new();
    let mut summary = ReplaceSummary {
        snapshot_id,
        ..ReplaceSummary::default()
    };
    // The lowest data sequence number of the data files live after the
    // rewrite: a delete file at or below it (equality) or below it
    // (position) can no longer apply to any of them.
    let mut min_data_seq = if rewrite.added.is_empty() {
        i64::MAX
    } else {
        rewrite.starting_sequence_number
    };
    let mut delete_manifests = Vec::new();
    for manifest_file in manifest_list.entries() {
        if manifest_file.content != ManifestContentType::Data {
            delete_manifests.push(manifest_file.clone());
            continue;
        }
        let manifest = manifest_file.load_manifest(file_io).await.map_err(wrap)?;
        for entry in manifest.entries() {
            if entry.is_alive() && !rewrite.removed.contains(entry.file_path()) {
                min_data_seq = min_data_seq.min(entry.sequence_number().unwrap_or(0));
            }
        }
        let touches = manifest
            .entries()
            .iter()
            .any(|e| e.is_alive() && rewrite.removed.contains(e.file_path()));
        if !touches {
            manifests.push(manifest_file.clone());
            continue;
        }
        let (mut writer, spec) = manifest_writer(
            table,
            manifest_path(),
            snapshot_id,
            manifest_file.partition_spec_id,
            ManifestContentType::Data,
        )?;
        for entry in manifest.entries() {
            if !entry.is_alive() {
                // Deleted entries belong to the snapshot that deleted them.
                continue;
            }
            let removed = rewrite.removed.contains(entry.file_path());
            if removed {
                let data_file = entry.data_file();
                found.insert(entry.file_path().to_owned());
                collector.remove_file(data_file, Arc::clone(&schema), Arc::clone(&spec));
                summary.files_removed += 1;
                summary.bytes_removed += data_file.file_size_in_bytes();
            }
            carry_entry(&mut writer, entry, removed, current.snapshot_id()).map_err(wrap)?;
        }
        manifests.push(writer.write_manifest_file().await.map_err(wrap)?);
    }
    for manifest_file in delete_manifests {
        if !rewrite.remove_dangling_deletes {
            manifests.push(manifest_file);
            continue;
        }
        let manifest = manifest_file.load_manifest(file_io).await.map_err(wrap)?;
        let on_removed = position_deletes_on(file_io, &manifest, &rewrite.removed)
            .await
            .map_err(wrap)?;
        let dangling = |entry: &iceberg::spec::ManifestEntry| {
            let seq = entry.sequence_number().unwrap_or(i64::MAX);
            match entry.data_file().content_type() {
                DataContentType::EqualityDeletes => seq <= min_data_seq,
                _ => {
                    seq < min_data_seq
                        || entry
                            .data_file()
                            .referenced_data_file()
                            .is_some_and(|p| rewrite.removed.contains(&p))
                        || on_removed.contains(entry.file_path())
                }
            }
        };
        if !manifest
            .entries()
            .iter()
            .any(|e| e.is_alive() && dangling(e))
        {
            manifests.push(manifest_file);
            continue;
        }
        let (mut writer, spec) = manifest_writer(
            table,
            manifest_path(),
            snapshot_id,
            manifest_file.partition_spec_id,
            ManifestContentType::Deletes,
        )?;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let removed = dangling(entry);
            if removed {
                collector.remove_file(entry.data_file(), Arc::clone(&schema), Arc::clone(&spec));
                summary.deletes_removed += 1;
            }
            carry_entry(&mut writer, entry, removed, current.snapshot_id()).map_err(wrap)?;
        }
        manifests.push(writer.write_manifest_file().await.map_err(wrap)?);
    }
    if let Some(missing) = rewrite.removed.iter().find(|p| !found.contains(*p)) {
        return Err(Error::Conflict(format!(
            "{ident}: {missing} is no longer live (deleted or rewritten concurrently)"
        )));
    }
    if !rewrite.added.is_empty() {
        let (mut writer, spec) = manifest_writer(
            table,
            manifest_path(),
            snapshot_id,
            metadata.default_partition_spec_id(),
            ManifestContentType::Data,
        )?;
        for data_file in &rewrite.added {
            collector.add_file(data_file, Arc::clone(&schema), Arc::clone(&spec));
            summary.files_added += 1;
            summary.bytes_added += data_file.file_size_in_bytes();
            writer
                .add_file(data_file.clone(), rewrite.starting_sequence_number)
                .map_err(wrap)?;
        }
        manifests.push(writer.write_manifest_file().await.map_err(wrap)?);
    }
    crate::failpoint::hit("commit.manifests_written", metadata.location()).await?;
    let list_path = manifest_list_path(metadata, snapshot_id, commit_uuid);
    let summary_props = totals(current.summary(), collector.build());
    let snapshot = write_snapshot(
        table,
        snapshot_id,
        sequence_number,
        &list_path,
        manifests,
        Summary {
            operation: Operation::Replace,
            additional_properties: summary_props,
        },
    )
    .await?;
    let new = with_main_snapshot(table, snapshot)?;
    Ok((new, summary))
}

/// Builds the table metadata with a `delete` snapshot that adds delete files
/// (row-level deletes) on top of the current snapshot; commit it with a
/// [`Committer`]. iceberg 0.10's `fast_append` takes data files only.
///
/// # Errors
///
/// [`Error::Unsupported`] for format v1 tables (no delete files) and v3
/// tables, other errors when manifests cannot be read or written.
pub async fn add_delete_files(table: &Table, deletes: Vec<DataFile>) -> Result<TableMetadata> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(Error::Unsupported(format!(
            "{ident}: delete files need a format v2 table"
        )));
    }
    let snapshot_id = new_snapshot_id(metadata);
    let sequence_number = metadata.next_sequence_number();
    let commit_uuid = Uuid::new_v4();
    let mut manifests = match metadata.current_snapshot() {
        Some(current) => table
            .manifest_list_reader(current)
            .load()
            .await
            .map_err(wrap)?
            .entries()
            .to_vec(),
        None => Vec::new(),
    };
    let schema = Arc::clone(metadata.current_schema());
    let (mut writer, spec) = manifest_writer(
        table,
        format!("{}/metadata/{commit_uuid}-m0.avro", metadata.location()),
        snapshot_id,
        metadata.default_partition_spec_id(),
        ManifestContentType::Deletes,
    )?;
    let mut collector = SnapshotSummaryCollector::default();
    for file in deletes {
        collector.add_file(&file, Arc::clone(&schema), Arc::clone(&spec));
        writer.add_file(file, -1).map_err(wrap)?;
    }
    manifests.push(writer.write_manifest_file().await.map_err(wrap)?);
    let previous = metadata
        .current_snapshot()
        .map(|s| s.summary().clone())
        .unwrap_or(Summary {
            operation: Operation::Append,
            additional_properties: HashMap::new(),
        });
    let list_path = manifest_list_path(metadata, snapshot_id, commit_uuid);
    let snapshot = write_snapshot(
        table,
        snapshot_id,
        sequence_number,
        &list_path,
        manifests,
        Summary {
            operation: Operation::Delete,
            additional_properties: totals(&previous, collector.build()),
        },
    )
    .await?;
    with_main_snapshot(table, snapshot)
}

/// A writer of a new manifest at `path` for snapshot `snapshot_id`, in
/// partition spec `spec_id` (returned too), for the table's format version.
/// The live position-delete files of `manifest` whose every row points at a
/// file in `removed`: once those files are replaced they delete nothing.
/// The `file_path` column's bounds answer for a file that targets one data
/// file; a file that targets several is read (position deletes are small).
async fn position_deletes_on(
    file_io: &iceberg::io::FileIO,
    manifest: &iceberg::spec::Manifest,
    removed: &HashSet<String>,
) -> iceberg::Result<HashSet<String>> {
    use iceberg::metadata_columns::RESERVED_FIELD_ID_DELETE_FILE_PATH as PATH;
    use iceberg::spec::PrimitiveLiteral;
    let text = |datum: Option<&iceberg::spec::Datum>| match datum.map(|d| d.literal()) {
        Some(PrimitiveLiteral::String(s)) => Some(s.clone()),
        _ => None,
    };
    let mut dangling = HashSet::new();
    if removed.is_empty() {
        return Ok(dangling);
    }
    for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
        let file = entry.data_file();
        if file.content_type() != DataContentType::PositionDeletes {
            continue;
        }
        let (low, high) = (
            text(file.lower_bounds().get(&PATH)),
            text(file.upper_bounds().get(&PATH)),
        );
        let all_removed = match (low, high) {
            (Some(low), Some(high)) if low == high => removed.contains(&low),
            // Bounds outside the removed set: some row targets a kept file.
            (Some(low), Some(high)) if !(removed.contains(&low) && removed.contains(&high)) => {
                false
            }
            _ => {
                let bytes = file_io.new_input(entry.file_path())?.read().await?;
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                        .and_then(|b| b.build())
                        .map_err(|e| {
                            iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e.to_string())
                        })?;
                let mut all = true;
                for batch in reader {
                    let batch = batch.map_err(|e| {
                        iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e.to_string())
                    })?;
                    let paths = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .ok_or_else(|| {
                            iceberg::Error::new(
                                iceberg::ErrorKind::DataInvalid,
                                format!("{}: file_path is not a string column", entry.file_path()),
                            )
                        })?;
                    all &= paths.iter().all(|p| p.is_some_and(|p| removed.contains(p)));
                }
                all
            }
        };
        if all_removed {
            dangling.insert(entry.file_path().to_owned());
        }
    }
    Ok(dangling)
}

pub(crate) fn manifest_writer(
    table: &Table,
    path: String,
    snapshot_id: i64,
    spec_id: i32,
    content: ManifestContentType,
) -> Result<(ManifestWriter, iceberg::spec::PartitionSpecRef)> {
    let ident = table.identifier();
    let metadata = table.metadata();
    let spec = Arc::clone(
        metadata
            .partition_spec_by_id(spec_id)
            .ok_or_else(|| Error::State(format!("{ident}: unknown partition spec {spec_id}")))?,
    );
    let output = table
        .file_io()
        .new_output(path)
        .map_err(|e| iceberg_error(ident, e))?;
    let builder = ManifestWriterBuilder::new(
        output,
        Some(snapshot_id),
        Arc::clone(metadata.current_schema()),
        spec.as_ref().clone(),
    );
    let writer = match (metadata.format_version(), content) {
        (FormatVersion::V1, _) => builder.build_v1(),
        (_, ManifestContentType::Data) => builder.build_v2_data(),
        (_, ManifestContentType::Deletes) => builder.build_v2_deletes(),
    };
    Ok((writer, spec))
}

/// Writes a live entry of an existing manifest into its rewritten manifest,
/// keeping its sequence numbers: as DELETED when `removed`, else as EXISTING,
/// still credited to the snapshot that added it (`current` when the entry
/// inherited its id).
pub(crate) fn carry_entry(
    writer: &mut ManifestWriter,
    entry: &iceberg::spec::ManifestEntry,
    removed: bool,
    current: i64,
) -> iceberg::Result<()> {
    let file = entry.data_file().clone();
    let seq = entry.sequence_number().unwrap_or(0);
    let file_seq = entry.file_sequence_number.or(Some(seq));
    if removed {
        writer.add_delete_file(file, seq, file_seq)
    } else {
        writer.add_existing_file(file, entry.snapshot_id().unwrap_or(current), seq, file_seq)
    }
}

/// Where the manifest list of a new snapshot goes.
pub(crate) fn manifest_list_path(
    metadata: &TableMetadata,
    snapshot_id: i64,
    commit: Uuid,
) -> String {
    format!(
        "{}/metadata/snap-{snapshot_id}-0-{commit}.avro",
        metadata.location()
    )
}

/// Writes the manifest list of a new snapshot on the current one and returns
/// the snapshot.
pub(crate) async fn write_snapshot(
    table: &Table,
    snapshot_id: i64,
    sequence_number: i64,
    list_path: &str,
    manifests: Vec<ManifestFile>,
    summary: Summary,
) -> Result<Snapshot> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let metadata = table.metadata();
    let parent = metadata.current_snapshot_id();
    let writer = table
        .file_io()
        .new_output(list_path)
        .map_err(wrap)?
        .writer()
        .await
        .map_err(wrap)?;
    let mut list = match metadata.format_version() {
        FormatVersion::V1 => ManifestListWriter::v1(writer, snapshot_id, parent),
        _ => ManifestListWriter::v2(writer, snapshot_id, parent, sequence_number),
    };
    list.add_manifests(manifests.into_iter()).map_err(wrap)?;
    list.close().await.map_err(wrap)?;
    Ok(Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(parent)
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(chrono_now_ms())
        .with_manifest_list(list_path.to_owned())
        .with_summary(summary)
        .with_schema_id(metadata.current_schema_id())
        .build())
}

/// `table`'s metadata with `snapshot` added and made the head of `main`.
pub(crate) fn with_main_snapshot(table: &Table, snapshot: Snapshot) -> Result<TableMetadata> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let snapshot_id = snapshot.snapshot_id();
    let built = TableMetadataBuilder::new_from_metadata(
        table.metadata().clone(),
        table.metadata_location().map(str::to_owned),
    )
    .add_snapshot(snapshot)
    .map_err(wrap)?
    .set_ref(
        MAIN_BRANCH,
        SnapshotReference::new(snapshot_id, SnapshotRetention::branch(None, None, None)),
    )
    .map_err(wrap)?
    .build()
    .map_err(wrap)?;
    Ok(built.metadata)
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A snapshot id no snapshot of the table has (random, positive).
pub(crate) fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let (a, b) = Uuid::new_v4().as_u64_pair();
        let id = ((a ^ b) >> 1) as i64;
        if id != 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// The summary of a snapshot that applies `changes` (added-* / removed-* /
/// deleted-* counters) to the table `previous` describes: Iceberg's `total-*`
/// properties carried forward.
fn totals(previous: &Summary, changes: HashMap<String, String>) -> HashMap<String, String> {
    let get = |map: &HashMap<String, String>, key: &str| -> i64 {
        map.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let prev = &previous.additional_properties;
    let mut out = changes.clone();
    for (total, added, removed) in [
        ("total-data-files", "added-data-files", "deleted-data-files"),
        (
            "total-delete-files",
            "added-delete-files",
            "removed-delete-files",
        ),
        ("total-records", "added-records", "deleted-records"),
        ("total-files-size", "added-files-size", "removed-files-size"),
        (
            "total-position-deletes",
            "added-position-deletes",
            "removed-position-deletes",
        ),
        (
            "total-equality-deletes",
            "added-equality-deletes",
            "removed-equality-deletes",
        ),
    ] {
        let value = get(prev, total) + get(&changes, added) - get(&changes, removed);
        out.insert(total.to_owned(), value.max(0).to_string());
    }
    out
}

/// True when a file's content is data (not deletes).
pub(crate) fn is_data(file: &DataFile) -> bool {
    file.content_type() == DataContentType::Data
}
