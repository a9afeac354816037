//! Z-order: rows ordered by the interleaved bits of several columns, so that
//! files are narrow on each of them at once (a lexicographic sort makes them
//! narrow on the first column only). For two about equally hot range columns.
//!
//! Each column becomes a 32-bit key that keeps its order: numbers (and dates
//! and timestamps) scaled between the table's minimum and maximum from the
//! manifests' file bounds, strings by their first four bytes; nulls first.
//! The keys' bits are interleaved, most significant first, into a `u64`
//! z-value the rows are sorted by. Iceberg has no sort order for z-order, so
//! the files carry none (as Spark writes them).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use iceberg::spec::{PrimitiveLiteral, PrimitiveType, Type};
use iceberg::table::Table;

use crate::{Error, Result};

/// The column the z-value travels in between the reader and the writer.
pub(crate) const Z_COLUMN: &str = "__floe_z";

/// How one column becomes a 32-bit key.
#[derive(Debug, Clone)]
pub(crate) enum ZColumn {
    /// Scaled from `min..=max` to `0..=u32::MAX`.
    Number { name: String, min: f64, max: f64 },
    /// The first four bytes, big-endian.
    Text { name: String },
}

impl ZColumn {
    fn name(&self) -> &str {
        match self {
            ZColumn::Number { name, .. } | ZColumn::Text { name } => name,
        }
    }
}

fn number(literal: &PrimitiveLiteral) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // a key of 32 bits needs no more
    match literal {
        PrimitiveLiteral::Int(v) => Some(f64::from(*v)),
        PrimitiveLiteral::Long(v) => Some(*v as f64),
        PrimitiveLiteral::Float(v) => Some(f64::from(v.0)),
        PrimitiveLiteral::Double(v) => Some(v.0),
        _ => None,
    }
}

/// The z-order columns of `table` named `names`, with each numeric column's
/// range over the current data files.
///
/// # Errors
///
/// [`Error::Invalid`] for fewer than two columns or a column the table lacks;
/// [`Error::Unsupported`] for a type z-order cannot key (booleans, decimals,
/// nested types).
pub(crate) async fn columns(table: &Table, names: &[String]) -> Result<Vec<ZColumn>> {
    if names.len() < 2 {
        return Err(Error::Invalid(
            "z-order needs at least two columns (sort by one)".to_owned(),
        ));
    }
    let schema = table.metadata().current_schema();
    // Which columns are numbers (scaled by their range) and which strings.
    let mut numeric: Vec<(String, i32)> = Vec::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let field = schema.field_by_name(name).ok_or_else(|| {
            Error::Invalid(format!("z-order column `{name}` is not in the table"))
        })?;
        match field.field_type.as_ref() {
            Type::Primitive(
                PrimitiveType::Int
                | PrimitiveType::Long
                | PrimitiveType::Float
                | PrimitiveType::Double
                | PrimitiveType::Date
                | PrimitiveType::Timestamp
                | PrimitiveType::Timestamptz,
            ) => numeric.push((name.clone(), field.id)),
            Type::Primitive(PrimitiveType::String) => {
                out.push(ZColumn::Text { name: name.clone() });
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "z-order by `{name}` of type {other}: numbers, dates, timestamps and strings only"
                )));
            }
        }
    }
    // Every numeric column's range, from one read of the manifests.
    let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); numeric.len()];
    if !numeric.is_empty() {
        for (_, manifest) in crate::files::current_manifests(table).await? {
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                let file = entry.data_file();
                for ((_, id), (min, max)) in numeric.iter().zip(ranges.iter_mut()) {
                    if let Some(lo) = file
                        .lower_bounds()
                        .get(id)
                        .and_then(|d| number(d.literal()))
                    {
                        *min = min.min(lo);
                    }
                    if let Some(hi) = file
                        .upper_bounds()
                        .get(id)
                        .and_then(|d| number(d.literal()))
                    {
                        *max = max.max(hi);
                    }
                }
            }
        }
    }
    for ((name, _), (min, max)) in numeric.into_iter().zip(ranges) {
        out.push(ZColumn::Number { name, min, max });
    }
    // Keys interleave in the order the columns were named.
    out.sort_by_key(|c| names.iter().position(|n| n == c.name()));
    Ok(out)
}

