//! The inventory: every table of a catalog with the metadata signals that say
//! whether it needs maintenance.
//!
//! Signals come from table metadata and the current snapshot's summary, so an
//! inventory reads no manifest and no data file.

use serde::Serialize;

use crate::{Error, Result};

/// The health signals of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSignals {
    /// The namespace, dot-joined for nested namespaces.
    pub namespace: String,
    /// The table's name.
    pub name: String,
    /// Snapshots kept in the table's metadata.
    pub snapshots: u64,
    /// Data files in the current snapshot.
    pub data_files: u64,
    /// Delete files in the current snapshot.
    pub delete_files: u64,
    /// Records in the current snapshot.
    pub records: u64,
    /// Bytes of data files in the current snapshot.
    pub data_bytes: u64,
    /// When the oldest kept snapshot was committed, in ms since the epoch.
    pub oldest_snapshot_ms: Option<i64>,
    /// When the current snapshot was committed, in ms since the epoch.
    pub last_commit_ms: Option<i64>,
    /// Snapshots committed after the newest `replace` (compaction) snapshot,
    /// or all of them when the table was never compacted.
    pub commits_since_rewrite: u64,
}

/// Reads the signals of every table in every namespace of `catalog`.
///
/// # Errors
///
/// [`Error::Catalog`] when a namespace or table cannot be listed or loaded.
pub async fn inventory(catalog: &dyn iceberg::Catalog) -> Result<Vec<TableSignals>> {
    let wrap = |source| Error::Catalog {
        catalog: "catalog".to_owned(),
        source: Box::new(source),
    };
    let mut out = Vec::new();
    for namespace in catalog.list_namespaces(None).await.map_err(wrap)? {
        let mut tables = catalog.list_tables(&namespace).await.map_err(wrap)?;
        tables.sort_by(|a, b| a.name().cmp(b.name()));
        for ident in tables {
            let table = catalog.load_table(&ident).await.map_err(wrap)?;
            out.push(signals(
                &namespace.to_url_string(),
                ident.name(),
                table.metadata(),
            ));
        }
    }
    Ok(out)
}

