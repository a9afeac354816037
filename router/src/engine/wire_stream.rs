//! The socket a pass-through connection ([`super::pg_wire`],
//! [`super::mysql_wire`]) speaks over: TCP, or a Unix socket for a server on
//! the same host — the way libpq and pgbouncer reach a local PostgreSQL by
//! default, and the only way to a server that listens on nothing else.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

/// Where a pass-through connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireAddr {
    /// A host name or address and a port.
    Tcp { host: String, port: u16 },
    /// A Unix socket's path.
    #[cfg(unix)]
    Unix(PathBuf),
}

impl fmt::Display for WireAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            #[cfg(unix)]
            WireAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// An open connection's socket.
#[derive(Debug)]
pub(crate) enum WireStream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl WireStream {
    /// Connects to `addr` (TCP without Nagle's delay: every message is a
    /// whole request, sent at once).
    pub(crate) async fn connect(addr: &WireAddr) -> io::Result<Self> {
        match addr {
            WireAddr::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port)).await?;
                stream.set_nodelay(true)?;
                Ok(WireStream::Tcp(stream))
            }
            #[cfg(unix)]
            WireAddr::Unix(path) => Ok(WireStream::Unix(UnixStream::connect(path).await?)),
        }
    }

    /// Whether an idle connection's socket is still open: nothing arrived on
    /// it since its last statement ended. A server that ends a connection (a
    /// shutdown, a kill) says so or closes the socket, which the runtime's
    /// poller has seen by now; a healthy idle connection has nothing to
    /// read, and the check costs no system call while the poller reports
    /// nothing.
    pub(crate) fn still_open(&self) -> bool {
        let mut byte = [0u8; 1];
        let read = match self {
            WireStream::Tcp(stream) => stream.try_read(&mut byte),
            #[cfg(unix)]
            WireStream::Unix(stream) => stream.try_read(&mut byte),
        };
        matches!(read, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for WireStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WireStream::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            #[cfg(unix)]
            WireStream::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WireStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WireStream::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            #[cfg(unix)]
            WireStream::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WireStream::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            #[cfg(unix)]
            WireStream::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WireStream::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            #[cfg(unix)]
            WireStream::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_unix_socket_carries_bytes_and_tells_when_it_closed() {
        let dir = std::env::temp_dir().join(format!("floe-wire-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let addr = WireAddr::Unix(path.clone());
        assert_eq!(addr.to_string(), path.display().to_string());
        let (client, accepted) = tokio::join!(WireStream::connect(&addr), listener.accept());
        let mut client = client.expect("connect");
        let (mut server, _) = accepted.expect("accept");
        assert!(client.still_open());
        client.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        drop(server);
        // The poller sees the close once the runtime has run.
        let mut closed = false;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            if !client.still_open() {
                closed = true;
                break;
            }
        }
        assert!(closed, "a closed socket is not still open");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
