//! Connections to Iceberg catalogs, built from configuration.
//!
//! | type | when to choose it |
//! |---|---|
//! | `sql` | the embedded default: a SQL catalog in SQLite with a local warehouse; PostgreSQL (`postgres://` URI) for a shared one; the warehouse may be local or `s3://` |
//! | `glue` | AWS Glue, with the warehouse on S3 (`uri` overrides the endpoint: moto, LocalStack, a VPC endpoint) |
//! | `s3tables` | Amazon S3 Tables: the `warehouse` is the table bucket's ARN |
//! | `rest` | an Iceberg REST catalog (Polaris, Nessie, Lakekeeper, Gravitino): `uri` is its endpoint, `warehouse` the warehouse name it expects (may be empty) |
//!
//! A new kind goes in its own module here with an `open` (the
//! [`iceberg::Catalog`]) and a [`crate::commit::Committer`] for Floe's own
//! commits, both chosen in [`open_catalog`] / [`open_committer`].

mod aws;
mod glue;
mod rest;
mod s3tables;
mod sql;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iceberg::io::{LocalFsStorageFactory, StorageFactory};
use iceberg_storage_opendal::OpenDalStorageFactory;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A property value of this form is read from the named environment
/// variable when the catalog is opened, so secrets stay out of config files.
pub const ENV_PREFIX: &str = "env:";

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
    /// working directory), a plain file path, or a `postgres://` URL. For
    /// `glue` and `s3tables`: an endpoint override (empty: AWS's endpoint
    /// for the region). For `rest`: the catalog's endpoint.
    #[serde(default)]
    pub uri: String,
    /// Where new tables' data and metadata go: a local directory or an
    /// `s3://bucket/prefix` location; for `s3tables`, the table bucket's ARN;
    /// for `rest`, the warehouse name the server expects (may be empty).
    #[serde(default)]
    pub warehouse: PathBuf,
    /// Catalog and storage properties, as iceberg-rust names them
    /// (`region_name`, `catalog_id`, `s3.endpoint`, `s3.region`,
    /// `s3.access-key-id`, ...). A value `env:NAME` is read from the
    /// environment variable `NAME` when the catalog is opened.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// The kinds of Iceberg catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogKind {
    /// A SQL catalog: SQLite or PostgreSQL.
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
            properties: BTreeMap::new(),
        }
    }

    /// Whether the warehouse is in an object store rather than a local directory.
    pub fn remote_warehouse(&self) -> bool {
        self.warehouse.to_string_lossy().contains("://")
    }

    /// A configuration error of this catalog.
    pub(crate) fn invalid(&self, message: String) -> Error {
        Error::InvalidConfig {
            catalog: self.name.clone(),
            message,
        }
    }

    /// Whether `uri` names a PostgreSQL database (a `sql` catalog).
    pub(crate) fn postgres(&self) -> bool {
        is_postgres_url(&self.uri)
    }

    /// The properties with `env:` values read from the environment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the property whose variable is unset.
    pub fn resolved_properties(&self) -> Result<HashMap<String, String>> {
        self.properties
            .iter()
            .map(|(key, value)| match value.strip_prefix(ENV_PREFIX) {
                Some(var) => std::env::var(var).map(|v| (key.clone(), v)).map_err(|_| {
                    self.invalid(format!(
                        "catalogs.properties.{key}: environment variable `{var}` is not set"
                    ))
                }),
                None => Ok((key.clone(), value.clone())),
            })
            .collect()
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
        let warehouse = self.warehouse.to_string_lossy();
        match self.kind {
            CatalogKind::Sql => {
                // A plain path (no scheme) is a SQLite file too.
                if !self.uri.starts_with("sqlite:")
                    && !self.postgres()
                    && (self.uri.contains("://") || self.uri.is_empty())
                {
                    problems.push(format!(
                        "catalogs.uri: catalog `{}` needs a `sqlite://` or `postgres://` URL or a file path, got `{}`",
                        self.name, self.uri
                    ));
                }
            }
            CatalogKind::Glue => {
                if !(warehouse.starts_with("s3://") || warehouse.starts_with("s3a://")) {
                    problems.push(format!(
                        "catalogs.warehouse: glue catalog `{}` needs an `s3://bucket/prefix` warehouse, got `{warehouse}`",
                        self.name
                    ));
                }
            }
            CatalogKind::S3tables => {
                if !(warehouse.starts_with("arn:") && warehouse.contains(":s3tables:")) {
                    problems.push(format!(
                        "catalogs.warehouse: s3tables catalog `{}` needs its table bucket's ARN (arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME), got `{warehouse}`",
                        self.name
                    ));
                }
            }
            CatalogKind::Rest => {
                if !(self.uri.starts_with("http://") || self.uri.starts_with("https://")) {
                    problems.push(format!(
                        "catalogs.uri: rest catalog `{}` needs its http:// or https:// endpoint, got `{}`",
                        self.name, self.uri
                    ));
                }
            }
        }
        if warehouse.is_empty() && self.kind != CatalogKind::Rest {
            problems.push(format!(
                "catalogs.warehouse: catalog `{}` needs a warehouse",
                self.name
            ));
        }
        if warehouse.contains("://")
            && !(warehouse.starts_with("s3://")
                || warehouse.starts_with("s3a://")
                || warehouse.starts_with("file://"))
        {
            problems.push(format!(
                "catalogs.warehouse: catalog `{}`: `{warehouse}` is neither a local directory nor an s3:// location",
                self.name
            ));
        }
        if let Err(Error::InvalidConfig { message, .. }) = self.resolved_properties() {
            problems.push(message);
        }
        problems
    }

    /// The storage factory for the warehouse: local files or S3.
    pub(crate) fn storage_factory(&self) -> Arc<dyn StorageFactory> {
        if self.remote_warehouse() && !self.warehouse.to_string_lossy().starts_with("file:") {
            Arc::new(OpenDalStorageFactory::S3 {
                customized_credential_load: None,
            })
        } else {
            Arc::new(LocalFsStorageFactory)
        }
    }
}

