//! The PostgreSQL wire front end, on `pgwire`.
//!
//! [`serve`] accepts connections, enforces the connection limit and hands each
//! socket to pgwire with [`Handlers`], the factory pgwire asks for the query,
//! startup and cancel handlers. Queries go to the shared session layer
//! (`crate::session`); Arrow results are encoded by `encode.rs` and errors get
//! their SQLSTATE in `error.rs`, the only place that knows them.

mod auth;
mod encode;
mod error;
mod handler;

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers};
use pgwire::error::PgWireError;
use pgwire::messages::cancel::CancelRequest;
use pgwire::tokio::process_socket;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use self::auth::Authenticator;
use self::handler::{CancelRegistry, Handler};
use crate::config::{FloeConfig, PostgresConfig};
use crate::metrics::{self, Protocol};
use crate::session::Shared;

/// The handler factory pgwire asks, once per connection, for its handlers.
pub struct Handlers {
    handler: Arc<Handler>,
    auth: Authenticator,
    cancel: Arc<Cancel>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.handler)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.handler)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(self.auth.startup_handler())
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }
}

/// Answers cancel requests: pgwire's manager interrupts a statement still
/// being planned, Floe's registry one whose rows are streaming.
struct Cancel {
    connections: Arc<ConnectionManager>,
    registry: Arc<CancelRegistry>,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.registry
            .cancel(&(request.pid, request.secret_key.to_bytes().to_vec()));
        self.connections
            .cancel(request.pid, &request.secret_key)
            .await;
    }
}

struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, client: &C, error: &mut PgWireError) {
        tracing::debug!(client = %client.socket_addr(), %error, "statement failed");
    }
}

/// Everything [`serve`] needs.
pub struct Options {
    /// Shared by all sessions.
    pub shared: Shared,
    /// TLS, if configured.
    pub tls: Option<TlsAcceptor>,
    /// Users and passwords (cleartext, from the environment); empty means trust.
    pub users: HashMap<String, String>,
    /// The front end's configuration.
    pub config: PostgresConfig,
    /// The daemon-wide connection limit, shared with other front ends.
    pub connections: Arc<Semaphore>,
}

/// A certificate chain and private key read from PEM files.
pub type CertifiedKey = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// Reads a PEM certificate chain and key; errors name `section`'s keys.
///
/// # Errors
///
/// When a file cannot be read or holds no certificate or key.
pub fn read_pem(cert: &Path, key: &Path, section: &str) -> anyhow::Result<CertifiedKey> {
    let certs = rustls_pemfile::certs(&mut BufReader::new(
        File::open(cert)
            .with_context(|| format!("{section}.tls_cert: cannot open {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("{section}.tls_cert: {} is not PEM", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{section}.tls_cert: {} holds no certificate",
        cert.display()
    );
    let key = rustls_pemfile::private_key(&mut BufReader::new(
        File::open(key)
            .with_context(|| format!("{section}.tls_key: cannot open {}", key.display()))?,
    ))
    .with_context(|| format!("{section}.tls_key: {} is not PEM", key.display()))?
    .with_context(|| format!("{section}.tls_key: {} holds no private key", key.display()))?;
    Ok((certs, key))
}

/// Builds a TLS acceptor from PEM files; errors name `section`'s keys.
///
/// # Errors
///
/// When a file cannot be read or holds no usable certificate or key.
pub fn tls_acceptor(cert: &Path, key: &Path, section: &str) -> anyhow::Result<TlsAcceptor> {
    acceptor_for(read_pem(cert, key, section)?, section)
}

/// Builds a TLS acceptor from a certificate chain and key already read;
/// errors name `section`'s keys.
///
/// # Errors
///
/// When the key does not match the certificate.
pub fn acceptor_for((certs, key): CertifiedKey, section: &str) -> anyhow::Result<TlsAcceptor> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .with_context(|| format!("{section}.tls_key: does not match {section}.tls_cert"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reads the users' passwords from the environment.
///
/// # Errors
///
/// When a `password_env` variable is not set (validation checks this too, but
/// the environment may change between validation and start).
pub fn user_passwords(config: &FloeConfig) -> anyhow::Result<HashMap<String, String>> {
    config
        .users
        .iter()
        .map(|user| {
            let password = match (&user.password_env, &user.password) {
                (Some(var), _) => std::env::var(var).with_context(|| {
                    format!(
                        "users.password_env: `{var}` for user `{}` is not set",
                        user.name
                    )
                })?,
                (None, Some(password)) => password.clone(),
                (None, None) => String::new(),
            };
            Ok((user.name.clone(), password))
        })
        .collect()
}

/// Accepts PostgreSQL clients on `listener` until `shutdown` is cancelled.
///
/// Connections that are open when shutdown begins are left to the daemon's
/// drain; new ones are refused from that moment.
pub async fn serve(listener: TcpListener, options: Options, shutdown: CancellationToken) {
    let connections = Arc::new(ConnectionManager::new());
    let registry = Arc::new(CancelRegistry::default());
    let handlers = Arc::new(Handlers {
        handler: Arc::new(Handler::new(options.shared.clone(), Arc::clone(&registry))),
        auth: Authenticator::new(
            options.config.auth_method,
            options.users,
            Arc::clone(&connections),
            options.config.tls_required,
        ),
        cancel: Arc::new(Cancel {
            connections,
            registry,
        }),
    });
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            (socket, peer) = crate::frontend::accept(&listener) => {
                let Ok(permit) = Arc::clone(&options.connections).try_acquire_owned() else {
                    metrics::connection_rejected(Protocol::Postgres, "limit");
                    tracing::warn!(%peer, "connection limit reached");
                    sessions.spawn(refuse(socket, "53300", "sorry, too many clients already"));
                    continue;
                };
                let handlers = Arc::clone(&handlers);
                let tls = options.tls.clone();
                sessions.spawn(async move {
                    let _permit = permit;
                    let _gauge = metrics::connection_opened(Protocol::Postgres);
                    if let Err(e) = process_socket(socket, tls, handlers).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    // Sessions still open keep running on the runtime until the daemon's
    // drain is over; detach them rather than abort them here.
    sessions.detach_all();
}

/// Answers a connection that cannot be served with a fatal `ErrorResponse`,
/// after declining SSL if the client asks for it first, as PostgreSQL does.
async fn refuse(mut socket: TcpStream, code: &str, message: &str) {
    const SSL_REQUEST: u32 = 80_877_103;
    const GSS_REQUEST: u32 = 80_877_104;
    let read_packet = async |socket: &mut TcpStream| -> Option<u32> {
        let len = socket.read_u32().await.ok()?;
        if !(8..=10_000).contains(&len) {
            return None;
        }
        let code = socket.read_u32().await.ok()?;
        let mut rest = vec![0u8; (len - 8) as usize];
        socket.read_exact(&mut rest).await.ok()?;
        Some(code)
    };
    let exchange = async {
        let mut code_read = read_packet(&mut socket).await;
        while matches!(code_read, Some(SSL_REQUEST | GSS_REQUEST)) {
            socket.write_all(b"N").await.ok()?;
            code_read = read_packet(&mut socket).await;
        }
        Some(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), exchange).await;
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = vec![b'E'];
    packet.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    packet.extend_from_slice(&body);
    let _ = socket.write_all(&packet).await;
    let _ = socket.shutdown().await;
}
