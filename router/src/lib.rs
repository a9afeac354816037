//! Floe's engines: the [`Engine`] trait every query engine implements, and the
//! engines themselves.
//!
//! An engine takes one statement (already classified by `floe-dialects`) and
//! returns its result as a stream of Arrow record batches, or the count of rows
//! a command touched. Front ends never know which engine answered: they encode
//! whatever stream they get for their own protocol.
//!
//! This crate depends on `floe-dialects` only. It never knows about the
//! maintenance engine (`floe-maintenance`); the two meet in `floe-proxy`.
//!
//! ```no_run
//! # async fn run(catalog: std::sync::Arc<dyn iceberg::Catalog>) -> floe_router::Result<()> {
//! use floe_router::engine::{DataFusionEngine, DataFusionEngineOptions, Engine, Request, QueryOutput};
//! use floe_dialects::{analyze_statement, Dialect};
//!
//! let engine = DataFusionEngine::try_new(DataFusionEngineOptions::new("local", "lake", catalog)).await?;
//! let statement = analyze_statement("SELECT count(*) FROM demo.trips", Dialect::Postgres)?;
//! match engine.execute(Request::new(&statement)).await? {
//!     QueryOutput::Rows { stream, .. } => { /* encode batches as they come */ }
//!     QueryOutput::Command { rows } => println!("{rows:?} rows"),
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod engine;
mod error;
pub mod routing;

pub use engine::{
    BatchStream, Engine, Prepared, QueryOutput, Request, ScanStats, Scope, Transaction,
};
pub use error::{DataErrorKind, Error, Result};
pub use routing::{RouteContext, Router, RoutingConfig, Strategy, Touched};
