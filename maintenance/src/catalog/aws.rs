//! What the AWS catalogs (Glue, S3 Tables) share: an SDK configuration built
//! from the catalog's properties, as the iceberg-rust catalogs build theirs,
//! and their one-level namespaces.

use std::collections::HashMap;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_glue::config::{Credentials, Region};
use iceberg::TableIdent;
use iceberg_catalog_glue::{
    AWS_ACCESS_KEY_ID, AWS_PROFILE_NAME, AWS_REGION_NAME, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
};

use super::CatalogConfig;
use crate::{Error, Result};

/// The SDK configuration for `config`: its endpoint override, and region,
/// profile and credentials from `props` where given, else AWS's default
/// chain (environment, profile, instance role).
pub(super) async fn sdk_config(
    config: &CatalogConfig,
    props: &HashMap<String, String>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if !config.uri.is_empty() {
        loader = loader.endpoint_url(&config.uri);
    }
    if let (Some(key), Some(secret)) = (
        props.get(AWS_ACCESS_KEY_ID),
        props.get(AWS_SECRET_ACCESS_KEY),
    ) {
        loader = loader.credentials_provider(Credentials::new(
            key,
            secret,
            props.get(AWS_SESSION_TOKEN).cloned(),
            None,
            "floe-catalog-properties",
        ));
    }
    if let Some(profile) = props.get(AWS_PROFILE_NAME) {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = props.get(AWS_REGION_NAME) {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// The namespace and table names of `ident` in a catalog with one level of
/// namespace (a Glue database, an S3 Tables namespace).
pub(super) fn one_level(ident: &TableIdent) -> Result<(String, String)> {
    match ident.namespace().as_ref().as_slice() {
        [namespace] => Ok((namespace.clone(), ident.name().to_owned())),
        _ => Err(Error::Unsupported(format!(
            "{ident}: this catalog has no nested namespaces"
        ))),
    }
}
