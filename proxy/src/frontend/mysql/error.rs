//! The one place that knows MySQL's error codes.
//!
//! Every variant is matched with no wildcard arm on Floe's own errors, so a new
//! variant breaks the build here until it has a code. The SQLSTATE sent with
//! each code is MySQL's own for that code (`ErrorKind::sqlstate`).

use floe_router::DataErrorKind;
use opensrv_mysql::ErrorKind;

use crate::error::Error;

/// The MySQL error code for an error, and the message to send with it.
pub(super) fn code(e: &Error) -> ErrorKind {
    match e {
        Error::Engine(engine) => match engine {
            floe_router::Error::Syntax(_) => ErrorKind::ER_PARSE_ERROR,
            floe_router::Error::UndefinedTable(_) => ErrorKind::ER_NO_SUCH_TABLE,
            floe_router::Error::UndefinedColumn(_) => ErrorKind::ER_BAD_FIELD_ERROR,
            floe_router::Error::InvalidInput(_) => ErrorKind::ER_WRONG_ARGUMENTS,
            floe_router::Error::Data { kind, .. } => match kind {
                DataErrorKind::DivisionByZero => ErrorKind::ER_DIVISION_BY_ZER,
                DataErrorKind::NumericOutOfRange => ErrorKind::ER_DATA_OUT_OF_RANGE,
                DataErrorKind::InvalidText => ErrorKind::ER_TRUNCATED_WRONG_VALUE_FOR_FIELD,
                _ => ErrorKind::ER_UNKNOWN_ERROR,
            },
            floe_router::Error::Unsupported(_) => ErrorKind::ER_NOT_SUPPORTED_YET,
            // MySQL reports a statement stopped by KILL QUERY or by
            // max_execution_time as interrupted.
            floe_router::Error::Cancelled | floe_router::Error::Timeout => {
                ErrorKind::ER_QUERY_INTERRUPTED
            }
            floe_router::Error::EngineUnavailable { .. } | floe_router::Error::Internal(_) => {
                ErrorKind::ER_UNKNOWN_ERROR
            }
            _ => ErrorKind::ER_UNKNOWN_ERROR,
        },
        Error::UnknownSetting(_) => ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
        Error::InvalidValue { .. } => ErrorKind::ER_WRONG_VALUE_FOR_VAR,
        // MySQL has no failed-transaction state; the session layer never
        // raises this for MySQL sessions.
        Error::InFailedTransaction => ErrorKind::ER_UNKNOWN_ERROR,
        Error::MultipleStatements => ErrorKind::ER_PARSE_ERROR,
        Error::InvalidParameter(_) => ErrorKind::ER_WRONG_ARGUMENTS,
        Error::UnknownDatabase(_) => ErrorKind::ER_BAD_DB_ERROR,
        Error::NoDatabaseSelected => ErrorKind::ER_NO_DB_ERROR,
        Error::UnknownStatement(_) => ErrorKind::ER_UNKNOWN_STMT_HANDLER,
        Error::ShuttingDown => ErrorKind::ER_SERVER_SHUTDOWN,
    }
}

/// The message MySQL clients see: MySQL's own wording where Floe's differs.
pub(super) fn message(e: &Error) -> String {
    match e {
        Error::UnknownSetting(name) => format!("Unknown system variable '{name}'"),
        Error::InvalidValue { name, value } => {
            format!("Variable '{name}' can't be set to the value of '{value}'")
        }
        Error::Engine(floe_router::Error::Timeout) => {
            "Query execution was interrupted, maximum statement execution time exceeded".to_owned()
        }
        Error::Engine(floe_router::Error::Cancelled) => {
            "Query execution was interrupted".to_owned()
        }
        Error::NoDatabaseSelected => "No database selected".to_owned(),
        Error::UnknownDatabase(db) => format!("Unknown database '{db}'"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_clients_branch_on_are_mysqls() {
        let cases = [
            (
                Error::Engine(floe_router::Error::Syntax(String::new())),
                1064,
                "42000",
            ),
            (
                Error::Engine(floe_router::Error::UndefinedTable(String::new())),
                1146,
                "42S02",
            ),
            (
                Error::Engine(floe_router::Error::UndefinedColumn(String::new())),
                1054,
                "42S22",
            ),
            (
                Error::Engine(floe_router::Error::Internal(String::new())),
                1105,
                "HY000",
            ),
            (Error::UnknownSetting("x".into()), 1193, "HY000"),
            (Error::UnknownDatabase("x".into()), 1049, "42000"),
            (Error::NoDatabaseSelected, 1046, "3D000"),
            (Error::Engine(floe_router::Error::Cancelled), 1317, "70100"),
        ];
        for (error, number, state) in cases {
            let kind = code(&error);
            assert_eq!(kind as u16, number, "{error:?}");
            assert_eq!(kind.sqlstate(), state.as_bytes(), "{error:?}");
        }
    }
}
