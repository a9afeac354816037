//! Iceberg REST catalogs (Polaris, Nessie, Lakekeeper, Gravitino, Unity...).
//!
//! Reading goes through `iceberg-catalog-rest`. A REST catalog writes table
//! metadata itself: a client commits by sending the *changes* with the
//! *requirements* they were built on (`POST .../tables/{table}` with a
//! `CommitTableRequest`), and the server refuses with 409 when a requirement
//! no longer holds. [`RestCommitter`] turns the metadata Floe built into that
//! request: the difference from the base (snapshots added and removed, refs,
//! sort orders, statistics, properties) as updates, and the base's table UUID and `main`
//! snapshot as requirements. A difference it cannot express is refused,
//! never dropped.
//!
//! Authentication as the catalog's: a bearer `token`, or OAuth2 client
//! credentials (`credential = "client_id:secret"`, `oauth2-server-uri`,
//! `scope`), plus `header.*` properties.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use iceberg::spec::{SnapshotReference, TableMetadata};
use iceberg::table::Table;
use iceberg::{CatalogBuilder, TableIdent, TableRequirement, TableUpdate};
use iceberg_catalog_rest::{
    REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE, RestCatalogBuilder,
};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::CatalogConfig;
use crate::commit::{Committer, committed_table};
use crate::{Error, Result};

/// The catalog's properties as `iceberg-catalog-rest` takes them.
fn properties(config: &CatalogConfig) -> Result<HashMap<String, String>> {
    let mut props = config.resolved_properties()?;
    props.insert(REST_CATALOG_PROP_URI.to_owned(), config.uri.clone());
    let warehouse = config.warehouse.display().to_string();
    if !warehouse.is_empty() {
        props.insert(REST_CATALOG_PROP_WAREHOUSE.to_owned(), warehouse);
    }
    Ok(props)
}

pub(super) async fn open(config: &CatalogConfig) -> Result<Arc<dyn iceberg::Catalog>> {
    // Tables may live anywhere the server says: resolve storage by scheme.
    let builder = RestCatalogBuilder::default()
        .with_storage_factory(Arc::new(OpenDalResolvingStorageFactory::new()));
    super::load(builder, config, properties(config)?).await
}

/// Commits Floe's own snapshots to a REST catalog.
pub struct RestCommitter {
    http: reqwest::Client,
    /// `{uri}/v1[/{prefix}]`.
    base: String,
    props: HashMap<String, String>,
    uri: String,
    /// The bearer token in use (a configured `token`, or one obtained with
    /// the client credentials and renewed when the server says 401).
    token: Mutex<Option<String>>,
}