/// The signals of one table's metadata.
pub fn signals(
    namespace: &str,
    name: &str,
    metadata: &iceberg::spec::TableMetadata,
) -> TableSignals {
    let current = metadata.current_snapshot();
    let summary = |key: &str| -> u64 {
        current
            .and_then(|s| s.summary().additional_properties.get(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    TableSignals {
        namespace: namespace.replace('\u{1f}', "."),
        name: name.to_owned(),
        snapshots: metadata.snapshots().len() as u64,
        data_files: summary("total-data-files"),
        delete_files: summary("total-delete-files"),
        records: summary("total-records"),
        data_bytes: summary("total-files-size"),
        oldest_snapshot_ms: metadata.snapshots().map(|s| s.timestamp_ms()).min(),
        last_commit_ms: current.map(|s| s.timestamp_ms()),
        commits_since_rewrite: commits_since_rewrite(metadata),
    }
}

fn commits_since_rewrite(metadata: &iceberg::spec::TableMetadata) -> u64 {
    use iceberg::spec::Operation;
    let last_rewrite = metadata
        .snapshots()
        .filter(|s| s.summary().operation == Operation::Replace)
        .map(|s| s.timestamp_ms())
        .max()
        .unwrap_or(i64::MIN);
    metadata
        .snapshots()
        .filter(|s| s.timestamp_ms() > last_rewrite && s.summary().operation != Operation::Replace)
        .count() as u64
}

/// A file size bucket of [`TableDetail::histogram`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Files up to this many bytes (and above the previous bucket's).
    pub up_to_bytes: u64,
    /// How many.
    pub files: u64,
}

/// The signals of one table with what only its manifests tell: the file size
/// histogram, small files, partitions, manifests, commit rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableDetail {
    /// The metadata-only signals.
    #[serde(flatten)]
    pub signals: TableSignals,
    /// The table's current metadata file.
    pub metadata_location: Option<String>,
    /// `write.target-file-size-bytes` (or Iceberg's default).
    pub target_file_size: u64,
    /// Live data files by size.
    pub histogram: Vec<Bucket>,
    /// Live data files under 75 % of the target size (compaction candidates).
    pub small_files: u64,
    /// `small_files` over all live data files.
    pub small_file_share: f64,
    /// Distinct partitions of live data files.
    pub partitions: u64,
    /// Manifests of the current snapshot.
    pub manifests: u64,
    /// Their mean size in bytes.
    pub manifest_mean_bytes: u64,
    /// Snapshots committed in the last 24 hours.
    pub commits_last_day: u64,
}

/// Reads `table`'s manifests for its [`TableDetail`].
///
/// # Errors
///
/// [`Error::Table`] when a manifest list or manifest cannot be read.
pub async fn detail(table: &iceberg::table::Table) -> Result<TableDetail> {
    let ident = table.identifier();
    let metadata = table.metadata();
    let signals = signals(&ident.namespace().join("."), ident.name(), metadata);
    let target_file_size = crate::ops::compact::target_file_size(metadata);
    const MIB: u64 = 1024 * 1024;
    let bounds = [MIB, 8 * MIB, 32 * MIB, 128 * MIB, 512 * MIB, u64::MAX];
    let mut histogram: Vec<Bucket> = bounds
        .iter()
        .map(|&up_to_bytes| Bucket {
            up_to_bytes,
            files: 0,
        })
        .collect();
    let (mut files, mut small, mut manifests, mut manifest_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut partitions = std::collections::HashSet::new();
    for (manifest_file, manifest) in crate::files::current_manifests(table).await? {
        manifests += 1;
        manifest_bytes += u64::try_from(manifest_file.manifest_length).unwrap_or(0);
        for entry in manifest.entries() {
            if !entry.is_alive() || !crate::commit::is_data(entry.data_file()) {
                continue;
            }
            let size = entry.file_size_in_bytes();
            files += 1;
            if size < target_file_size * 3 / 4 {
                small += 1;
            }
            if let Some(bucket) = histogram.iter_mut().find(|b| size <= b.up_to_bytes) {
                bucket.files += 1;
            }
            partitions.insert(format!(
                "{}:{:?}",
                manifest_file.partition_spec_id,
                entry.data_file().partition()
            ));
        }
    }
    let day_ago = crate::ops::now_ms() - 24 * 3600 * 1000;
    Ok(TableDetail {
        signals,
        metadata_location: table.metadata_location().map(str::to_owned),
        target_file_size,
        histogram,
        small_files: small,
        small_file_share: if files == 0 {
            0.0
        } else {
            small as f64 / files as f64
        },
        partitions: partitions.len() as u64,
        manifests,
        manifest_mean_bytes: manifest_bytes.checked_div(manifests).unwrap_or(0),
        commits_last_day: metadata
            .snapshots()
            .filter(|s| s.timestamp_ms() >= day_ago)
            .count() as u64,
    })
}

/// The inventory of a catalog kept between refreshes: a table's manifests are
/// read again only when its metadata location changed (a commit happened), so
/// a refresh of an idle lake reads table metadata only.
#[derive(Debug, Default)]
pub struct Inventory {
    tables: std::collections::BTreeMap<String, TableDetail>,
    /// Tables whose manifests the last refresh read.
    pub last_refresh_reads: usize,
}

impl Inventory {
    /// Brings the inventory up to date with `catalog` and returns every
    /// table's detail, keyed `namespace.table`, in name order.
    ///
    /// # Errors
    ///
    /// [`Error::Catalog`] when the catalog cannot be listed, [`Error::Table`]
    /// when a changed table's manifests cannot be read.
    pub async fn refresh(
        &mut self,
        catalog: &dyn iceberg::Catalog,
    ) -> Result<Vec<(String, TableDetail)>> {
        Ok(self
            .refresh_tables(catalog)
            .await?
            .into_iter()
            .map(|(name, detail, _)| (name, detail))
            .collect())
    }

    /// As [`Inventory::refresh`], with each table as the refresh loaded it,
    /// for callers that go on to work on the tables (the scheduler).
    ///
    /// # Errors
    ///
    /// As [`Inventory::refresh`].
    pub async fn refresh_tables(
        &mut self,
        catalog: &dyn iceberg::Catalog,
    ) -> Result<Vec<(String, TableDetail, iceberg::table::Table)>> {
        let wrap = |source| Error::Catalog {
            catalog: "catalog".to_owned(),
            source: Box::new(source),
        };
        let mut seen = std::collections::BTreeMap::new();
        let mut loaded = Vec::new();
        self.last_refresh_reads = 0;
        for namespace in catalog.list_namespaces(None).await.map_err(wrap)? {
            for ident in catalog.list_tables(&namespace).await.map_err(wrap)? {
                let name = format!("{}.{}", namespace.join("."), ident.name());
                let table = catalog.load_table(&ident).await.map_err(wrap)?;
                let cached = self
                    .tables
                    .remove(&name)
                    .filter(|d| d.metadata_location.as_deref() == table.metadata_location());
                let detail = match cached {
                    Some(detail) => detail,
                    None => {
                        self.last_refresh_reads += 1;
                        detail(&table).await?
                    }
                };
                seen.insert(name.clone(), detail);
                loaded.push((name, table));
            }
        }
        self.tables = seen;
        loaded.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(loaded
            .into_iter()
            .filter_map(|(name, table)| {
                let detail = self.tables.get(&name)?.clone();
                Some((name, detail, table))
            })
            .collect())
    }
}
