//! The SQL catalog on SQLite, with a local filesystem warehouse.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use iceberg::CatalogBuilder;
use iceberg::io::LocalFsStorageFactory;
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle,
    SqlCatalogBuilder,
};

use super::CatalogConfig;
use crate::{Error, Result};

pub(super) async fn open(config: &CatalogConfig) -> Result<Arc<dyn iceberg::Catalog>> {
    let invalid = |message: String| Error::InvalidConfig {
        catalog: config.name.clone(),
        message,
    };
    let db_path = config
        .uri
        .strip_prefix("sqlite://")
        .or_else(|| config.uri.strip_prefix("sqlite:"))
        .unwrap_or(&config.uri);
    // Query parameters are SQLite options, not part of the path.
    let db_file = db_path.split('?').next().unwrap_or(db_path);
    if let Some(parent) = Path::new(db_file)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| invalid(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::create_dir_all(&config.warehouse)
        .map_err(|e| invalid(format!("cannot create {}: {e}", config.warehouse.display())))?;
    // Iceberg writes absolute locations into table metadata; a relative
    // warehouse would make them depend on the directory the daemon started in.
    let warehouse = std::fs::canonicalize(&config.warehouse).map_err(|e| {
        invalid(format!(
            "cannot resolve {}: {e}",
            config.warehouse.display()
        ))
    })?;
    let uri = if db_path.contains('?') {
        format!("sqlite://{db_path}")
    } else {
        // `mode=rwc` lets SQLite create the database file on first start.
        format!("sqlite://{db_path}?mode=rwc")
    };
    let props = HashMap::from([
        (SQL_CATALOG_PROP_URI.to_owned(), uri),
        (
            SQL_CATALOG_PROP_WAREHOUSE.to_owned(),
            warehouse.display().to_string(),
        ),
        (
            SQL_CATALOG_PROP_BIND_STYLE.to_owned(),
            SqlBindStyle::QMark.to_string(),
        ),
    ]);
    let catalog = SqlCatalogBuilder::default()
        .with_storage_factory(Arc::new(LocalFsStorageFactory))
        .load(&config.name, props)
        .await
        .map_err(|source| Error::Catalog {
            catalog: config.name.clone(),
            source: Box::new(source),
        })?;
    Ok(Arc::new(catalog))
}
