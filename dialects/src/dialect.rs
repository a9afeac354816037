//! The SQL dialects Floe speaks, on the client side and on the engine side.

use std::fmt;
use std::str::FromStr;

use sqlparser::dialect::{
    Dialect as ParserDialect, DuckDbDialect, GenericDialect, MySqlDialect, PostgreSqlDialect,
};

/// A SQL dialect: what a client speaks or what an engine understands.
///
/// Parsing uses the matching `sqlparser` dialect, so that `"ident"` means an
/// identifier for PostgreSQL and a string for MySQL, exactly as the client meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL, as spoken by psql, JDBC and psycopg.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// DataFusion's own SQL (close to PostgreSQL).
    DataFusion,
    /// DuckDB.
    DuckDb,
    /// Trino.
    Trino,
}

impl Dialect {
    /// The `sqlparser` dialect that parses this dialect's text.
    pub(crate) fn parser_dialect(self) -> Box<dyn ParserDialect> {
        match self {
            Dialect::Postgres => Box::new(PostgreSqlDialect {}),
            Dialect::MySql => Box::new(MySqlDialect {}),
            Dialect::DuckDb => Box::new(DuckDbDialect {}),
            // DataFusion parses with the generic dialect; Trino has no dedicated
            // sqlparser dialect and is closest to the generic one.
            Dialect::DataFusion | Dialect::Trino => Box::new(GenericDialect {}),
        }
    }

    /// The lower-case name used in configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::DataFusion => "datafusion",
            Dialect::DuckDb => "duckdb",
            Dialect::Trino => "trino",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "datafusion" => Ok(Dialect::DataFusion),
            "duckdb" => Ok(Dialect::DuckDb),
            "trino" => Ok(Dialect::Trino),
            other => Err(format!(
                "unknown dialect `{other}`; expected one of postgres, mysql, datafusion, duckdb, trino"
            )),
        }
    }
}