impl RestCommitter {
    /// Reads the server's configuration (for its path prefix) with the
    /// catalog's credentials.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a property naming an unset variable,
    /// [`Error::State`] when the server cannot be reached or refuses.
    pub async fn connect(config: &CatalogConfig) -> Result<RestCommitter> {
        let props = config.resolved_properties()?;
        let uri = config.uri.trim_end_matches('/').to_owned();
        let mut committer = RestCommitter {
            http: reqwest::Client::new(),
            base: format!("{uri}/v1"),
            token: Mutex::new(props.get("token").cloned()),
            props,
            uri,
        };
        let mut url = format!("{}/v1/config", committer.uri);
        let warehouse = config.warehouse.display().to_string();
        if !warehouse.is_empty() {
            url = format!("{url}?warehouse={}", encode(&warehouse));
        }
        let (status, body) = committer.send(reqwest::Method::GET, &url, None).await?;
        if !status.is_success() {
            return Err(Error::State(format!(
                "REST catalog {}: GET /v1/config: {status}: {body}",
                config.name
            )));
        }
        let prefix = committer.props.get("prefix").cloned().or_else(|| {
            ["overrides", "defaults"]
                .iter()
                .find_map(|k| body[k]["prefix"].as_str().map(str::to_owned))
        });
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            committer.base = format!("{}/v1/{prefix}", committer.uri);
        }
        Ok(committer)
    }

    /// A bearer token from the OAuth2 client credentials.
    async fn fetch_token(&self) -> Result<Option<String>> {
        let Some(credential) = self.props.get("credential") else {
            return Ok(None);
        };
        let (id, secret) = match credential.split_once(':') {
            Some((id, secret)) => (Some(id), secret),
            None => (None, credential.as_str()),
        };
        let endpoint = self
            .props
            .get("oauth2-server-uri")
            .cloned()
            .unwrap_or_else(|| format!("{}/v1/oauth/tokens", self.uri));
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_secret", secret),
            (
                "scope",
                self.props.get("scope").map_or("catalog", String::as_str),
            ),
        ];
        if let Some(id) = id {
            form.push(("client_id", id));
        }
        let reply = self
            .http
            .post(&endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| Error::State(format!("REST catalog token from {endpoint}: {e}")))?;
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        match body["access_token"].as_str() {
            Some(token) if status.is_success() => Ok(Some(token.to_owned())),
            // The secret is never in the message; the server's reply may help.
            _ => Err(Error::State(format!(
                "REST catalog token from {endpoint}: {status}: {}",
                body["error"]
            ))),
        }
    }

    /// Sends a request with the catalog's headers and token; on 401 with
    /// client credentials, gets a new token and tries once more.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(reqwest::StatusCode, Value)> {
        for attempt in 0..2 {
            let mut token = self.token.lock().await;
            if token.is_none() || attempt == 1 {
                match self.fetch_token().await? {
                    Some(fresh) => *token = Some(fresh),
                    None if attempt == 1 => break,
                    None => {}
                }
            }
            let mut request = self.http.request(method.clone(), url);
            for (key, value) in &self.props {
                if let Some(name) = key.strip_prefix("header.") {
                    request = request.header(name, value);
                }
            }
            if let Some(token) = token.as_deref() {
                request = request.bearer_auth(token);
            }
            drop(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let reply = request
                .send()
                .await
                .map_err(|e| Error::State(format!("REST catalog {method} {url}: {e}")))?;
            let status = reply.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                continue;
            }
            let text = reply.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Ok((status, body));
        }
        Err(Error::State(format!(
            "REST catalog {method} {url}: 401 not authorized, and no `credential` to get a new token with"
        )))
    }
}

/// Percent-encodes a path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A table's refs, from its serialized metadata (iceberg 0.10 has no refs
/// accessor).
fn refs(metadata: &TableMetadata) -> Result<HashMap<String, Value>> {
    let value = serde_json::to_value(metadata)
        .map_err(|e| Error::State(format!("serializing table metadata: {e}")))?;
    Ok(match value.get("refs") {
        Some(Value::Object(map)) => map.clone().into_iter().collect(),
        _ => HashMap::new(),
    })
}

