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
            floe_router::Error::Rejected {
                sqlstate,
                mysql_code,
                ..
            } => rejected(sqlstate, *mysql_code),
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
        // MySQL's answer to RELEASE / ROLLBACK TO a savepoint no transaction holds.
        Error::NoTransactionBlock(_) => ErrorKind::ER_SP_DOES_NOT_EXIST,
        Error::MultipleStatements => ErrorKind::ER_PARSE_ERROR,
        Error::InvalidParameter(_) => ErrorKind::ER_WRONG_ARGUMENTS,
        Error::UnknownDatabase(_) => ErrorKind::ER_BAD_DB_ERROR,
        Error::NoDatabaseSelected => ErrorKind::ER_NO_DB_ERROR,
        Error::UnknownStatement(_) => ErrorKind::ER_UNKNOWN_STMT_HANDLER,
        Error::ShuttingDown => ErrorKind::ER_SERVER_SHUTDOWN,
    }
}

/// The payload of an ERR packet, for the places that write one themselves
/// rather than through opensrv (which keeps its writer to itself).
/// `protocol_41` adds the `#` and SQLSTATE of protocol 4.1; before the
/// handshake the server does not know the client speaks it, and MySQL sends
/// the code and message only.
pub(super) fn err_payload(kind: ErrorKind, message: &[u8], protocol_41: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(9 + message.len());
    payload.push(0xff);
    payload.extend_from_slice(&(kind as u16).to_le_bytes());
    if protocol_41 {
        payload.push(b'#');
        payload.extend_from_slice(kind.sqlstate());
    }
    payload.extend_from_slice(message);
    payload
}

/// MySQL's error numbers opensrv can send: every one from 1000 to 1885
/// (`ErrorKind::from` panics outside them).
const KNOWN_CODES: std::ops::RangeInclusive<u16> = 1000..=1885;

/// The code for an engine's own error: a MySQL engine's number as it came
/// (when opensrv can send it); for a PostgreSQL engine's SQLSTATE, the number
/// MySQL uses for the same failure; `ER_WRONG_ARGUMENTS` when neither says.
fn rejected(sqlstate: &str, mysql_code: Option<u16>) -> ErrorKind {
    let number = mysql_code.or(match sqlstate {
        "23505" => Some(1062),           // ER_DUP_ENTRY
        "23502" => Some(1048),           // ER_BAD_NULL_ERROR
        "23503" => Some(1452),           // ER_NO_REFERENCED_ROW_2
        "40P01" | "40001" => Some(1213), // ER_LOCK_DEADLOCK
        "55P03" => Some(1205),           // ER_LOCK_WAIT_TIMEOUT
        "42501" => Some(1142),           // ER_TABLEACCESS_DENIED_ERROR
        "42P07" => Some(1050),           // ER_TABLE_EXISTS_ERROR
        "42883" => Some(1305),           // ER_SP_DOES_NOT_EXIST
        "22001" => Some(1406),           // ER_DATA_TOO_LONG
        _ => None,
    });
    match number {
        Some(n) if KNOWN_CODES.contains(&n) => ErrorKind::from(n),
        _ => ErrorKind::ER_WRONG_ARGUMENTS,
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
            (Error::NoTransactionBlock("RELEASE"), 1305, "42000"),
            (Error::Engine(floe_router::Error::Cancelled), 1317, "70100"),
        ];
        for (error, number, state) in cases {
            let kind = code(&error);
            assert_eq!(kind as u16, number, "{error:?}");
            assert_eq!(kind.sqlstate(), state.as_bytes(), "{error:?}");
        }
    }

    #[test]
    fn engine_errors_keep_their_codes() {
        let rejected = |sqlstate: &str, mysql_code| {
            code(&Error::Engine(floe_router::Error::Rejected {
                sqlstate: sqlstate.to_owned(),
                mysql_code,
                message: String::new(),
            })) as u16
        };
        assert_eq!(
            rejected("23000", Some(1062)),
            1062,
            "MariaDB's duplicate key"
        );
        assert_eq!(
            rejected("23505", None),
            1062,
            "PostgreSQL's unique violation"
        );
        assert_eq!(rejected("40P01", None), 1213, "PostgreSQL's deadlock");
        assert_eq!(
            rejected("HY000", Some(4025)),
            1210,
            "a number opensrv cannot send"
        );
        assert_eq!(rejected("XX000", None), 1210);
    }

    #[test]
    fn every_code_opensrv_knows_converts() {
        // `ErrorKind::from` panics on a number it does not list: the range
        // above must hold no gap (a newer opensrv would break this first).
        for n in KNOWN_CODES {
            assert_eq!(ErrorKind::from(n) as u16, n);
        }
    }
}
