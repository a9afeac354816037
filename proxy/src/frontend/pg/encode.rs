//! Arrow → PostgreSQL: row descriptions and data rows, batch by batch.
//!
//! `arrow-pg` does the per-value encoding in text and binary formats. Floe adds
//! what it lacks: `Decimal256` (narrowed to `Decimal128` when its precision
//! allows, text otherwise), the canonical Arrow extension types `arrow.uuid`
//! and `arrow.json`, which become PostgreSQL `uuid` and `json`, and
//! timestamps in text as PostgreSQL prints them (`2024-01-01 02:00:00`, the
//! fraction only when there is one; pgwire always prints six digits).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use arrow_pg::encoder::encode_value;
use futures::{StreamExt, stream};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

use bytes::BytesMut;
use floe_router::engine::pg_wire;

use super::error::to_pgwire;
use crate::session::Outcome;

/// The Arrow extension name key, as the Arrow columnar format specifies it.
const EXTENSION_NAME: &str = "ARROW:extension:name";

/// How a column is written, decided once per result from its Arrow field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    /// Handed to `arrow-pg`.
    Arrow,
    /// `arrow.uuid` on `FixedSizeBinary(16)`.
    Uuid,
    /// `arrow.json` on a string type.
    Json,
    /// A timestamp without zone, sent as text (microseconds).
    Timestamp,
}

/// A result's row layout: the Arrow schema after Floe's conversions, the
/// PostgreSQL fields and how each column is written.
#[derive(Debug, Clone)]
pub(super) struct RowLayout {
    schema: SchemaRef,
    fields: Arc<Vec<FieldInfo>>,
    columns: Arc<Vec<Column>>,
}

impl RowLayout {
    /// The layout for an Arrow schema in the given result formats.
    pub(super) fn new(schema: &Schema, format: &Format) -> PgWireResult<Self> {
        let converted = Arc::new(Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .map(convert_field)
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let columns: Vec<Column> = converted
            .fields()
            .iter()
            .enumerate()
            .map(|(idx, f)| column_kind(f, format.format_for(idx) == FieldFormat::Text))
            .collect();
        let mut fields = arrow_schema_to_pg_fields(&converted, format, None)?;
        for (idx, (field, column)) in fields.iter_mut().zip(&columns).enumerate() {
            let ty = match column {
                Column::Arrow | Column::Timestamp => continue,
                Column::Uuid => Type::UUID,
                Column::Json => Type::JSON,
            };
            *field = FieldInfo::new(
                field.name().to_owned(),
                None,
                None,
                ty,
                format.format_for(idx),
            );
        }
        Ok(RowLayout {
            schema: converted,
            fields: Arc::new(fields),
            columns: Arc::new(columns),
        })
    }

    /// The PostgreSQL fields, for `RowDescription`.
    pub(super) fn fields(&self) -> Vec<FieldInfo> {
        self.fields.as_ref().clone()
    }

    /// Encodes every row of a batch.
    fn encode(&self, batch: RecordBatch) -> Vec<PgWireResult<DataRow>> {
        let arrays: Result<Vec<ArrayRef>, PgWireError> = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(array, field)| {
                if array.data_type() == field.data_type() {
                    Ok(Arc::clone(array))
                } else {
                    cast(array, field.data_type()).map_err(|e| PgWireError::ApiError(Box::new(e)))
                }
            })
            .collect();
        let arrays = match arrays {
            Ok(arrays) => arrays,
            Err(e) => return vec![Err(e)],
        };
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut encoder = DataRowEncoder::new(Arc::clone(&self.fields));
            let encoded = arrays
                .iter()
                .zip(self.schema.fields())
                .zip(self.fields.iter().zip(self.columns.iter()))
                .try_for_each(|((array, field), (pg_field, column))| {
                    encode_column(&mut encoder, array, row, field, pg_field, *column)
                });
            rows.push(encoded.map(|()| encoder.take_row()));
        }
        rows
    }
}

