//! AWS Glue, with the warehouse on S3 (through iceberg-rust's OpenDAL storage).
//!
//! Reading goes through `iceberg-catalog-glue`. Floe's own commits
//! (compaction, manifest rewrites, delete snapshots) go through
//! [`GlueCommitter`]: the same write-then-swap that crate's `update_table`
//! does — the new metadata file first, then `UpdateTable` with the table's
//! `VersionId` so Glue refuses it if another writer committed in between.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_glue::operation::update_table::UpdateTableError;
use aws_sdk_glue::types::TableInput;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg_catalog_glue::{
    GLUE_CATALOG_PROP_CATALOG_ID, GLUE_CATALOG_PROP_URI, GLUE_CATALOG_PROP_WAREHOUSE,
    GlueCatalogBuilder,
};

use super::CatalogConfig;
use crate::commit::{Committer, abandon, committed_table, write_next_metadata};
use crate::{Error, Result};

/// The Glue table parameter that points at the current metadata file.
const METADATA_LOCATION: &str = "metadata_location";
/// The Glue table parameter that points at the one before it.
const PREVIOUS_METADATA_LOCATION: &str = "previous_metadata_location";

/// The catalog's properties as `iceberg-catalog-glue` takes them.
fn properties(config: &CatalogConfig) -> Result<HashMap<String, String>> {
    let mut props = config.resolved_properties()?;
    props.insert(
        GLUE_CATALOG_PROP_WAREHOUSE.to_owned(),
        config.warehouse.display().to_string(),
    );
    if !config.uri.is_empty() {
        props.insert(GLUE_CATALOG_PROP_URI.to_owned(), config.uri.clone());
    }
    Ok(props)
}

pub(super) async fn open(config: &CatalogConfig) -> Result<Arc<dyn iceberg::Catalog>> {
    super::load(GlueCatalogBuilder::default(), config, properties(config)?).await
}

/// Commits Floe's own snapshots to a Glue catalog.
pub struct GlueCommitter {
    client: aws_sdk_glue::Client,
    catalog_id: Option<String>,
}

impl GlueCommitter {
    /// A Glue client configured as the catalog is: endpoint override,
    /// region, and credentials from the properties or AWS's default chain.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when a property names an unset variable.
    pub async fn connect(config: &CatalogConfig) -> Result<GlueCommitter> {
        let props = config.resolved_properties()?;
        Ok(GlueCommitter {
            client: aws_sdk_glue::Client::new(&super::aws::sdk_config(config, &props).await),
            catalog_id: props.get(GLUE_CATALOG_PROP_CATALOG_ID).cloned(),
        })
    }
}

#[async_trait]
impl Committer for GlueCommitter {
    async fn swap(&self, base: &Table, new: TableMetadata) -> Result<Table> {
        let ident = base.identifier();
        let (database, name) = super::aws::one_level(ident)?;
        let aws = |e: String| Error::State(format!("Glue: committing {ident}: {e}"));
        let current = self
            .client
            .get_table()
            .database_name(&database)
            .name(&name)
            .set_catalog_id(self.catalog_id.clone())
            .send()
            .await
            .map_err(|e| aws(format!("{}", aws_sdk_glue::error::DisplayErrorContext(e))))?
            .table
            .ok_or_else(|| aws("the table is gone".to_owned()))?;
        let in_glue = current
            .parameters
            .as_ref()
            .and_then(|p| p.get(METADATA_LOCATION));
        if in_glue.map(String::as_str) != base.metadata_location() {
            return Err(Error::Conflict(format!(
                "{ident} changed since it was read"
            )));
        }
        let (previous, location) = write_next_metadata(base, &new).await?;
        crate::failpoint::hit("commit.swap", base.metadata().location()).await?;
        // Everything Glue holds about the table stays as it is (columns,
        // description, owner, other parameters); only the pointer moves.
        let mut parameters = current.parameters.clone().unwrap_or_default();
        parameters.insert(METADATA_LOCATION.to_owned(), location.clone());
        parameters.insert(PREVIOUS_METADATA_LOCATION.to_owned(), previous);
        let input = TableInput::builder()
            .name(&name)
            .set_description(current.description.clone())
            .set_owner(current.owner.clone())
            .retention(current.retention)
            .set_storage_descriptor(current.storage_descriptor.clone())
            .set_partition_keys(current.partition_keys.clone())
            .set_table_type(current.table_type.clone())
            .set_parameters(Some(parameters))
            .build()
            .map_err(|e| aws(e.to_string()))?;
        let sent = self
            .client
            .update_table()
            .database_name(&database)
            .table_input(input)
            .set_version_id(current.version_id.clone())
            .skip_archive(true)
            .set_catalog_id(self.catalog_id.clone())
            .send()
            .await;
        match sent {
            Ok(_) => committed_table(base, new, location),
            Err(e) => match e.into_service_error() {
                UpdateTableError::ConcurrentModificationException(_) => {
                    Err(abandon(base, &location).await)
                }
                other => {
                    // Glue may or may not have applied it: the file stays
                    // (an orphan sweep removes it if it is unreferenced).
                    Err(aws(format!(
                        "{}",
                        aws_sdk_glue::error::DisplayErrorContext(other)
                    )))
                }
            },
        }
    }
}
