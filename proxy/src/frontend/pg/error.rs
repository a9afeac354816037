//! The one place that knows PostgreSQL's SQLSTATE codes.
//!
//! Every variant is matched with no wildcard arm, so a new error variant breaks
//! the build here until it has a code.

use floe_router::DataErrorKind;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::Error;

/// The SQLSTATE for an error.
pub(super) fn sqlstate(e: &Error) -> &'static str {
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
            floe_router::Error::Internal(_) => "XX000",
            _ => "XX000",
        },
        Error::UnknownSetting(_) => "42704",
        Error::InvalidValue { .. } => "22023",
        Error::InFailedTransaction => "25P02",
        Error::MultipleStatements => "42601",
        Error::InvalidParameter(_) => "22023",
        Error::UnknownDatabase(_) => "3D000",
        Error::NoDatabaseSelected => "3D000",
        Error::UnknownStatement(_) => "26000",
        Error::ShuttingDown => "57P01",
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
            (Error::MultipleStatements, "42601"),
            (Error::InvalidParameter(String::new()), "22023"),
            (Error::Engine(floe_router::Error::Timeout), "57014"),
            (Error::ShuttingDown, "57P01"),
            (Error::UnknownDatabase("x".into()), "3D000"),
            (Error::NoDatabaseSelected, "3D000"),
            (Error::UnknownStatement("s".into()), "26000"),
        ];
        for (error, code) in cases {
            assert_eq!(sqlstate(&error), code, "{error:?}");
        }
    }
}
