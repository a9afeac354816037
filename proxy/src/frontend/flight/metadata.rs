//! What Flight SQL clients ask about the server: `CommandGetSqlInfo`,
//! `CommandGetXdbcTypeInfo`, and the schemas of the key commands, which Floe
//! answers empty because Iceberg tables have no enforced keys.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction, XdbcDataType,
};

/// The server and SQL information `CommandGetSqlInfo` answers from.
pub(super) static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Floe");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The Arrow IPC format version (Schema.fbs MetadataVersion V5).
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, true);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlMaxColumnNameLength, 63i64);
    // A fixed list: the unit test below builds it, so this cannot fail at run time.
    b.build().expect("the fixed SQL info builds")
});

fn xdbc(
    name: &str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    unsigned: Option<bool>,
) -> XdbcTypeInfo {
    let quoted = matches!(
        data_type,
        XdbcDataType::XdbcVarchar | XdbcDataType::XdbcDate | XdbcDataType::XdbcTimestamp
    );
    XdbcTypeInfo {
        type_name: name.to_owned(),
        data_type,
        column_size,
        literal_prefix: quoted.then(|| "'".to_owned()),
        literal_suffix: quoted.then(|| "'".to_owned()),
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: data_type == XdbcDataType::XdbcVarchar,
        searchable: Searchable::Full,
        unsigned_attribute: unsigned,
        fixed_prec_scale: data_type == XdbcDataType::XdbcDecimal,
        auto_increment: Some(false),
        local_type_name: Some(name.to_owned()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: unsigned.map(|_| 10),
        interval_precision: None,
    }
}

/// The types `CommandGetXdbcTypeInfo` lists: what the embedded engine stores.
pub(super) static XDBC_INFO: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut b = XdbcTypeInfoDataBuilder::new();
    for info in [
        xdbc("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None),
        xdbc("TINYINT", XdbcDataType::XdbcTinyint, Some(3), Some(false)),
        xdbc("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), Some(false)),
        xdbc("INTEGER", XdbcDataType::XdbcInteger, Some(10), Some(false)),
        xdbc("BIGINT", XdbcDataType::XdbcBigint, Some(19), Some(false)),
        xdbc("REAL", XdbcDataType::XdbcFloat, Some(24), Some(false)),
        xdbc("DOUBLE", XdbcDataType::XdbcDouble, Some(53), Some(false)),
        xdbc("DECIMAL", XdbcDataType::XdbcDecimal, Some(38), Some(false)),
        xdbc("VARCHAR", XdbcDataType::XdbcVarchar, None, None),
        xdbc("BYTEA", XdbcDataType::XdbcBinary, None, None),
        xdbc("DATE", XdbcDataType::XdbcDate, Some(10), None),
        xdbc("TIME", XdbcDataType::XdbcTime, Some(15), None),
        xdbc("TIMESTAMP", XdbcDataType::XdbcTimestamp, Some(26), None),
    ] {
        b.append(info);
    }
    b.build().expect("the fixed type info builds")
});

/// `CommandGetPrimaryKeys`' result schema, from FlightSql.proto.
pub(super) fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The result schema of the exported, imported and cross-reference key
/// commands, from FlightSql.proto.
pub(super) fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_tables_build() {
        assert!(
            SQL_INFO
                .record_batch([SqlInfo::FlightSqlServerName as u32])
                .is_ok()
        );
        assert!(
            XDBC_INFO
                .record_batch(None)
                .is_ok_and(|b| b.num_rows() == 13)
        );
    }
}
