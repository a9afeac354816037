//! Metadata-only changes the policies make: enforcing table properties
//! (configuration policies) and setting a table's default sort order (the
//! planner's choice, when the policy allows). Both commit through the
//! [`Committer`]'s compare-and-swap.

use std::collections::BTreeMap;

use iceberg::spec::FormatVersion;
use iceberg::table::Table;
use serde::Serialize;

use crate::commit::{Committer, iceberg_error};
use crate::{Error, Result};

/// The pseudo-property that names the table's format version.
pub const FORMAT_VERSION: &str = "format-version";

/// A table property that differs from its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The property (`format-version` for the format version).
    pub property: String,
    /// What the policy wants.
    pub expected: String,
    /// What the table has (`None`: unset).
    pub actual: Option<String>,
}

fn format_version(v: FormatVersion) -> &'static str {
    match v {
        FormatVersion::V1 => "1",
        FormatVersion::V2 => "2",
        FormatVersion::V3 => "3",
    }
}

/// Where `table` differs from the `wanted` properties.
pub fn drift(table: &Table, wanted: &BTreeMap<String, String>) -> Vec<Drift> {
    let metadata = table.metadata();
    wanted
        .iter()
        .filter_map(|(key, expected)| {
            let actual = if key == FORMAT_VERSION {
                Some(format_version(metadata.format_version()).to_owned())
            } else {
                metadata.properties().get(key).cloned()
            };
            (actual.as_deref() != Some(expected.as_str())).then(|| Drift {
                property: key.clone(),
                expected: expected.clone(),
                actual,
            })
        })
        .collect()
}

/// Sets the drifted properties back to what the policy wants (a format
/// version can only go up).
///
/// # Errors
///
/// [`Error::Invalid`] for a format version that is not 1, 2 or 3 or would go
/// down; the committer's errors.
pub async fn correct(table: &Table, committer: &dyn Committer, drifts: &[Drift]) -> Result<Table> {
    let ident = table.identifier();
    let wrap = |e| iceberg_error(ident, e);
    let mut builder = table
        .metadata()
        .clone()
        .into_builder(table.metadata_location().map(str::to_owned));
    let mut properties = std::collections::HashMap::new();
    for d in drifts {
        if d.property == FORMAT_VERSION {
            let version = match d.expected.as_str() {
                "1" => FormatVersion::V1,
                "2" => FormatVersion::V2,
                "3" => FormatVersion::V3,
                other => {
                    return Err(Error::Invalid(format!(
                        "{ident}: format-version `{other}` is not 1, 2 or 3"
                    )));
                }
            };
            if version < table.metadata().format_version() {
                return Err(Error::Invalid(format!(
                    "{ident}: format-version cannot go down to {}",
                    d.expected
                )));
            }
            builder = builder.upgrade_format_version(version).map_err(wrap)?;
        } else {
            properties.insert(d.property.clone(), d.expected.clone());
        }
    }
    if !properties.is_empty() {
        builder = builder.set_properties(properties).map_err(wrap)?;
    }
    let new = builder.build().map_err(wrap)?.metadata;
    committer.swap(table, new).await
}

/// Makes `columns` (`col`, `col DESC`) the table's default sort order.
///
/// # Errors
///
/// [`Error::Invalid`] for a column the table lacks; the committer's errors.
pub async fn set_default_sort_order(
    table: &Table,
    committer: &dyn Committer,
    columns: &[String],
) -> Result<Table> {
    let order = super::compact::build_sort_order(table, columns)?;
    if table.metadata().default_sort_order().fields == order.fields {
        return Ok(table.clone());
    }
    super::compact::add_sort_order(table, committer, &order.fields, true).await
}
