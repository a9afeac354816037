//! The error type of the daemon's query path.
//!
//! Front ends return [`Error`] from their handlers and never build wire errors
//! themselves: each protocol maps [`Error`] to its own codes in exactly one
//! place (`frontend/pg/error.rs`, `frontend/mysql/error.rs`,
//! `frontend/flight/error.rs`).

/// Why a statement failed, by what the client can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine or the analysis rejected the statement.
    #[error(transparent)]
    Engine(#[from] floe_router::Error),
    /// A `SET`, `SHOW` or `RESET` named a parameter Floe does not know.
    #[error("unrecognized configuration parameter \"{0}\"")]
    UnknownSetting(String),
    /// A `SET` gave a parameter a value it cannot take.
    #[error("invalid value for parameter \"{name}\": \"{value}\"")]
    InvalidValue {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
    },
    /// A statement other than `ROLLBACK` arrived in a failed transaction block.
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,
    /// A savepoint command (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`) outside a
    /// transaction block.
    #[error("{0} can only be used in transaction blocks")]
    NoTransactionBlock(&'static str),
    /// Extended protocol `Parse` with more than one statement.
    #[error("cannot insert multiple commands into a prepared statement")]
    MultipleStatements,
    /// A parameter value could not be decoded for the type it was bound as.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// `USE db` (or a connection's database) named a schema that does not exist.
    #[error("unknown database '{0}'")]
    UnknownDatabase(String),
    /// A statement needs a current database and none was chosen (MySQL).
    #[error("no database selected")]
    NoDatabaseSelected,
    /// A prepared statement or portal handle the client never created or
    /// already closed.
    #[error("unknown prepared statement handler ({0})")]
    UnknownStatement(String),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<floe_dialects::Error> for Error {
    fn from(e: floe_dialects::Error) -> Self {
        Error::Engine(e.into())
    }
}
