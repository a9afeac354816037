//! Arrow to MySQL: column definitions and row values, for both the text
//! protocol (`COM_QUERY`) and the binary one (`COM_STMT_EXECUTE`).
//!
//! Each column's MySQL type is chosen once from its Arrow type, and each batch
//! column is downcast once; rows then write values of the Rust type opensrv
//! expects for that MySQL type, so the binary encoding always agrees with the
//! column definition.

use std::io;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Field, Float16Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, Schema, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{NaiveDateTime, NaiveTime, Timelike};
use opensrv_mysql::{Column, ColumnFlags, ColumnType, RowWriter};
use tokio::io::AsyncWrite;

/// The MySQL column definitions for a result schema.
pub(super) fn columns(schema: &Schema) -> Vec<Column> {
    schema.fields().iter().map(|f| column(f)).collect()
}

/// The MySQL column definition for one Arrow field.
pub(super) fn column(field: &Field) -> Column {
    let (coltype, mut colflags) = mysql_type(field);
    if !field.is_nullable() {
        colflags |= ColumnFlags::NOT_NULL_FLAG;
    }
    Column {
        table: String::new(),
        column: field.name().clone(),
        coltype,
        colflags,
    }
}

fn is_json(field: &Field) -> bool {
    field
        .metadata()
        .get("ARROW:extension:name")
        .is_some_and(|name| name == "arrow.json")
}

/// The MySQL type and flags for an Arrow field.
fn mysql_type(field: &Field) -> (ColumnType, ColumnFlags) {
    let none = ColumnFlags::empty();
    let unsigned = ColumnFlags::UNSIGNED_FLAG;
    let binary = ColumnFlags::BINARY_FLAG | ColumnFlags::BLOB_FLAG;
    if is_json(field) {
        return (ColumnType::MYSQL_TYPE_JSON, ColumnFlags::BLOB_FLAG);
    }
    match field.data_type() {
        // MySQL's BOOLEAN is TINYINT(1).
        DataType::Boolean | DataType::Int8 => (ColumnType::MYSQL_TYPE_TINY, none),
        DataType::Int16 => (ColumnType::MYSQL_TYPE_SHORT, none),
        DataType::Int32 => (ColumnType::MYSQL_TYPE_LONG, none),
        DataType::Int64 => (ColumnType::MYSQL_TYPE_LONGLONG, none),
        DataType::UInt8 => (ColumnType::MYSQL_TYPE_TINY, unsigned),
        DataType::UInt16 => (ColumnType::MYSQL_TYPE_SHORT, unsigned),
        DataType::UInt32 => (ColumnType::MYSQL_TYPE_LONG, unsigned),
        DataType::UInt64 => (ColumnType::MYSQL_TYPE_LONGLONG, unsigned),
        DataType::Float16 | DataType::Float32 => (ColumnType::MYSQL_TYPE_FLOAT, none),
        DataType::Float64 => (ColumnType::MYSQL_TYPE_DOUBLE, none),
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => (ColumnType::MYSQL_TYPE_NEWDECIMAL, none),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => (ColumnType::MYSQL_TYPE_BLOB, binary),
        DataType::Date32 | DataType::Date64 => (ColumnType::MYSQL_TYPE_DATE, none),
        DataType::Time32(_) | DataType::Time64(_) => (ColumnType::MYSQL_TYPE_TIME, none),
        DataType::Timestamp(_, None) => (ColumnType::MYSQL_TYPE_DATETIME, none),
        DataType::Timestamp(_, Some(_)) => (ColumnType::MYSQL_TYPE_TIMESTAMP, none),
        // Strings, and everything MySQL has no type for (intervals, lists,
        // structs), which go out as their text.
        _ => (ColumnType::MYSQL_TYPE_VAR_STRING, none),
    }
}

