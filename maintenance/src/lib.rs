//! Floe's Iceberg maintenance engine.
//!
//! This crate owns everything Floe knows about Iceberg catalogs as a
//! maintainer: connecting to them ([`catalog`]) and reading the health signals
//! of every table ([`inventory`]). It depends on `floe-dialects` only and never
//! on the router; the daemon (`floe-proxy`) wires the two together.
//!
//! ```no_run
//! # async fn run() -> floe_maintenance::Result<()> {
//! use floe_maintenance::catalog::{CatalogConfig, open_catalog};
//! use floe_maintenance::inventory::inventory;
//!
//! let config = CatalogConfig::local("lake", "floe-data".as_ref());
//! let catalog = open_catalog(&config).await?;
//! for table in inventory(catalog.as_ref()).await? {
//!     println!("{}.{}: {} snapshots, {} data files", table.namespace, table.name, table.snapshots, table.data_files);
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod adaptive;
pub mod audit;
pub mod catalog;
pub mod commit;
mod error;
pub mod failpoint;
pub mod files;
pub mod inventory;
pub mod ops;
pub mod planner;
pub mod policy;
pub mod schedule;
pub mod telemetry;

pub use error::{Error, Result};
pub use ops::now_ms;
