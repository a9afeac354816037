//! The Arrow Flight SQL front end, on `arrow-flight`'s `FlightSqlService` and
//! tonic.
//!
//! `service.rs` implements the commands over the shared session layer;
//! `metadata.rs` holds the server's SQL and type information; `error.rs` is the
//! one place that maps Floe's errors to gRPC codes. Results stream as Arrow IPC
//! straight from the engine's batches, under HTTP/2 flow control, so a result
//! is never held whole.

mod error;
mod metadata;
mod service;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use arrow_flight::flight_service_server::FlightServiceServer;
use floe_dialects::Dialect;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use self::service::FlightSql;
use crate::config::FlightSqlConfig;
use crate::session::Shared;

/// Everything [`serve`] needs.
pub struct Options {
    /// Shared by all sessions.
    pub shared: Shared,
    /// Users and their cleartext passwords; empty means every client is trusted.
    pub users: HashMap<String, String>,
    /// The front end's configuration.
    pub config: FlightSqlConfig,
}

/// Reads the TLS identity from PEM files.
///
/// # Errors
///
/// When a file cannot be read.
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<ServerTlsConfig> {
    let cert = std::fs::read(cert)
        .with_context(|| format!("flight_sql.tls_cert: cannot read {}", cert.display()))?;
    let key = std::fs::read(key)
        .with_context(|| format!("flight_sql.tls_key: cannot read {}", key.display()))?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// Builds the gRPC server; fails on a bad TLS configuration before the daemon
/// reports ready.
///
/// # Errors
///
/// When the dialect is unknown or the TLS files are unusable.
pub fn build(options: Options) -> anyhow::Result<(Server, FlightServiceServer<FlightSql>)> {
    let dialect: Dialect = options
        .config
        .dialect
        .parse()
        .map_err(|e: String| anyhow::anyhow!("flight_sql.dialect: {e}"))?;
    let mut server = Server::builder()
        // Keep idle clients' connections alive through proxies.
        .http2_keepalive_interval(Some(Duration::from_secs(30)));
    if let (Some(cert), Some(key)) = (&options.config.tls_cert, &options.config.tls_key) {
        server = server
            .tls_config(tls_config(cert, key)?)
            .context("flight_sql.tls_cert: not a usable certificate and key")?;
    }
    let service = FlightSql::new(
        options.shared,
        options.users,
        dialect,
        options.config.ticket_ttl,
        options.config.token_ttl,
    );
    Ok((server, FlightServiceServer::new(service)))
}

/// Serves Flight SQL on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    (mut server, service): (Server, FlightServiceServer<FlightSql>),
    shutdown: CancellationToken,
) {
    let incoming = TcpListenerStream::new(listener);
    let result = server
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the Flight SQL listener stopped");
    }
}