/// One batch column, downcast once, ready to write row by row.
enum Encoder<'a> {
    /// An untyped NULL column (`SELECT NULL`).
    Null,
    Bool(&'a arrow::array::BooleanArray),
    I8(&'a arrow::array::PrimitiveArray<Int8Type>),
    I16(&'a arrow::array::PrimitiveArray<Int16Type>),
    I32(&'a arrow::array::PrimitiveArray<Int32Type>),
    I64(&'a arrow::array::PrimitiveArray<Int64Type>),
    U8(&'a arrow::array::PrimitiveArray<UInt8Type>),
    U16(&'a arrow::array::PrimitiveArray<UInt16Type>),
    U32(&'a arrow::array::PrimitiveArray<UInt32Type>),
    U64(&'a arrow::array::PrimitiveArray<UInt64Type>),
    F16(&'a arrow::array::PrimitiveArray<Float16Type>),
    F32(&'a arrow::array::PrimitiveArray<Float32Type>),
    F64(&'a arrow::array::PrimitiveArray<Float64Type>),
    Utf8(&'a dyn Array),
    Bytes(&'a dyn Array),
    Date32(&'a arrow::array::PrimitiveArray<Date32Type>),
    Date64(&'a arrow::array::PrimitiveArray<Date64Type>),
    Time(&'a ArrayRef),
    Timestamp(&'a ArrayRef),
    /// Written as its text: decimals, JSON, intervals, nested types. The
    /// batch's values are formatted up front: arrow's formatter is not `Send`
    /// and rows are written across awaits.
    Text(Vec<Option<String>>),
}

impl<'a> Encoder<'a> {
    fn new(array: &'a ArrayRef, options: &'a FormatOptions<'a>) -> io::Result<Self> {
        Ok(match array.data_type() {
            DataType::Null => Encoder::Null,
            DataType::Boolean => Encoder::Bool(array.as_boolean()),
            DataType::Int8 => Encoder::I8(array.as_primitive()),
            DataType::Int16 => Encoder::I16(array.as_primitive()),
            DataType::Int32 => Encoder::I32(array.as_primitive()),
            DataType::Int64 => Encoder::I64(array.as_primitive()),
            DataType::UInt8 => Encoder::U8(array.as_primitive()),
            DataType::UInt16 => Encoder::U16(array.as_primitive()),
            DataType::UInt32 => Encoder::U32(array.as_primitive()),
            DataType::UInt64 => Encoder::U64(array.as_primitive()),
            DataType::Float16 => Encoder::F16(array.as_primitive()),
            DataType::Float32 => Encoder::F32(array.as_primitive()),
            DataType::Float64 => Encoder::F64(array.as_primitive()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                Encoder::Utf8(array.as_ref())
            }
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => Encoder::Bytes(array.as_ref()),
            DataType::Date32 => Encoder::Date32(array.as_primitive()),
            DataType::Date64 => Encoder::Date64(array.as_primitive()),
            DataType::Time32(_) | DataType::Time64(_) => Encoder::Time(array),
            DataType::Timestamp(..) => Encoder::Timestamp(array),
            _ => {
                let formatter = ArrayFormatter::try_new(array.as_ref(), options)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                // ArrayFormatter prints NULL as an empty string: check first.
                Encoder::Text(
                    (0..array.len())
                        .map(|row| (!array.is_null(row)).then(|| formatter.value(row).to_string()))
                        .collect(),
                )
            }
        })
    }

    fn write<W: AsyncWrite + Unpin>(
        &self,
        row: usize,
        out: &mut RowWriter<'_, W>,
    ) -> io::Result<()> {
        match self {
            Encoder::Null => out.write_col(None::<i64>),
            Encoder::Bool(a) => out.write_col(a.is_valid(row).then(|| i8::from(a.value(row)))),
            Encoder::I8(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::I16(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::I32(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::I64(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::U8(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::U16(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::U32(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::U64(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::F16(a) => out.write_col(a.is_valid(row).then(|| a.value(row).to_f32())),
            Encoder::F32(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::F64(a) => out.write_col(a.is_valid(row).then(|| a.value(row))),
            Encoder::Utf8(a) => out.write_col(crate::frontend::string_value(*a, row)),
            Encoder::Bytes(a) => out.write_col(bytes_value(*a, row)),
            Encoder::Date32(a) => out.write_col(a.value_as_date(row).filter(|_| a.is_valid(row))),
            Encoder::Date64(a) => out.write_col(a.value_as_date(row).filter(|_| a.is_valid(row))),
            Encoder::Time(a) => out.write_col(time_value(a, row)),
            Encoder::Timestamp(a) => out.write_col(timestamp_value(a, row)),
            Encoder::Text(values) => out.write_col(values.get(row).and_then(Option::as_deref)),
        }
    }
}

fn bytes_value(array: &dyn Array, row: usize) -> Option<&[u8]> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Binary => Some(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => Some(array.as_binary::<i64>().value(row)),
        DataType::BinaryView => Some(array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => Some(array.as_fixed_size_binary().value(row)),
        _ => None,
    }
}

/// A time of day as the duration since midnight, which is how opensrv writes
/// MySQL's TIME.
fn time_value(array: &ArrayRef, row: usize) -> Option<Duration> {
    if array.is_null(row) {
        return None;
    }
    let time: Option<NaiveTime> = match array.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            array.as_primitive::<Time32SecondType>().value_as_time(row)
        }
        DataType::Time32(_) => array
            .as_primitive::<Time32MillisecondType>()
            .value_as_time(row),
        DataType::Time64(TimeUnit::Microsecond) => array
            .as_primitive::<Time64MicrosecondType>()
            .value_as_time(row),
        DataType::Time64(_) => array
            .as_primitive::<Time64NanosecondType>()
            .value_as_time(row),
        _ => None,
    };
    time.map(|t| {
        Duration::from_secs(u64::from(t.num_seconds_from_midnight()))
            + Duration::from_nanos(u64::from(t.nanosecond() % 1_000_000_000))
    })
}

/// A timestamp as MySQL shows it: wall-clock time, in UTC for zoned ones.
fn timestamp_value(array: &ArrayRef, row: usize) -> Option<NaiveDateTime> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array
            .as_primitive::<TimestampSecondType>()
            .value_as_datetime(row),
        DataType::Timestamp(TimeUnit::Millisecond, _) => array
            .as_primitive::<TimestampMillisecondType>()
            .value_as_datetime(row),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .value_as_datetime(row),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<TimestampNanosecondType>()
            .value_as_datetime(row),
        _ => None,
    }
}

/// Writes every row of `batch`; each row is one packet into the connection's
/// buffered writer, which sends as it fills, so no result is held whole.
pub(super) async fn write_batch<W: AsyncWrite + Unpin>(
    batch: &RecordBatch,
    out: &mut RowWriter<'_, W>,
) -> io::Result<()> {
    let options = FormatOptions::default();
    let encoders = batch
        .columns()
        .iter()
        .map(|array| Encoder::new(array, &options))
        .collect::<io::Result<Vec<_>>>()?;
    for row in 0..batch.num_rows() {
        for encoder in &encoders {
            encoder.write(row, out)?;
        }
        out.end_row().await?;
    }
    Ok(())
}

/// The MySQL type name `SHOW COLUMNS` and `DESCRIBE` print for a field.
pub(super) fn type_name(field: &Field) -> String {
    if is_json(field) {
        return "json".to_owned();
    }
    match field.data_type() {
        DataType::Boolean => "tinyint(1)".to_owned(),
        DataType::Int8 => "tinyint".to_owned(),
        DataType::Int16 => "smallint".to_owned(),
        DataType::Int32 => "int".to_owned(),
        DataType::Int64 => "bigint".to_owned(),
        DataType::UInt8 => "tinyint unsigned".to_owned(),
        DataType::UInt16 => "smallint unsigned".to_owned(),
        DataType::UInt32 => "int unsigned".to_owned(),
        DataType::UInt64 => "bigint unsigned".to_owned(),
        DataType::Float16 | DataType::Float32 => "float".to_owned(),
        DataType::Float64 => "double".to_owned(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            format!("decimal({p},{s})")
        }
        DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".to_owned(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "blob".to_owned(),
        DataType::FixedSizeBinary(n) => format!("binary({n})"),
        DataType::Date32 | DataType::Date64 => "date".to_owned(),
        DataType::Time32(_) | DataType::Time64(_) => "time(6)".to_owned(),
        DataType::Timestamp(_, None) => "datetime(6)".to_owned(),
        DataType::Timestamp(_, Some(_)) => "timestamp(6)".to_owned(),
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The MySQL pass-through sends a prepared statement's server rows only
    /// when they are laid out as this front end would write them: its idea
    /// of this front end's types must be this front end's.
    #[test]
    fn the_pass_through_lays_out_each_arrow_type_as_written_here() {
        use floe_router::engine::mysql_wire::Layout;
        let types = [
            DataType::Null,
            DataType::Boolean,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt8,
            DataType::UInt16,
            DataType::UInt32,
            DataType::UInt64,
            DataType::Float16,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(20, 0),
            DataType::Utf8,
            DataType::LargeUtf8,
            DataType::Utf8View,
            DataType::Binary,
            DataType::Date32,
            DataType::Date64,
            DataType::Time32(TimeUnit::Second),
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            DataType::Interval(arrow::datatypes::IntervalUnit::DayTime),
        ];
        for data_type in types {
            let (column_type, _) = mysql_type(&Field::new("c", data_type.clone(), true));
            assert_eq!(
                Layout::of_column_type(column_type as u8),
                Layout::of_arrow(&data_type),
                "{data_type}"
            );
        }
    }

    #[test]
    fn arrow_types_get_their_mysql_types_and_flags() {
        let cases = [
            (DataType::Boolean, ColumnType::MYSQL_TYPE_TINY, false),
            (DataType::UInt32, ColumnType::MYSQL_TYPE_LONG, true),
            (DataType::Int64, ColumnType::MYSQL_TYPE_LONGLONG, false),
            (DataType::Float32, ColumnType::MYSQL_TYPE_FLOAT, false),
            (
                DataType::Decimal128(10, 2),
                ColumnType::MYSQL_TYPE_NEWDECIMAL,
                false,
            ),
            (DataType::Utf8View, ColumnType::MYSQL_TYPE_VAR_STRING, false),
            (DataType::Binary, ColumnType::MYSQL_TYPE_BLOB, false),
            (DataType::Date32, ColumnType::MYSQL_TYPE_DATE, false),
            (
                DataType::Time64(TimeUnit::Microsecond),
                ColumnType::MYSQL_TYPE_TIME,
                false,
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                ColumnType::MYSQL_TYPE_DATETIME,
                false,
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                ColumnType::MYSQL_TYPE_TIMESTAMP,
                false,
            ),
        ];
        for (data_type, coltype, unsigned) in cases {
            let c = column(&Field::new("c", data_type.clone(), true));
            assert_eq!(c.coltype, coltype, "{data_type}");
            assert_eq!(
                c.colflags.contains(ColumnFlags::UNSIGNED_FLAG),
                unsigned,
                "{data_type}"
            );
            assert!(!c.colflags.contains(ColumnFlags::NOT_NULL_FLAG));
        }
        let json = Field::new("j", DataType::Utf8, false).with_metadata(HashMap::from([(
            "ARROW:extension:name".to_owned(),
            "arrow.json".to_owned(),
        )]));
        let c = column(&json);
        assert_eq!(c.coltype, ColumnType::MYSQL_TYPE_JSON);
        assert!(c.colflags.contains(ColumnFlags::NOT_NULL_FLAG));
        assert_eq!(type_name(&json), "json");
        assert!(
            column(&Field::new("b", DataType::Binary, true))
                .colflags
                .contains(ColumnFlags::BINARY_FLAG)
        );
    }
}