/// Whether a SQL catalog URI names a PostgreSQL database.
pub(crate) fn is_postgres_url(uri: &str) -> bool {
    uri.starts_with("postgres://") || uri.starts_with("postgresql://")
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
        return Err(config.invalid(problem));
    }
    match config.kind {
        CatalogKind::Sql => sql::open(config).await,
        CatalogKind::Glue => glue::open(config).await,
        CatalogKind::S3tables => s3tables::open(config).await,
        CatalogKind::Rest => rest::open(config).await,
    }
}

/// Loads a catalog with `builder`, its errors named after `config`'s catalog.
async fn load<B>(
    builder: B,
    config: &CatalogConfig,
    props: HashMap<String, String>,
) -> Result<Arc<dyn iceberg::Catalog>>
where
    B: iceberg::CatalogBuilder,
    B::C: 'static,
{
    let catalog = builder
        .load(&config.name, props)
        .await
        .map_err(|source| Error::Catalog {
            catalog: config.name.clone(),
            source: Box::new(source),
        })?;
    Ok(Arc::new(catalog))
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
/// [`Error::InvalidConfig`] for a property naming an unset variable, and
/// [`Error::State`] when the catalog (its database or server) cannot be
/// reached.
pub async fn open_committer(config: &CatalogConfig) -> Result<Arc<dyn crate::commit::Committer>> {
    match config.kind {
        CatalogKind::Sql => Ok(Arc::new(
            crate::commit::SqlCommitter::connect(&config.uri, &config.name).await?,
        )),
        CatalogKind::Glue => Ok(Arc::new(glue::GlueCommitter::connect(config).await?)),
        CatalogKind::S3tables => Ok(Arc::new(
            s3tables::S3TablesCommitter::connect(config).await?,
        )),
        CatalogKind::Rest => Ok(Arc::new(rest::RestCommitter::connect(config).await?)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn glue() -> CatalogConfig {
        CatalogConfig {
            name: "glue".to_owned(),
            kind: CatalogKind::Glue,
            uri: String::new(),
            warehouse: "s3://bucket/warehouse".into(),
            properties: BTreeMap::new(),
        }
    }

    #[test]
    fn env_values_are_read_from_the_environment() {
        let mut config = glue();
        // PATH is set wherever tests run; the workspace forbids the `unsafe`
        // that setting a variable of our own would take.
        let path = std::env::var("PATH").expect("PATH");
        config
            .properties
            .insert("aws_secret_access_key".to_owned(), "env:PATH".to_owned());
        config
            .properties
            .insert("region_name".to_owned(), "eu-west-1".to_owned());
        let props = config.resolved_properties().expect("resolved");
        assert_eq!(props["aws_secret_access_key"], path);
        assert_eq!(props["region_name"], "eu-west-1");
        assert!(config.problems().is_empty(), "{:?}", config.problems());

        config.properties.insert(
            "s3.secret-access-key".to_owned(),
            "env:FLOE_SURELY_UNSET_VARIABLE".to_owned(),
        );
        let problems = config.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("s3.secret-access-key")
                && problems[0].contains("FLOE_SURELY_UNSET_VARIABLE"),
            "{problems:?}"
        );
    }

    #[test]
    fn each_kind_checks_its_uri_and_warehouse() {
        let mut config = glue();
        config.warehouse = "/var/lake".into();
        assert!(
            config.problems()[0].contains("s3://"),
            "{:?}",
            config.problems()
        );

        let mut sql = CatalogConfig::local("lake", Path::new("/tmp/floe"));
        assert!(sql.problems().is_empty());
        sql.uri = "postgres://floe@db:5432/catalog".to_owned();
        assert!(sql.problems().is_empty(), "{:?}", sql.problems());
        sql.uri = "mysql://db/catalog".to_owned();
        assert!(
            sql.problems()[0].contains("postgres://"),
            "{:?}",
            sql.problems()
        );
        sql.uri = "sqlite://x.db".to_owned();
        sql.warehouse = "gs://bucket/lake".into();
        assert!(sql.problems()[0].contains("gs://"), "{:?}", sql.problems());

        let mut rest = CatalogConfig {
            kind: CatalogKind::Rest,
            warehouse: PathBuf::new(),
            ..glue()
        };
        assert!(
            rest.problems()[0].contains("http://"),
            "{:?}",
            rest.problems()
        );
        rest.uri = "https://polaris.internal:8181/api/catalog".to_owned();
        assert!(rest.problems().is_empty(), "{:?}", rest.problems());

        let mut tables = CatalogConfig {
            kind: CatalogKind::S3tables,
            ..glue()
        };
        assert!(
            tables.problems()[0].contains("ARN"),
            "{:?}",
            tables.problems()
        );
        tables.warehouse = "arn:aws:s3tables:us-east-1:123456789012:bucket/lake".into();
        assert!(tables.problems().is_empty(), "{:?}", tables.problems());
    }
}
