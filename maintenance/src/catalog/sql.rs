//! The SQL catalog: SQLite (the embedded default) or PostgreSQL, with a local
//! or S3 warehouse.

use std::path::Path;
use std::sync::Arc;

use iceberg::CatalogBuilder;
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle,
    SqlCatalogBuilder,
};

use super::CatalogConfig;
use crate::Result;

pub(super) async fn open(config: &CatalogConfig) -> Result<Arc<dyn iceberg::Catalog>> {
    let (uri, bind_style) = if config.postgres() {
        (config.uri.clone(), SqlBindStyle::DollarNumeric)
    } else {
        (sqlite_uri(config)?, SqlBindStyle::QMark)
    };
    let warehouse = if config.remote_warehouse() {
        config.warehouse.display().to_string()
    } else {
        local_warehouse(config)?
    };
    let mut props = config.resolved_properties()?;
    props.extend([
        (SQL_CATALOG_PROP_URI.to_owned(), uri),
        (SQL_CATALOG_PROP_WAREHOUSE.to_owned(), warehouse),
        (
            SQL_CATALOG_PROP_BIND_STYLE.to_owned(),
            bind_style.to_string(),
        ),
    ]);
    // The `any` driver finds PostgreSQL and SQLite only once they are installed.
    sqlx::any::install_default_drivers();
    let builder = SqlCatalogBuilder::default().with_storage_factory(config.storage_factory());
    super::load(builder, config, props).await
}

/// The SQLite URL for `config.uri`, its directory created.
fn sqlite_uri(config: &CatalogConfig) -> Result<String> {
    let invalid = |message| config.invalid(message);
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
    let uri = if db_path.contains('?') {
        format!("sqlite://{db_path}")
    } else {
        // `mode=rwc` lets SQLite create the database file on first start.
        format!("sqlite://{db_path}?mode=rwc")
    };
    Ok(uri)
}

/// The local warehouse directory, created and made absolute: Iceberg writes
/// absolute locations into table metadata, and a relative warehouse would
/// make them depend on the directory the daemon started in.
fn local_warehouse(config: &CatalogConfig) -> Result<String> {
    let invalid = |message| config.invalid(message);
    std::fs::create_dir_all(&config.warehouse)
        .map_err(|e| invalid(format!("cannot create {}: {e}", config.warehouse.display())))?;
    let warehouse = std::fs::canonicalize(&config.warehouse).map_err(|e| {
        invalid(format!(
            "cannot resolve {}: {e}",
            config.warehouse.display()
        ))
    })?;
    Ok(warehouse.display().to_string())
}
