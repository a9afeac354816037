//! The one place that maps Floe's errors to gRPC status codes.

use tonic::{Code, Status};

use crate::error::Error;

/// The gRPC code for an error.
pub(super) fn code(e: &Error) -> Code {
    match e {
        Error::Engine(engine) => match engine {
            floe_router::Error::Syntax(_)
            | floe_router::Error::UndefinedColumn(_)
            | floe_router::Error::InvalidInput(_)
            | floe_router::Error::Rejected { .. }
            | floe_router::Error::Data { .. } => Code::InvalidArgument,
            floe_router::Error::UndefinedTable(_) => Code::NotFound,
            floe_router::Error::Unsupported(_) => Code::Unimplemented,
            floe_router::Error::Cancelled => Code::Cancelled,
            floe_router::Error::Timeout => Code::DeadlineExceeded,
            floe_router::Error::EngineUnavailable { .. } => Code::Unavailable,
            floe_router::Error::Internal(_) => Code::Internal,
            _ => Code::Internal,
        },
        Error::UnknownSetting(_)
        | Error::InvalidValue { .. }
        | Error::MultipleStatements
        | Error::InvalidParameter(_)
        | Error::NoDatabaseSelected => Code::InvalidArgument,
        Error::InFailedTransaction | Error::NoTransactionBlock(_) => Code::FailedPrecondition,
        Error::UnknownDatabase(_) | Error::UnknownStatement(_) => Code::NotFound,
        Error::ShuttingDown => Code::Unavailable,
    }
}

/// The status a client receives for `e`: its code and Floe's message.
pub(super) fn status(e: Error) -> Status {
    Status::new(code(&e), e.to_string())
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        status(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_errors_are_invalid_argument_with_the_message() {
        let s = status(Error::Engine(floe_router::Error::Syntax(
            "near FORM".into(),
        )));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("near FORM"), "{}", s.message());
        assert_eq!(
            code(&Error::Engine(floe_router::Error::UndefinedTable(
                "t".into()
            ))),
            Code::NotFound
        );
        assert_eq!(
            code(&Error::Engine(floe_router::Error::Cancelled)),
            Code::Cancelled
        );
    }
}
