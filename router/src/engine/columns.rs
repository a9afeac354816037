//! Building Arrow record batches row by row, for the engines whose servers
//! answer in rows (PostgreSQL, MySQL).
//!
//! Each remote engine decodes its server's wire values into a [`Value`] and
//! appends it to a [`ColumnBuilder`] chosen once per column from the column's
//! Arrow type. The builders own no engine-specific knowledge, so both engines
//! share them and the Arrow schema they announce is exactly the arrays they
//! produce.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int8Builder, Int16Builder,
    Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, NullBuilder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, IntervalMonthDayNano, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::{Error, Result};

/// The Arrow extension name key, as the Arrow columnar format specifies it.
const EXTENSION_NAME: &str = "ARROW:extension:name";

/// Rows per batch at most: large enough that per-batch costs vanish, small
/// enough that the first rows of a large result reach the client at once.
pub(crate) const BATCH_ROWS: usize = 4096;

/// One decoded value, in the widest form of its family.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// Unscaled integer of a decimal; the scale is the column's.
    Decimal(i128),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
    /// Microseconds since midnight.
    Time(i64),
    Interval {
        months: i32,
        days: i32,
        micros: i64,
    },
}

/// A field whose Arrow type carries a canonical extension (`arrow.uuid`,
/// `arrow.json`), which the front ends map to their protocol's own type.
pub(crate) fn extension_field(name: &str, data_type: DataType, extension: &str) -> Field {
    Field::new(name, data_type, true).with_metadata(HashMap::from([(
        EXTENSION_NAME.to_owned(),
        extension.to_owned(),
    )]))
}

/// Accumulates the rows of one result into record batches.
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl BatchBuilder {
    /// A builder for batches of `schema`.
    ///
    /// # Errors
    ///
    /// A field whose type no builder handles (a bug in the engine's type mapping).
    pub(crate) fn new(schema: SchemaRef) -> Result<Self> {
        let columns = schema
            .fields()
            .iter()
            .map(|field| ColumnBuilder::new(field.data_type()))
            .collect::<Result<Vec<_>>>()?;
        Ok(BatchBuilder {
            schema,
            columns,
            rows: 0,
        })
    }

    /// Appends one value to column `index` of the current row.
    ///
    /// # Errors
    ///
    /// The value does not fit the column's type.
    pub(crate) fn push(&mut self, index: usize, value: Value<'_>) -> Result<()> {
        let Some(column) = self.columns.get_mut(index) else {
            return Err(Error::Internal(format!(
                "row has more than {index} columns"
            )));
        };
        column.push(value).map_err(|message| {
            let name = self.schema.field(index).name();
            Error::Internal(format!("column {name}: {message}"))
        })
    }

    /// Marks the end of a row.
    pub(crate) fn end_row(&mut self) {
        self.rows += 1;
    }

    /// Rows accumulated since the last [`BatchBuilder::finish`].
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// The accumulated rows as one batch; the builder starts empty again.
    ///
    /// # Errors
    ///
    /// Arrow refuses the arrays (a bug: every column got one value per row).
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        self.rows = 0;
        if arrays.is_empty() {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        }
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| Error::Internal(e.to_string()))
    }
}

/// An empty schema-less result: what a statement with no columns returns.
pub(crate) fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

