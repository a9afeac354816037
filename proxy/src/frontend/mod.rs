//! Front ends: one module per wire protocol, each a thin codec over the shared
//! session layer (`crate::session`).
//!
//! | front end | module | clients |
//! |---|---|---|
//! | PostgreSQL wire | [`pg`] | psql, JDBC, psycopg, pgbench, BI tools |
//! | MySQL wire | [`mysql`] | mysql CLI, mysql_async, PyMySQL, Connector/J |
//! | Arrow Flight SQL | [`flight`] | ADBC, the Flight SQL JDBC driver, `FlightSqlServiceClient` |

pub mod flight;
pub mod mysql;
pub mod pg;
