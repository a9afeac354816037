//! The maintenance engine's tests: every operation on purpose-built tables
//! (partitioned and not) in a throwaway SQL catalog — and on Glue, S3 and S3
//! Tables served by moto, a SQL catalog in PostgreSQL and a REST catalog —
//! checked by row count and content checksum through iceberg-rust, pyiceberg
//! and DuckDB; fail points and concurrent commits prove that no row is ever
//! lost.

mod lake;
mod moto;
mod ops;
mod pg_catalog;
mod rest;
mod safety;
mod scheduler;
