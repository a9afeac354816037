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
}

/// Reads the signals of every table in every namespace of `catalog`.
///
/// # Errors
///
/// [`Error::Catalog`] when a namespace or table cannot be listed or loaded.
pub async fn inventory(catalog: &dyn iceberg::Catalog) -> Result<Vec<TableSignals>> {
    let wrap = |source| Error::Catalog {
        catalog: "catalog".to_owned(),
        source,
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
    }
}
