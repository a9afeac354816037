//! The maintenance engine's tests: every operation on purpose-built tables
//! (partitioned and not) in a throwaway SQL catalog, checked by row count and
//! content checksum through iceberg-rust, pyiceberg and DuckDB; fail points
//! and concurrent commits prove that no row is ever lost.

mod lake;
mod ops;
mod safety;
mod scheduler;
