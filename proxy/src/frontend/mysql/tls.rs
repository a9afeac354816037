//! TLS for the MySQL front end.
//!
//! MySQL switches to TLS inside its handshake: after the server's greeting the
//! client sends an `SSLRequest` packet, then the TLS handshake, then its login
//! over TLS. opensrv-mysql 0.7 can do the switch itself, but it then reads the
//! decrypted bytes with no [`PacketFramer`](super::framing::PacketFramer)
//! between, which would reopen its use-after-free. So Floe lets opensrv write
//! the greeting and read the `SSLRequest` through switchable streams, performs
//! the TLS handshake itself with rustls 0.23, switches the streams to the TLS
//! halves, and hands opensrv the same framed reader for the rest.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::MysqlConfig;
use crate::frontend::pg::read_pem;

/// The TLS stream under a switched connection.
type Encrypted = TlsStream<tokio::io::Join<BufReader<OwnedReadHalf>, OwnedWriteHalf>>;

/// The front end's TLS settings.
#[derive(Clone)]
pub struct Tls {
    pub(super) acceptor: TlsAcceptor,
    /// What opensrv needs to announce `CLIENT_SSL` in its greeting: a
    /// rustls 0.22 configuration, built from the same certificate, used for
    /// nothing else.
    pub(super) announce: Option<Arc<tokio_rustls_opensrv::rustls::ServerConfig>>,
    pub(super) required: bool,
}

impl Tls {
    /// The TLS settings of `[mysql]`, if a certificate is configured.
    ///
    /// # Errors
    ///
    /// When the certificate or key cannot be read or do not match.
    pub fn from_config(config: &MysqlConfig) -> anyhow::Result<Option<Tls>> {
        let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
            return Ok(None);
        };
        let (certs, key) = read_pem(cert, key, "mysql")?;
        let acceptor =
            crate::frontend::pg::acceptor_for((certs.clone(), key.clone_key()), "mysql")?;
        let announce = tokio_rustls_opensrv::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("mysql.tls_key: does not match mysql.tls_cert")?;
        Ok(Some(Tls {
            acceptor,
            announce: Some(Arc::new(announce)),
            required: config.tls_required,
        }))
    }
}

enum ReadSide {
    Plain(BufReader<OwnedReadHalf>),
    Tls(ReadHalf<Encrypted>),
    /// Between taking the plain half and installing the TLS one.
    Switching,
}

enum WriteSide {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<Encrypted>),
    Switching,
}

fn switching() -> io::Error {
    io::Error::other("the connection is switching to TLS")
}

/// The read half of a connection that may switch to TLS.
pub(super) struct SwitchRead(Arc<Mutex<ReadSide>>);

/// The write half of a connection that may switch to TLS.
pub(super) struct SwitchWrite(Arc<Mutex<WriteSide>>);

/// Both halves, kept to perform the switch.
pub(super) struct Switch {
    read: Arc<Mutex<ReadSide>>,
    write: Arc<Mutex<WriteSide>>,
}

/// Splits a socket into switchable halves.
pub(super) fn split(socket: tokio::net::TcpStream) -> (SwitchRead, SwitchWrite, Switch) {
    let (read, write) = socket.into_split();
    let read = Arc::new(Mutex::new(ReadSide::Plain(BufReader::with_capacity(
        64 * 1024,
        read,
    ))));
    let write = Arc::new(Mutex::new(WriteSide::Plain(write)));
    (
        SwitchRead(Arc::clone(&read)),
        SwitchWrite(Arc::clone(&write)),
        Switch { read, write },
    )
}

impl Switch {
    /// Performs the TLS handshake on the plain socket and switches both
    /// halves to it. Call only with nothing buffered above the halves.
    pub(super) async fn start_tls(self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let poisoned = || io::Error::other("a lock was poisoned");
        let read = std::mem::replace(
            &mut *self.read.lock().map_err(|_| poisoned())?,
            ReadSide::Switching,
        );
        let write = std::mem::replace(
            &mut *self.write.lock().map_err(|_| poisoned())?,
            WriteSide::Switching,
        );
        let (ReadSide::Plain(read), WriteSide::Plain(write)) = (read, write) else {
            return Err(io::Error::other("the connection already switched to TLS"));
        };
        let encrypted = acceptor.accept(tokio::io::join(read, write)).await?;
        let (read, write) = tokio::io::split(encrypted);
        *self.read.lock().map_err(|_| poisoned())? = ReadSide::Tls(read);
        *self.write.lock().map_err(|_| poisoned())? = WriteSide::Tls(write);
        Ok(())
    }
}

impl AsyncRead for SwitchRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Ok(mut side) = self.0.lock() else {
            return Poll::Ready(Err(io::Error::other("a lock was poisoned")));
        };
        match &mut *side {
            ReadSide::Plain(r) => Pin::new(r).poll_read(cx, buf),
            ReadSide::Tls(r) => Pin::new(r).poll_read(cx, buf),
            ReadSide::Switching => Poll::Ready(Err(switching())),
        }
    }
}

impl AsyncWrite for SwitchWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let Ok(mut side) = self.0.lock() else {
            return Poll::Ready(Err(io::Error::other("a lock was poisoned")));
        };
        match &mut *side {
            WriteSide::Plain(w) => Pin::new(w).poll_write(cx, buf),
            WriteSide::Tls(w) => Pin::new(w).poll_write(cx, buf),
            WriteSide::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Ok(mut side) = self.0.lock() else {
            return Poll::Ready(Err(io::Error::other("a lock was poisoned")));
        };
        match &mut *side {
            WriteSide::Plain(w) => Pin::new(w).poll_flush(cx),
            WriteSide::Tls(w) => Pin::new(w).poll_flush(cx),
            WriteSide::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Ok(mut side) = self.0.lock() else {
            return Poll::Ready(Err(io::Error::other("a lock was poisoned")));
        };
        match &mut *side {
            WriteSide::Plain(w) => Pin::new(w).poll_shutdown(cx),
            WriteSide::Tls(w) => Pin::new(w).poll_shutdown(cx),
            WriteSide::Switching => Poll::Ready(Err(switching())),
        }
    }
}