fn encode_column(
    encoder: &mut DataRowEncoder,
    array: &ArrayRef,
    row: usize,
    field: &Field,
    pg_field: &FieldInfo,
    column: Column,
) -> PgWireResult<()> {
    let encode =
        |encoder: &mut DataRowEncoder, text: Option<&str>, binary: Option<&[u8]>| match pg_field
            .format()
        {
            FieldFormat::Binary => encoder.encode_field_with_type_and_format(
                &binary,
                pg_field.datatype(),
                pg_field.format(),
                pg_field.format_options(),
            ),
            FieldFormat::Text => encoder.encode_field_with_type_and_format(
                &text,
                pg_field.datatype(),
                pg_field.format(),
                pg_field.format_options(),
            ),
        };
    if array.is_null(row) {
        // Checked here for every type: arrow-pg 0.14 encodes a NULL interval
        // as a value.
        return encode(encoder, None, None);
    }
    match column {
        Column::Arrow => encode_value(encoder, array, row, field, pg_field),
        Column::Uuid => {
            let bytes = array.as_fixed_size_binary_opt().map(|a| a.value(row));
            let text = bytes.map(format_uuid);
            encode(encoder, text.as_deref(), bytes)
        }
        Column::Json => {
            let text = crate::frontend::string_value(array.as_ref(), row);
            encode(encoder, text, text.map(str::as_bytes))
        }
        Column::Timestamp if pg_field.format_options().date_style.starts_with("ISO") => {
            let text = array
                .as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>()
                .and_then(|a| format_timestamp(a.value(row)));
            match text {
                Some(text) => encode(encoder, Some(&text), None),
                None => encode_value(encoder, array, row, field, pg_field),
            }
        }
        Column::Timestamp => encode_value(encoder, array, row, field, pg_field),
    }
}

/// A timestamp (microseconds since the epoch, no zone) as PostgreSQL prints
/// it in the ISO style: the fraction only when there is one, without
/// trailing zeros.
fn format_timestamp(micros: i64) -> Option<String> {
    let at = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    let mut text = at.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        text.push('.');
        text.push_str(format!("{fraction:06}").trim_end_matches('0'));
    }
    Some(text)
}

fn format_uuid(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if hex.len() != 32 {
        return hex;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn column_kind(field: &Field, text: bool) -> Column {
    match (
        field.metadata().get(EXTENSION_NAME).map(String::as_str),
        field.data_type(),
    ) {
        (_, DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)) if text => {
            Column::Timestamp
        }
        (Some("arrow.uuid"), DataType::FixedSizeBinary(16)) => Column::Uuid,
        (Some("arrow.json"), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            Column::Json
        }
        _ => Column::Arrow,
    }
}

/// The type a column is sent as, where `arrow-pg` cannot send the original.
fn convert_field(field: &FieldRef) -> FieldRef {
    let converted = match field.data_type() {
        // arrow-pg encodes Decimal128 only; a Decimal256 whose precision fits
        // is narrowed, and a wider one goes out as text so that no digit is lost.
        DataType::Decimal256(p, s) if *p <= 38 => DataType::Decimal128(*p, *s),
        DataType::Decimal256(..) => DataType::Utf8,
        // PostgreSQL keeps microseconds.
        DataType::Timestamp(unit, None) if *unit != arrow::datatypes::TimeUnit::Microsecond => {
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)
        }
        _ => return Arc::clone(field),
    };
    Arc::new(field.as_ref().clone().with_data_type(converted))
}

/// Turns a session outcome into pgwire's response, streaming rows.
pub(super) fn response(outcome: Outcome, format: &Format) -> PgWireResult<Response> {
    Ok(match outcome {
        Outcome::Rows { schema, stream } => {
            if let Some(wire) = pg_wire::wire_fields(&schema) {
                return Ok(pass_through(wire, stream));
            }
            let layout = RowLayout::new(&schema, format)?;
            let fields = Arc::clone(&layout.fields);
            let rows = stream
                .map(move |batch| match batch {
                    Ok(batch) => stream::iter(layout.encode(batch)),
                    Err(e) => stream::iter(vec![Err(to_pgwire(e.into()))]),
                })
                .flatten();
            Response::Query(QueryResponse::new(fields, rows))
        }
        Outcome::Command { command, rows } => {
            let tag = match (command, rows) {
                // PostgreSQL's INSERT tag carries an OID, always 0 nowadays.
                ("INSERT", Some(rows)) => {
                    Tag::new("INSERT").with_oid(0).with_rows(usize_rows(rows))
                }
                (command, Some(rows)) => Tag::new(command).with_rows(usize_rows(rows)),
                (command, None) => Tag::new(command),
            };
            Response::Execution(tag)
        }
        Outcome::TransactionStart => Response::TransactionStart(Tag::new("BEGIN")),
        Outcome::TransactionEnd { command } => Response::TransactionEnd(Tag::new(command)),
    })
}

