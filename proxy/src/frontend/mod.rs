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

use std::net::SocketAddr;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Accepts the next client. Accept errors (out of file descriptors, say) are
/// logged and retried after a pause, so a burst of them neither spins nor
/// stops the listener. Rows go out as soon as they are written: Nagle's
/// algorithm is off.
pub(crate) async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                return (socket, peer);
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A string column's value at `row`, whatever its string layout; `None` for
/// NULL or a column that is not a string.
pub(crate) fn string_value(array: &dyn Array, row: usize) -> Option<&str> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(array.as_string_view().value(row)),
        _ => None,
    }
}