/// The 32-bit keys of one column.
fn keys(array: &ArrayRef, column: &ZColumn) -> Result<Vec<u32>> {
    let arrow = |e: arrow::error::ArrowError| Error::State(format!("z-order: {e}"));
    match column {
        ZColumn::Number { min, max, .. } => {
            // Dates and timestamps go through their integer form, which is
            // what the manifests' bounds hold.
            let integral = match array.data_type() {
                DataType::Date32 => arrow::compute::cast(array, &DataType::Int32).map_err(arrow)?,
                DataType::Timestamp(_, _) => {
                    arrow::compute::cast(array, &DataType::Int64).map_err(arrow)?
                }
                _ => Arc::clone(array),
            };
            let floats = arrow::compute::cast(&integral, &DataType::Float64).map_err(arrow)?;
            let floats = floats.as_primitive::<Float64Type>();
            let span = max - min;
            Ok(floats
                .iter()
                .map(|v| match v {
                    None => 0,
                    Some(v) if span > 0.0 && span.is_finite() => {
                        let unit = ((v - min) / span).clamp(0.0, 1.0);
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        // clamped to 0..=1 above
                        let key = (unit * f64::from(u32::MAX)) as u32;
                        key
                    }
                    Some(_) => 0,
                })
                .collect())
        }
        ZColumn::Text { .. } => {
            let text = arrow::compute::cast(array, &DataType::Utf8).map_err(arrow)?;
            let text = text.as_string::<i32>();
            Ok(text
                .iter()
                .map(|v| {
                    v.map_or(0, |s| {
                        let mut bytes = [0u8; 4];
                        for (slot, b) in bytes.iter_mut().zip(s.bytes()) {
                            *slot = b;
                        }
                        u32::from_be_bytes(bytes)
                    })
                })
                .collect())
        }
    }
}

/// Interleaves the keys' bits, most significant first, into 64 bits.
fn interleave(keys: &[u32]) -> u64 {
    let per_key = (64 / keys.len().max(1)).min(32);
    let mut z = 0u64;
    for bit in 0..per_key {
        for key in keys {
            z = (z << 1) | u64::from((key >> (31 - bit)) & 1);
        }
    }
    z
}

/// `batch` with its z-value appended as [`Z_COLUMN`].
pub(crate) fn with_z(batch: &RecordBatch, columns: &[ZColumn]) -> Result<RecordBatch> {
    let mut per_column = Vec::with_capacity(columns.len());
    for column in columns {
        let array = batch.column_by_name(column.name()).ok_or_else(|| {
            Error::State(format!(
                "z-order column `{}` is not in the rows read",
                column.name()
            ))
        })?;
        per_column.push(keys(array, column)?);
    }
    let mut row_keys = vec![0u32; columns.len()];
    let z: UInt64Array = (0..batch.num_rows())
        .map(|row| {
            for (slot, keys) in row_keys.iter_mut().zip(&per_column) {
                *slot = keys[row];
            }
            interleave(&row_keys)
        })
        .collect();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(Z_COLUMN, DataType::UInt64, false));
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    arrays.push(Arc::new(z));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Error::State(format!("z-order: {e}")))
}

/// `batch` without its last column (the z-value).
pub(crate) fn without_z(batch: &RecordBatch) -> RecordBatch {
    let mut batch = batch.clone();
    if batch.num_columns() > 0 {
        batch.remove_column(batch.num_columns() - 1);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_alternates_the_bits_of_each_key() {
        assert_eq!(interleave(&[u32::MAX, 0]), 0xAAAA_AAAA_AAAA_AAAA);
        assert_eq!(interleave(&[0, u32::MAX]), 0x5555_5555_5555_5555);
        // Order is kept along each axis.
        assert!(interleave(&[1 << 31, 0]) > interleave(&[(1 << 31) - 1, u32::MAX]));
        assert_eq!(interleave(&[7]), 7, "one key: itself");
    }

    #[test]
    fn keys_scale_numbers_and_take_string_prefixes() {
        let numbers: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![
            Some(0),
            Some(50),
            Some(100),
            None,
        ]));
        let k = keys(
            &numbers,
            &ZColumn::Number {
                name: "n".to_owned(),
                min: 0.0,
                max: 100.0,
            },
        )
        .expect("keys");
        assert_eq!(k[0], 0);
        assert_eq!(k[2], u32::MAX);
        assert!(k[1] > u32::MAX / 2 - 2 && k[1] < u32::MAX / 2 + 2);
        assert_eq!(k[3], 0, "nulls first");
        let text: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["ab", "b", "abcdz"]));
        let k = keys(
            &text,
            &ZColumn::Text {
                name: "s".to_owned(),
            },
        )
        .expect("keys");
        assert!(k[0] < k[2] && k[2] < k[1]);
    }
}
