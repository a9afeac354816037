//! The error type of `floe-router`.
//!
//! Variants say what the client did wrong or what failed, in the categories
//! every wire protocol distinguishes; each front end maps them to its own codes
//! in exactly one place (`proxy/src/frontend/*/error.rs`).

/// What went wrong while planning or running a statement on an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The statement is not valid SQL.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A table, view or schema the statement names does not exist.
    #[error("{0}")]
    UndefinedTable(String),
    /// A column the statement names does not exist.
    #[error("{0}")]
    UndefinedColumn(String),
    /// The statement is valid but wrong for the data: types do not match, a
    /// function gets the wrong arguments, a table already exists.
    #[error("{0}")]
    InvalidInput(String),
    /// A value could not be computed: division by zero, overflow, a string that
    /// is not a number.
    #[error("{message}")]
    Data {
        /// Which kind of data error, for the protocol's code.
        kind: DataErrorKind,
        /// The engine's description.
        message: String,
    },
    /// The statement uses a feature this engine does not support.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The statement was cancelled by the client or by shutdown.
    #[error("canceling statement due to user request")]
    Cancelled,
    /// The statement ran longer than its timeout and was stopped.
    #[error("canceling statement due to statement timeout")]
    Timeout,
    /// The engine could not be reached or failed for its own reasons.
    #[error("engine {engine} unavailable: {message}")]
    EngineUnavailable {
        /// The engine's configured name.
        engine: String,
        /// What happened.
        message: String,
        /// Whether running the statement again (here or elsewhere) may succeed.
        retryable: bool,
    },
    /// The engine refused the statement for a reason none of the variants
    /// above name — a constraint violation, a deadlock, a lock timeout, a
    /// missing privilege or function — with codes of its own, which travel
    /// with it: a client branches on them (a unique violation is retried as
    /// an update, a deadlock as a new transaction), and each front end passes
    /// them on in its protocol's terms.
    #[error("{message}")]
    Rejected {
        /// The SQLSTATE the engine reported.
        sqlstate: String,
        /// MySQL's error number, when the engine speaks MySQL.
        mysql_code: Option<u16>,
        /// The engine's message.
        message: String,
    },
    /// A broken invariant inside Floe or an engine; never the client's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Kinds of data errors, after SQL's class 22.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// Division by zero.
    DivisionByZero,
    /// A number does not fit its type.
    NumericOutOfRange,
    /// A text could not be read as a value of the wanted type.
    InvalidText,
    /// Any other data error.
    Other,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<floe_dialects::Error> for Error {
    fn from(e: floe_dialects::Error) -> Self {
        match e {
            floe_dialects::Error::Syntax { message } => Error::Syntax(message),
            floe_dialects::Error::Unsupported(m) => Error::Unsupported(m),
            untranslatable @ floe_dialects::Error::Untranslatable { .. } => {
                Error::Unsupported(untranslatable.to_string())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}
