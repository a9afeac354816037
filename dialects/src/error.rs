//! The error type of `floe-dialects`.

/// What went wrong while analysing SQL, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not valid SQL in the given dialect.
    #[error("syntax error: {message}")]
    Syntax {
        /// The parser's description, with line and column where it has them.
        message: String,
    },
    /// The text is valid SQL but uses something Floe does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The target dialect cannot express a construct of the statement, or
    /// could only with a different meaning.
    #[error("cannot translate {construct} from {from} to {to}")]
    Untranslatable {
        /// What the statement uses.
        construct: String,
        /// The source dialect.
        from: crate::Dialect,
        /// The target dialect.
        to: crate::Dialect,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlparser::parser::ParserError> for Error {
    fn from(e: sqlparser::parser::ParserError) -> Self {
        let message = match e {
            sqlparser::parser::ParserError::TokenizerError(m)
            | sqlparser::parser::ParserError::ParserError(m) => m,
            sqlparser::parser::ParserError::RecursionLimitExceeded => {
                "statement nests too deeply".to_owned()
            }
        };
        Error::Syntax { message }
    }
}
