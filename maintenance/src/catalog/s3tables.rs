//! Amazon S3 Tables: the catalog is a table bucket (its ARN is the
//! `warehouse`), each table's files live in the S3 location the service
//! gives it.
//!
//! Reading goes through `iceberg-catalog-s3tables`; Floe's own commits go
//! through [`S3TablesCommitter`]: the new metadata file first, then
//! `UpdateTableMetadataLocation` with the version token read with the
//! current location, which the service refuses if the table moved.
//!
//! Table buckets refuse object deletes: the service's own unreferenced-file
//! removal deletes what expired snapshots and rewrites leave. So expiry here
//! changes metadata only, and orphan removal is refused with that reason.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3tables::operation::update_table_metadata_location::UpdateTableMetadataLocationError;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg_catalog_s3tables::{S3TABLES_CATALOG_PROP_TABLE_BUCKET_ARN, S3TablesCatalogBuilder};

use super::CatalogConfig;
use crate::commit::{Committer, abandon, committed_table, write_next_metadata};
use crate::{Error, Result};

/// The S3 Tables client for `config`: endpoint override, region and
/// credentials as for Glue.
async fn client(config: &CatalogConfig) -> Result<aws_sdk_s3tables::Client> {
    let props = config.resolved_properties()?;
    Ok(aws_sdk_s3tables::Client::new(
        &super::aws::sdk_config(config, &props).await,
    ))
}

pub(super) async fn open(config: &CatalogConfig) -> Result<Arc<dyn iceberg::Catalog>> {
    let mut props = config.resolved_properties()?;
    props.insert(
        S3TABLES_CATALOG_PROP_TABLE_BUCKET_ARN.to_owned(),
        config.warehouse.display().to_string(),
    );
    let builder = S3TablesCatalogBuilder::default().with_client(client(config).await?);
    super::load(builder, config, props).await
}

/// Commits Floe's own snapshots to an S3 Tables table bucket.
pub struct S3TablesCommitter {
    client: aws_sdk_s3tables::Client,
    table_bucket_arn: String,
}

impl S3TablesCommitter {
    /// A client for the table bucket `config` names.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when a property names an unset variable.
    pub async fn connect(config: &CatalogConfig) -> Result<S3TablesCommitter> {
        Ok(S3TablesCommitter {
            client: client(config).await?,
            table_bucket_arn: config.warehouse.display().to_string(),
        })
    }
}

#[async_trait]
impl Committer for S3TablesCommitter {
    async fn swap(&self, base: &Table, new: TableMetadata) -> Result<Table> {
        let ident = base.identifier();
        let (namespace, name) = super::aws::one_level(ident)?;
        let aws = |e: String| Error::State(format!("S3 Tables: committing {ident}: {e}"));
        let current = self
            .client
            .get_table_metadata_location()
            .table_bucket_arn(&self.table_bucket_arn)
            .namespace(&namespace)
            .name(&name)
            .send()
            .await
            .map_err(|e| {
                aws(format!(
                    "{}",
                    aws_sdk_s3tables::error::DisplayErrorContext(e)
                ))
            })?;
        if current.metadata_location() != base.metadata_location() {
            return Err(Error::Conflict(format!(
                "{ident} changed since it was read"
            )));
        }
        let (_, location) = write_next_metadata(base, &new).await?;
        crate::failpoint::hit("commit.swap", base.metadata().location()).await?;
        let sent = self
            .client
            .update_table_metadata_location()
            .table_bucket_arn(&self.table_bucket_arn)
            .namespace(&namespace)
            .name(&name)
            .version_token(current.version_token())
            .metadata_location(&location)
            .send()
            .await;
        match sent {
            Ok(_) => committed_table(base, new, location),
            Err(e) => match e.into_service_error() {
                UpdateTableMetadataLocationError::ConflictException(_) => {
                    Err(abandon(base, &location).await)
                }
                // The service may or may not have applied it: the file stays
                // (an orphan sweep removes it if it is unreferenced).
                other => Err(aws(format!(
                    "{}",
                    aws_sdk_s3tables::error::DisplayErrorContext(other)
                ))),
            },
        }
    }

    fn deletes_files(&self) -> bool {
        false
    }
}