/// A PostgreSQL engine's own rows (text format, asked for by this front
/// end): its row description and data rows as they came.
fn pass_through(wire: Vec<pg_wire::WireField>, stream: floe_router::BatchStream) -> Response {
    let count = i16::try_from(wire.len()).unwrap_or(i16::MAX);
    let fields: Vec<FieldInfo> = wire
        .into_iter()
        .map(|f| {
            let datatype = Type::from_oid(f.type_oid).unwrap_or_else(|| {
                // A type the client library may not know by name (an
                // extension's): its OID is what goes on the wire.
                Type::new(
                    format!("oid_{}", f.type_oid),
                    f.type_oid,
                    postgres_types::Kind::Simple,
                    "public".to_owned(),
                )
            });
            FieldInfo::new(
                f.name,
                i32::try_from(f.table_oid).ok().filter(|oid| *oid != 0),
                Some(f.column_id).filter(|id| *id != 0),
                datatype,
                FieldFormat::Text,
            )
            .with_type_size(f.type_size)
            .with_type_modifier(f.type_modifier)
        })
        .collect();
    let rows = stream
        .map(move |batch| match batch {
            Ok(batch) => stream::iter(
                pg_wire::wire_rows(&batch)
                    .map(|row| Ok(DataRow::new(BytesMut::from(row), count)))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => stream::iter(vec![Err(to_pgwire(e.into()))]),
        })
        .flatten();
    Response::Query(QueryResponse::new(Arc::new(fields), rows))
}

fn usize_rows(rows: u64) -> usize {
    usize::try_from(rows).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_postgresql_prints_them() {
        assert_eq!(
            format_timestamp(1_704_067_200_000_000).as_deref(),
            Some("2024-01-01 00:00:00")
        );
        assert_eq!(
            format_timestamp(1_704_067_200_120_000).as_deref(),
            Some("2024-01-01 00:00:00.12")
        );
    }

    #[test]
    fn uuid_bytes_print_in_canonical_form() {
        let bytes: Vec<u8> = (0u8..16).collect();
        assert_eq!(format_uuid(&bytes), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }

    fn extension(name: &str, data_type: DataType) -> Field {
        Field::new(name, data_type, true).with_metadata(
            [(EXTENSION_NAME.to_owned(), format!("arrow.{name}"))]
                .into_iter()
                .collect(),
        )
    }

    fn uuid_and_json_batch() -> RecordBatch {
        use arrow::array::{FixedSizeBinaryArray, StringArray};
        let schema = Arc::new(Schema::new(vec![
            extension("uuid", DataType::FixedSizeBinary(16)),
            extension("json", DataType::Utf8),
        ]));
        let uuids = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            vec![Some((0u8..16).collect::<Vec<_>>()), None].into_iter(),
            16,
        )
        .expect("uuid array");
        let json = StringArray::from(vec![Some(r#"{"a":1}"#), None]);
        RecordBatch::try_new(schema, vec![Arc::new(uuids), Arc::new(json)]).expect("batch")
    }

    #[test]
    fn uuid_and_json_extension_columns_get_their_postgres_types_and_text() {
        let batch = uuid_and_json_batch();
        let layout = RowLayout::new(&batch.schema(), &Format::UnifiedText).expect("layout");
        let types: Vec<Type> = layout
            .fields()
            .iter()
            .map(|f| f.datatype().clone())
            .collect();
        assert_eq!(types, vec![Type::UUID, Type::JSON]);
        let rows: Vec<DataRow> = layout
            .encode(batch)
            .into_iter()
            .collect::<PgWireResult<_>>()
            .expect("rows");
        assert_eq!(rows.len(), 2);
        let first = String::from_utf8_lossy(&rows[0].data).into_owned();
        assert!(
            first.contains("00010203-0405-0607-0809-0a0b0c0d0e0f"),
            "{first:?}"
        );
        assert!(first.contains(r#"{"a":1}"#), "{first:?}");
        // Both NULLs: two length prefixes of -1 and nothing else.
        assert_eq!(
            rows[1].data.as_ref(),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn uuid_goes_out_as_sixteen_bytes_in_binary_format() {
        let batch = uuid_and_json_batch();
        let layout = RowLayout::new(&batch.schema(), &Format::UnifiedBinary).expect("layout");
        let rows: Vec<DataRow> = layout
            .encode(batch)
            .into_iter()
            .collect::<PgWireResult<_>>()
            .expect("rows");
        let data = rows[0].data.as_ref();
        assert_eq!(&data[..4], 16i32.to_be_bytes());
        assert_eq!(&data[4..20], (0u8..16).collect::<Vec<_>>().as_slice());
    }

    #[test]
    fn wide_decimals_go_out_as_text_and_narrow_ones_as_numeric() {
        let wide = Arc::new(Field::new("d", DataType::Decimal256(60, 10), true));
        assert_eq!(convert_field(&wide).data_type(), &DataType::Utf8);
        let narrow = Arc::new(Field::new("d", DataType::Decimal256(20, 4), true));
        assert_eq!(
            convert_field(&narrow).data_type(),
            &DataType::Decimal128(20, 4)
        );
    }
}
