//! `COM_STMT_EXECUTE` parameters to DataFusion scalars.
//!
//! Values arrive in the type the client bound them as; each is decoded to the
//! matching scalar and then cast to the type the engine inferred for its
//! placeholder, so `WHERE id = ?` works whether the client bound an integer
//! or a string, as it does against MySQL.

use arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;
use opensrv_mysql::{ColumnType, ParamValue, ValueInner};

use crate::error::{Error, Result};

/// Decodes the parameters of one execution and casts them to `types`.
pub(super) fn decode<'a>(
    values: impl IntoIterator<Item = ParamValue<'a>>,
    types: &[Option<DataType>],
) -> Result<Vec<ScalarValue>> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, param)| {
            let value =
                scalar(param).map_err(|e| Error::InvalidParameter(format!("?{}: {e}", i + 1)))?;
            match types.get(i).and_then(Option::as_ref) {
                Some(target) if value.data_type() != *target => {
                    value.cast_to(target).map_err(|e| {
                        Error::InvalidParameter(format!(
                            "?{}: cannot use {value} as {target}: {e}",
                            i + 1
                        ))
                    })
                }
                _ => Ok(value),
            }
        })
        .collect()
}

fn scalar(param: ParamValue<'_>) -> std::result::Result<ScalarValue, String> {
    let coltype = param.coltype;
    Ok(match param.value.into_inner() {
        ValueInner::NULL => ScalarValue::Null,
        ValueInner::Int(v) => ScalarValue::Int64(Some(v)),
        ValueInner::UInt(v) => ScalarValue::UInt64(Some(v)),
        ValueInner::Double(v) if coltype == ColumnType::MYSQL_TYPE_FLOAT => {
            ScalarValue::Float32(Some(v as f32))
        }
        ValueInner::Double(v) => ScalarValue::Float64(Some(v)),
        ValueInner::Bytes(bytes) => match coltype {
            ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
            | ColumnType::MYSQL_TYPE_BIT
            | ColumnType::MYSQL_TYPE_GEOMETRY => match std::str::from_utf8(bytes) {
                // Connectors bind text as BLOB as often as as a string type.
                Ok(text) => ScalarValue::Utf8(Some(text.to_owned())),
                Err(_) => ScalarValue::Binary(Some(bytes.to_vec())),
            },
            _ => ScalarValue::Utf8(Some(
                std::str::from_utf8(bytes)
                    .map_err(|_| "text is not valid UTF-8".to_owned())?
                    .to_owned(),
            )),
        },
        ValueInner::Date(bytes) => {
            let (date, _) = date_time(bytes)?;
            ScalarValue::Date32(Some(days_since_epoch(date)?))
        }
        ValueInner::Datetime(bytes) => {
            let (date, micros) = date_time(bytes)?;
            let days = i64::from(days_since_epoch(date)?);
            ScalarValue::TimestampMicrosecond(Some(days * 86_400_000_000 + micros), None)
        }
        ValueInner::Time(bytes) => ScalarValue::Time64Microsecond(Some(time(bytes)?)),
    })
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_since_epoch((year, month, day): (i32, u32, u32)) -> std::result::Result<i32, String> {
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| format!("{year:04}-{month:02}-{day:02} is not a date"))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("epoch")?;
    i32::try_from((date - epoch).num_days()).map_err(|_| "date out of range".to_owned())
}

/// MySQL's binary DATE / DATETIME: length 4 (date), 7 (+ h m s) or 11 (+ µs).
fn date_time(bytes: &[u8]) -> std::result::Result<((i32, u32, u32), i64), String> {
    let byte = |i: usize| bytes.get(i).copied().map(u32::from).ok_or("truncated date");
    if bytes.is_empty() {
        return Err("'0000-00-00' is not a date".to_owned());
    }
    let year = i32::from(u16::from_le_bytes([
        bytes.first().copied().ok_or("truncated date")?,
        bytes.get(1).copied().ok_or("truncated date")?,
    ]));
    let date = (year, byte(2)?, byte(3)?);
    let mut micros = 0i64;
    if bytes.len() >= 7 {
        micros = (i64::from(byte(4)?) * 3600 + i64::from(byte(5)?) * 60 + i64::from(byte(6)?))
            * 1_000_000;
    }
    if bytes.len() >= 11 {
        micros += i64::from(u32::from_le_bytes([
            bytes[7], bytes[8], bytes[9], bytes[10],
        ]));
    }
    Ok((date, micros))
}

/// MySQL's binary TIME: sign, days, h, m, s and optional µs; Floe's TIME is a
/// time of day, so negative values and values of a day or more are rejected.
fn time(bytes: &[u8]) -> std::result::Result<i64, String> {
    if bytes.is_empty() {
        return Ok(0);
    }
    if bytes.len() < 8 {
        return Err("truncated time".to_owned());
    }
    let negative = bytes[0] == 1;
    let days = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    if negative || days > 0 {
        return Err("a time of day must be between 00:00:00 and 23:59:59.999999".to_owned());
    }
    let mut micros =
        (i64::from(bytes[5]) * 3600 + i64::from(bytes[6]) * 60 + i64::from(bytes[7])) * 1_000_000;
    if bytes.len() >= 12 {
        micros += i64::from(u32::from_le_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11],
        ]));
    }
    Ok(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_dates_and_times_decode() {
        // 2024-02-29 13:14:15.000016
        let bytes = [0xe8, 0x07, 2, 29, 13, 14, 15, 16, 0, 0, 0];
        let ((y, m, d), micros) = date_time(&bytes).expect("decodes");
        assert_eq!((y, m, d), (2024, 2, 29));
        assert_eq!(micros, (13 * 3600 + 14 * 60 + 15) * 1_000_000 + 16);
        assert_eq!(days_since_epoch((1970, 1, 2)), Ok(1));
        assert!(days_since_epoch((2023, 2, 29)).is_err());
        assert!(date_time(&[0xe8]).is_err());
        assert_eq!(time(&[0, 0, 0, 0, 0, 1, 2, 3]), Ok(3723 * 1_000_000));
        assert!(time(&[1, 0, 0, 0, 0, 1, 2, 3]).is_err());
    }
}
