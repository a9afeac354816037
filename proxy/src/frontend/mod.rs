//! Front ends: one module per wire protocol, each a thin codec over the shared
//! session layer (`crate::session`).
//!
//! | front end | module | clients |
//! |---|---|---|
//! | PostgreSQL wire | [`pg`] | psql, JDBC, psycopg, pgbench, BI tools |

pub mod pg;
