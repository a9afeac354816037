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
        source: iceberg::Error,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