/// The REST updates that take `base` to `new`.
///
/// # Errors
///
/// [`Error::Unsupported`] for a change they cannot carry (schema, partition
/// spec, location, format version).
pub(crate) fn updates(base: &TableMetadata, new: &TableMetadata) -> Result<Vec<TableUpdate>> {
    let unsupported = |what: &str| {
        Err(Error::Unsupported(format!(
            "committing a change of the table's {what} to a REST catalog"
        )))
    };
    if base.current_schema_id() != new.current_schema_id()
        || base.schemas_iter().len() != new.schemas_iter().len()
    {
        return unsupported("schema");
    }
    if base.default_partition_spec_id() != new.default_partition_spec_id()
        || base.partition_specs_iter().len() != new.partition_specs_iter().len()
    {
        return unsupported("partition spec");
    }
    if base.location() != new.location() {
        return unsupported("location");
    }
    if base.format_version() != new.format_version() {
        return unsupported("format version");
    }
    let mut updates = Vec::new();
    for order in new.sort_orders_iter() {
        if base.sort_order_by_id(order.order_id).is_none() {
            updates.push(TableUpdate::AddSortOrder {
                sort_order: order.as_ref().clone(),
            });
        }
    }
    if base.default_sort_order_id() != new.default_sort_order_id() {
        updates.push(TableUpdate::SetDefaultSortOrder {
            sort_order_id: new.default_sort_order_id(),
        });
    }
    for snapshot in new.snapshots() {
        if base.snapshot_by_id(snapshot.snapshot_id()).is_none() {
            updates.push(TableUpdate::AddSnapshot {
                snapshot: snapshot.as_ref().clone(),
            });
        }
    }
    let removed: Vec<i64> = base
        .snapshots()
        .map(|s| s.snapshot_id())
        .filter(|id| new.snapshot_by_id(*id).is_none())
        .collect();
    if !removed.is_empty() {
        updates.push(TableUpdate::RemoveSnapshots {
            snapshot_ids: removed,
        });
    }
    let (base_refs, new_refs) = (refs(base)?, refs(new)?);
    for (name, reference) in &new_refs {
        if base_refs.get(name) != Some(reference) {
            let reference: SnapshotReference = serde_json::from_value(reference.clone())
                .map_err(|e| Error::State(format!("ref {name}: {e}")))?;
            updates.push(TableUpdate::SetSnapshotRef {
                ref_name: name.clone(),
                reference,
            });
        }
    }
    for name in base_refs.keys() {
        if !new_refs.contains_key(name) {
            updates.push(TableUpdate::RemoveSnapshotRef {
                ref_name: name.clone(),
            });
        }
    }
    // Statistics files go with their snapshots (expiry drops them).
    for statistics in new.statistics_iter() {
        if base.statistics_for_snapshot(statistics.snapshot_id) != Some(statistics) {
            updates.push(TableUpdate::SetStatistics {
                statistics: statistics.clone(),
            });
        }
    }
    for statistics in base.statistics_iter() {
        if new
            .statistics_for_snapshot(statistics.snapshot_id)
            .is_none()
        {
            updates.push(TableUpdate::RemoveStatistics {
                snapshot_id: statistics.snapshot_id,
            });
        }
    }
    let changed: HashMap<String, String> = new
        .properties()
        .iter()
        .filter(|(k, v)| base.properties().get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changed.is_empty() {
        updates.push(TableUpdate::SetProperties { updates: changed });
    }
    let removals: Vec<String> = base
        .properties()
        .keys()
        .filter(|k| !new.properties().contains_key(*k))
        .cloned()
        .collect();
    if !removals.is_empty() {
        updates.push(TableUpdate::RemoveProperties { removals });
    }
    Ok(updates)
}

#[async_trait]
impl Committer for RestCommitter {
    async fn swap(&self, base: &Table, new: TableMetadata) -> Result<Table> {
        let ident: &TableIdent = base.identifier();
        let metadata = base.metadata();
        let requirements = vec![
            TableRequirement::UuidMatch {
                uuid: metadata.uuid(),
            },
            TableRequirement::RefSnapshotIdMatch {
                r#ref: iceberg::spec::MAIN_BRANCH.to_owned(),
                snapshot_id: metadata.current_snapshot_id(),
            },
        ];
        let request = json!({
            "identifier": {"namespace": ident.namespace().as_ref(), "name": ident.name()},
            "requirements": requirements,
            "updates": updates(metadata, &new)?,
        });
        crate::failpoint::hit("commit.swap", metadata.location()).await?;
        let namespace = ident.namespace().as_ref().join("\u{1f}");
        let url = format!(
            "{}/namespaces/{}/tables/{}",
            self.base,
            encode(&namespace),
            encode(ident.name())
        );
        let (status, body) = self
            .send(reqwest::Method::POST, &url, Some(&request))
            .await?;
        match status.as_u16() {
            200 => {}
            409 => {
                return Err(Error::Conflict(format!(
                    "{ident} changed since it was read: {}",
                    body["error"]["message"]
                )));
            }
            // 500, 502, 504: the spec says the commit state is unknown;
            // nothing here deletes what the commit may reference.
            _ => {
                return Err(Error::State(format!(
                    "REST catalog: committing {ident}: {status}: {body}"
                )));
            }
        }
        let location = body["metadata-location"]
            .as_str()
            .ok_or_else(|| {
                Error::State(format!(
                    "REST catalog: {ident}: no metadata-location in the reply"
                ))
            })?
            .to_owned();
        let committed: TableMetadata =
            serde_json::from_value(body["metadata"].clone()).map_err(|e| {
                Error::State(format!("REST catalog: {ident}: metadata in the reply: {e}"))
            })?;
        committed_table(base, committed, location)
    }
}
