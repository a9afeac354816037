//! The one place that knows PostgreSQL's SQLSTATE codes.
//!
//! Every variant is matched with no wildcard arm, so a new error variant breaks
//! the build here until it has a code.

use floe_router::DataErrorKind;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::Error;

/// The SQLSTATE for an error.
pub(super) fn sqlstate(e: &Error) -> &str {
    match e {
        Error::Engine(engine) => match engine {
            floe_router::Error::Syntax(_) => "42601",
            floe_router::Error::UndefinedTable(_) => "42P01",
            floe_router::Error::UndefinedColumn(_) => "42703",
            floe_router::Error::InvalidInput(_) => "42804",
            floe_router::Error::Data { kind, .. } => match kind {
                DataErrorKind::DivisionByZero => "22012",
                DataErrorKind::NumericOutOfRange => "22003",
                DataErrorKind::InvalidText => "22P02",
                DataErrorKind::Other => "22000",
                _ => "22000",
            },
            floe_router::Error::Unsupported(_) => "0A000",
            floe_router::Error::Cancelled | floe_router::Error::Timeout => "57014",
            floe_router::Error::EngineUnavailable { .. } => "08006",
            floe_router::Error::Rejected {
                sqlstate,
                mysql_code,
                ..
            } => rejected(sqlstate, *mysql_code),
            floe_router::Error::Internal(_) => "XX000",
            _ => "XX000",
        },
        Error::UnknownSetting(_) => "42704",
        Error::InvalidValue { .. } => "22023",
        Error::InFailedTransaction => "25P02",
        Error::NoTransactionBlock(_) => "25P01",
        Error::MultipleStatements => "42601",
        Error::InvalidParameter(_) => "22023",
        Error::UnknownDatabase(_) => "3D000",
        Error::NoDatabaseSelected => "3D000",
        Error::UnknownStatement(_) => "26000",
        Error::ShuttingDown => "57P01",
    }
}

/// The SQLSTATE for an engine's own error: a PostgreSQL engine's as it
/// came; for a MySQL engine's error number, the SQLSTATE PostgreSQL raises for
/// the same failure (MySQL reports all integrity errors as `23000`, and a
/// PostgreSQL client tells a unique violation from a null one by the code),
/// else the server's SQLSTATE unless it is MySQL's catch-all `HY000`.
fn rejected(sqlstate: &str, mysql_code: Option<u16>) -> &str {
    let own = || {
        let valid = sqlstate.len() == 5 && sqlstate.bytes().all(|b| b.is_ascii_alphanumeric());
        if valid && !sqlstate.starts_with("HY") {
            sqlstate
        } else {
            "42804"
        }
    };
    let Some(code) = mysql_code else {
        return own();
    };
    match code {
        // ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME
        1062 | 1586 => "23505",
        // ER_BAD_NULL_ERROR, ER_NO_DEFAULT_FOR_FIELD
        1048 | 1364 => "23502",
        // ER_ROW_IS_REFERENCED(_2), ER_NO_REFERENCED_ROW(_2)
        1216 | 1217 | 1451 | 1452 => "23503",
        // ER_CONSTRAINT_FAILED (MariaDB), ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
        4025 | 3819 => "23514",
        // ER_LOCK_DEADLOCK
        1213 => "40P01",
        // ER_LOCK_WAIT_TIMEOUT
        1205 => "55P03",
        // Access denied to a table, a column, a database, a privilege.
        1044 | 1142 | 1143 | 1227 => "42501",
        // ER_TABLE_EXISTS_ERROR
        1050 => "42P07",
        // ER_SP_DOES_NOT_EXIST (an unknown function)
        1305 => "42883",
        // ER_DATA_TOO_LONG
        1406 => "22001",
        _ => own(),
    }
}

/// The `ErrorResponse` fields for an error.
pub(super) fn error_info(e: &Error) -> ErrorInfo {
    let severity = if matches!(e, Error::ShuttingDown) {
        "FATAL"
    } else {
        "ERROR"
    };
    ErrorInfo::new(severity.to_owned(), sqlstate(e).to_owned(), e.to_string())
}

/// The error pgwire sends for `e`.
pub(super) fn to_pgwire(e: Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

impl From<Error> for PgWireError {
    fn from(e: Error) -> Self {
        to_pgwire(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected_by(sqlstate: &str, mysql_code: Option<u16>) -> Error {
        Error::Engine(floe_router::Error::Rejected {
            sqlstate: sqlstate.to_owned(),
            mysql_code,
            message: String::new(),
        })
    }

    #[test]
    fn every_error_has_the_documented_sqlstate() {
        let data = |kind| {
            Error::Engine(floe_router::Error::Data {
                kind,
                message: String::new(),
            })
        };
        let cases = [
            (
                Error::Engine(floe_router::Error::Syntax(String::new())),
                "42601",
            ),
            (
                Error::Engine(floe_router::Error::UndefinedTable(String::new())),
                "42P01",
            ),
            (
                Error::Engine(floe_router::Error::UndefinedColumn(String::new())),
                "42703",
            ),
            (
                Error::Engine(floe_router::Error::InvalidInput(String::new())),
                "42804",
            ),
            (data(DataErrorKind::DivisionByZero), "22012"),
            (data(DataErrorKind::NumericOutOfRange), "22003"),
            (data(DataErrorKind::InvalidText), "22P02"),
            (data(DataErrorKind::Other), "22000"),
            (
                Error::Engine(floe_router::Error::Unsupported(String::new())),
                "0A000",
            ),
            (Error::Engine(floe_router::Error::Cancelled), "57014"),
            (
                Error::Engine(floe_router::Error::EngineUnavailable {
                    engine: "e".into(),
                    message: String::new(),
                    retryable: true,
                }),
                "08006",
            ),
            (
                Error::Engine(floe_router::Error::Internal(String::new())),
                "XX000",
            ),
            (Error::UnknownSetting("x".into()), "42704"),
            (
                Error::InvalidValue {
                    name: "statement_timeout".into(),
                    value: "soon".into(),
                },
                "22023",
            ),
            (Error::InFailedTransaction, "25P02"),
            (Error::NoTransactionBlock("SAVEPOINT"), "25P01"),
            (Error::MultipleStatements, "42601"),
            (Error::InvalidParameter(String::new()), "22023"),
            (Error::Engine(floe_router::Error::Timeout), "57014"),
            (Error::ShuttingDown, "57P01"),
            (Error::UnknownDatabase("x".into()), "3D000"),
            (Error::NoDatabaseSelected, "3D000"),
            (Error::UnknownStatement("s".into()), "26000"),
            (rejected_by("23505", None), "23505"),
            (rejected_by("42883", None), "42883"),
            (rejected_by("23000", Some(1062)), "23505"),
            (rejected_by("40001", Some(1213)), "40P01"),
            (rejected_by("42000", Some(1044)), "42501"),
            (rejected_by("23000", Some(1169)), "23000"),
            (rejected_by("HY000", Some(1105)), "42804"),
        ];
        for (error, code) in cases {
            assert_eq!(sqlstate(&error), code, "{error:?}");
        }
    }
}