enum ColumnBuilder {
    Null(NullBuilder),
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt8(UInt8Builder),
    UInt16(UInt16Builder),
    UInt32(UInt32Builder),
    UInt64(UInt64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    FixedBinary(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
}

impl ColumnBuilder {
    fn new(data_type: &DataType) -> Result<Self> {
        Ok(match data_type {
            DataType::Null => ColumnBuilder::Null(NullBuilder::new()),
            DataType::Boolean => ColumnBuilder::Bool(BooleanBuilder::new()),
            DataType::Int8 => ColumnBuilder::Int8(Int8Builder::new()),
            DataType::Int16 => ColumnBuilder::Int16(Int16Builder::new()),
            DataType::Int32 => ColumnBuilder::Int32(Int32Builder::new()),
            DataType::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
            DataType::UInt8 => ColumnBuilder::UInt8(UInt8Builder::new()),
            DataType::UInt16 => ColumnBuilder::UInt16(UInt16Builder::new()),
            DataType::UInt32 => ColumnBuilder::UInt32(UInt32Builder::new()),
            DataType::UInt64 => ColumnBuilder::UInt64(UInt64Builder::new()),
            DataType::Float32 => ColumnBuilder::Float32(Float32Builder::new()),
            DataType::Float64 => ColumnBuilder::Float64(Float64Builder::new()),
            DataType::Decimal128(precision, scale) => ColumnBuilder::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            ),
            DataType::Utf8 => ColumnBuilder::Utf8(StringBuilder::new()),
            DataType::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
            DataType::FixedSizeBinary(width) => {
                ColumnBuilder::FixedBinary(FixedSizeBinaryBuilder::new(*width))
            }
            DataType::Date32 => ColumnBuilder::Date(Date32Builder::new()),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()),
            ),
            DataType::Time64(TimeUnit::Microsecond) => {
                ColumnBuilder::Time(Time64MicrosecondBuilder::new())
            }
            DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano) => {
                ColumnBuilder::Interval(IntervalMonthDayNanoBuilder::new())
            }
            other => {
                return Err(Error::Internal(format!(
                    "no row decoder for Arrow type {other}"
                )));
            }
        })
    }

    fn push(&mut self, value: Value<'_>) -> std::result::Result<(), String> {
        fn int<T: TryFrom<i64> + TryFrom<u64>>(value: &Value<'_>) -> Option<T> {
            match value {
                Value::Int(v) => T::try_from(*v).ok(),
                Value::UInt(v) => T::try_from(*v).ok(),
                Value::Bool(b) => T::try_from(i64::from(*b)).ok(),
                _ => None,
            }
        }
        let mismatch = || format!("value {value:?} does not fit the column");
        if value == Value::Null {
            self.append_null();
            return Ok(());
        }
        match self {
            ColumnBuilder::Null(b) => b.append_null(),
            ColumnBuilder::Bool(b) => match value {
                Value::Bool(v) => b.append_value(v),
                Value::Int(v) => b.append_value(v != 0),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Int8(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            ColumnBuilder::Int16(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            ColumnBuilder::Int32(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            ColumnBuilder::Int64(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            ColumnBuilder::UInt8(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            ColumnBuilder::UInt16(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            ColumnBuilder::UInt32(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            ColumnBuilder::UInt64(b) => b.append_value(int(&value).ok_or_else(mismatch)?),
            // Narrowing a double to a float column is what the column's type asks.
            #[allow(clippy::cast_possible_truncation)]
            ColumnBuilder::Float32(b) => match value {
                Value::Float(v) => b.append_value(v as f32),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Float64(b) => match value {
                Value::Float(v) => b.append_value(v),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Decimal(b) => match value {
                Value::Decimal(v) => b.append_value(v),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Utf8(b) => match value {
                Value::Text(v) => b.append_value(v),
                Value::Bytes(v) => b.append_value(String::from_utf8_lossy(v)),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Binary(b) => match value {
                Value::Bytes(v) => b.append_value(v),
                Value::Text(v) => b.append_value(v.as_bytes()),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::FixedBinary(b) => match value {
                Value::Bytes(v) => b.append_value(v).map_err(|e| e.to_string())?,
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Date(b) => match value {
                Value::Date(v) => b.append_value(v),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Timestamp(b) => match value {
                Value::Timestamp(v) => b.append_value(v),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Time(b) => match value {
                Value::Time(v) => b.append_value(v),
                _ => return Err(mismatch()),
            },
            ColumnBuilder::Interval(b) => match value {
                Value::Interval {
                    months,
                    days,
                    micros,
                } => b.append_value(IntervalMonthDayNano::new(
                    months,
                    days,
                    micros.saturating_mul(1000),
                )),
                _ => return Err(mismatch()),
            },
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Null(b) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int8(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::UInt8(b) => b.append_null(),
            ColumnBuilder::UInt16(b) => b.append_null(),
            ColumnBuilder::UInt32(b) => b.append_null(),
            ColumnBuilder::UInt64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Decimal(b) => b.append_null(),
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::FixedBinary(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
            ColumnBuilder::Interval(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Null(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int8(b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::UInt8(b) => Arc::new(b.finish()),
            ColumnBuilder::UInt16(b) => Arc::new(b.finish()),
            ColumnBuilder::UInt32(b) => Arc::new(b.finish()),
            ColumnBuilder::UInt64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b) => Arc::new(b.finish()),
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
            ColumnBuilder::FixedBinary(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish()),
            ColumnBuilder::Interval(b) => Arc::new(b.finish()),
        }
    }
}

/// Parses a decimal's text (`-12.5`, `3`, `1e3` is refused) into its unscaled
/// integer at `scale`, rounding half away from zero as PostgreSQL and MySQL do.
pub(crate) fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let scale = usize::try_from(scale).ok()?;
    let mut value: i128 = 0;
    for c in whole.chars().chain(fraction.chars().take(scale)) {
        value = value
            .checked_mul(10)?
            .checked_add(i128::from(c.to_digit(10)?))?;
    }
    for _ in fraction.len()..scale {
        value = value.checked_mul(10)?;
    }
    let rest = fraction.get(scale..).unwrap_or("");
    if !rest.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if rest.chars().next().is_some_and(|c| c >= '5') {
        value = value.checked_add(1)?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_at_their_scale_with_rounding() {
        assert_eq!(parse_decimal("12.5", 2), Some(1250));
        assert_eq!(parse_decimal("-12.345", 2), Some(-1235));
        assert_eq!(parse_decimal("7", 0), Some(7));
        assert_eq!(parse_decimal(".5", 1), Some(5));
        assert_eq!(parse_decimal("abc", 1), None);
        assert_eq!(parse_decimal("1.2x", 1), None);
        assert_eq!(parse_decimal("", 1), None);
    }

    #[test]
    fn batches_hold_what_was_pushed() -> Result<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let mut builder = BatchBuilder::new(schema)?;
        builder.push(0, Value::Int(7))?;
        builder.push(1, Value::Text("x"))?;
        builder.end_row();
        builder.push(0, Value::Null)?;
        builder.push(1, Value::Null)?;
        builder.end_row();
        assert!(builder.push(0, Value::Text("no")).is_err());
        let batch = builder.finish()?;
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(builder.len(), 0);
        Ok(())
    }
}
