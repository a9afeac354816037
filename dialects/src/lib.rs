//! SQL analysis for Floe: dialects, statement classification, and the telemetry
//! types that cross crates.
//!
//! This is Floe's bottom crate, the way `datafusion-common` is DataFusion's: it
//! depends on no other Floe crate, does no I/O and knows nothing about engines,
//! networks or catalogs. The router uses it to decide what a statement is before
//! it picks an engine; front ends use it to answer session statements themselves.
//!
//! ```
//! use floe_dialects::{analyze, Dialect, StatementKind};
//!
//! let analyses = analyze("BEGIN; SELECT * FROM demo.trips WHERE id = 7; COMMIT", Dialect::Postgres)?;
//! assert_eq!(analyses.len(), 3);
//! assert_eq!(analyses[0].kind, StatementKind::Transaction);
//! assert_eq!(analyses[1].kind, StatementKind::Read);
//! assert!(analyses[1].read_only);
//! # Ok::<(), floe_dialects::Error>(())
//! ```
#![deny(missing_docs)]

mod analyses;
mod cache;
mod classify;
mod dialect;
mod error;
mod fingerprint;
mod parameterize;
mod placeholders;
mod references;
mod rules;
mod shape;
mod translate;
mod tree;
mod types;

pub mod telemetry;

pub use analyses::Analyses;
pub use cache::{CacheStats, TranslationCache};
pub use classify::{Analysis, StatementKind, analyze, analyze_statement, split};
pub use dialect::Dialect;
pub use error::{Error, Result};
pub use fingerprint::{Fingerprint, fingerprint};
pub use parameterize::{INT4_OID, INT8_OID, ParameterShape, Parameterized, parameterize};
pub use placeholders::{
    count_placeholders, mark_placeholders, number_placeholders, param_columns,
    question_placeholders, unmark_placeholders,
};
pub use references::{ColumnRef, Operator, References, TableRef, references};
pub use shape::{ConstantClass, ShapeCache, ShapeKey, Shaped, shape_key};
pub use translate::{adapt, translate, translate_with};
pub use tree::Tree;
pub use types::{ColumnTypes, TypeClass, base_type_name};

/// The `sqlparser` crate this crate parses with, re-exported so that callers
/// holding an AST use the very same version.
pub use sqlparser;
