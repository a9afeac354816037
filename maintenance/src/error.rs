//! The error type of `floe-maintenance`.

/// What went wrong while talking to a catalog or reading table metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The catalog configuration cannot work (bad URI, unsupported type).
    #[error("catalog {catalog}: {message}")]
    InvalidConfig {
        /// The catalog's configured name.
        catalog: String,
        /// What is wrong.
        message: String,
    },
    /// The catalog or its storage failed.
    #[error("catalog {catalog}: {source}")]
    Catalog {
        /// The catalog's configured name.
        catalog: String,
        /// The Iceberg error.
        #[source]
        source: Box<iceberg::Error>,
    },
    /// A table or its files could not be read or written.
    #[error("{table}: {source}")]
    Table {
        /// The table, `namespace.name`.
        table: String,
        /// The Iceberg error (boxed: it is large and errors are rare).
        #[source]
        source: Box<iceberg::Error>,
    },
    /// The table changed under an operation in a way it cannot build on
    /// (a commit raced it, or the files it rewrote were deleted meanwhile).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The state store, a catalog database or the file system failed.
    #[error("{0}")]
    State(String),
    /// What was asked is not supported (yet), said precisely.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Bad input: an unknown table, operation or parameter.
    #[error("{0}")]
    Invalid(String),
    /// A fail point armed by a test.
    #[error("fail point {0}")]
    Injected(String),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
