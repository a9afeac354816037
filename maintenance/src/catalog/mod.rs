//! Connections to Iceberg catalogs, built from configuration.
//!
//! | type | when to choose it |
//! |---|---|
//! | `sql` | the embedded default: a SQL catalog in SQLite with a local warehouse |
//!
//! REST, Glue and S3 Tables catalogs are configuration values already, so that
//! a config file naming them fails with a clear message rather than a parse error;
//! they are built by the maintenance-engine work that adds them.

mod sql;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One Iceberg catalog, as configured under `[[catalogs]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// The catalog's name: the first part of `catalog.namespace.table` in SQL.
    pub name: String,
    /// What kind of catalog this is.
    #[serde(rename = "type")]
    pub kind: CatalogKind,
    /// Where the catalog lives. For `sql`: a SQLite URL such as
    /// `sqlite://floe-data/catalog.db` (relative paths are relative to the
    /// working directory) or a plain file path.
    pub uri: String,
    /// Where new tables' data and metadata go: a local directory for `sql`.
    pub warehouse: PathBuf,
}

/// The kinds of Iceberg catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogKind {
    /// A SQL catalog (SQLite) with a local filesystem warehouse.
    Sql,
    /// An Iceberg REST catalog (Polaris, Nessie, Lakekeeper, Gravitino).
    Rest,
    /// AWS Glue.
    Glue,
    /// Amazon S3 Tables.
    S3tables,
}

impl CatalogConfig {
    /// The embedded default: a SQLite catalog and a warehouse inside `data_dir`.
    pub fn local(name: &str, data_dir: &Path) -> Self {
        CatalogConfig {
            name: name.to_owned(),
            kind: CatalogKind::Sql,
            uri: format!("sqlite://{}", data_dir.join("catalog.db").display()),
            warehouse: data_dir.join("warehouse"),
        }
    }

    /// Checks what can be checked without connecting; returns one line per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() || self.name.contains('.') {
            problems.push(format!(
                "catalogs.name: `{}` must be a non-empty name without dots",
                self.name
            ));
        }
        if self.kind != CatalogKind::Sql {
            problems.push(format!(
                "catalogs.type: catalog `{}` is `{}`, but this build of Floe connects only to `sql` catalogs",
                self.name,
                self.kind.as_str()
            ));
        }
        // A plain path (no scheme) is a SQLite file too.
        if self.kind == CatalogKind::Sql
            && !self.uri.starts_with("sqlite:")
            && self.uri.contains("://")
        {
            problems.push(format!(
                "catalogs.uri: catalog `{}` needs a `sqlite://` URL or a file path, got `{}`",
                self.name, self.uri
            ));
        }
        problems
    }
}

impl CatalogKind {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogKind::Sql => "sql",
            CatalogKind::Rest => "rest",
            CatalogKind::Glue => "glue",
            CatalogKind::S3tables => "s3tables",
        }
    }
}

/// Connects to a catalog, creating a local one (database file and warehouse
/// directory) if it does not exist yet.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a configuration that cannot work, and
/// [`Error::Catalog`] when the catalog cannot be opened.
pub async fn open_catalog(config: &CatalogConfig) -> Result<Arc<dyn iceberg::Catalog>> {
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(Error::InvalidConfig {
            catalog: config.name.clone(),
            message: problem,
        });
    }
    match config.kind {
        CatalogKind::Sql => sql::open(config).await,
        other => Err(Error::InvalidConfig {
            catalog: config.name.clone(),
            message: format!(
                "`{}` catalogs are not supported by this build",
                other.as_str()
            ),
        }),
    }
}

/// Creates each namespace that does not exist yet.
///
/// # Errors
///
/// [`Error::Catalog`] when the catalog cannot list or create namespaces.
pub async fn ensure_namespaces(
    catalog: &dyn iceberg::Catalog,
    catalog_name: &str,
    namespaces: &[&str],
) -> Result<()> {
    let wrap = |source| Error::Catalog {
        catalog: catalog_name.to_owned(),
        source: Box::new(source),
    };
    for name in namespaces {
        let ident = iceberg::NamespaceIdent::new((*name).to_owned());
        if !catalog.namespace_exists(&ident).await.map_err(wrap)? {
            catalog
                .create_namespace(&ident, Default::default())
                .await
                .map_err(wrap)?;
        }
    }
    Ok(())
}

/// Opens the committer Floe's own commits (compaction, manifest rewrite,
/// expiry) go through for this catalog.
///
/// # Errors
///
/// [`Error::Unsupported`] for catalog kinds without a committer yet, and
/// [`Error::State`] when the catalog database cannot be opened.
pub async fn open_committer(config: &CatalogConfig) -> Result<Arc<dyn crate::commit::Committer>> {
    match config.kind {
        CatalogKind::Sql => Ok(Arc::new(
            crate::commit::SqlCommitter::connect(&config.uri, &config.name).await?,
        )),
        other => Err(Error::Unsupported(format!(
            "catalog `{}`: committing to `{}` catalogs",
            config.name,
            other.as_str()
        ))),
    }
}

/// Opens everything a maintenance run on `config`'s catalog needs, with the
/// audit trail in the state store at `state` (none: runs are not recorded).
///
/// # Errors
///
/// As [`open_catalog`], [`open_committer`] and [`crate::audit::AuditLog::open`].
pub async fn open_target(
    config: &CatalogConfig,
    state: Option<&Path>,
) -> Result<crate::ops::Target> {
    let catalog = open_catalog(config).await?;
    let committer = open_committer(config).await?;
    let audit = match state {
        Some(path) => Some(crate::audit::AuditLog::open(path).await?),
        None => None,
    };
    Ok(crate::ops::Target {
        catalog_name: config.name.clone(),
        catalog,
        committer,
        audit,
    })
}
