//! [`PacketFramer`]: never more than one MySQL packet per read.
//!
//! opensrv-mysql 0.7.0's `PacketReader` keeps bytes that follow the packet it
//! returns by replacing its buffer, while the returned packet still borrows
//! the old one (a use after free; opensrv issue #66). Reading through this
//! framer, a read ends at the current packet's end, so no bytes ever follow a
//! parsed packet in opensrv's buffer. See the module docs of `mysql`.
//!
//! A read also returns a packet's header *with* as much of its payload as
//! has arrived: when opensrv's first read of a packet comes back incomplete,
//! it grows its buffer to 1 MiB and zeroes it, once per packet — a quarter
//! of the MySQL front end's CPU per statement when headers came alone.
//! The framer reads no byte past the packet's end from the stream below, so
//! nothing is held here when the connection switches to TLS.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// The size of a MySQL packet header: a 3-byte length and a sequence number.
const HEADER: usize = 4;

/// Wraps a stream so that each read returns bytes of one packet only.
#[derive(Debug)]
pub(super) struct PacketFramer<R> {
    inner: R,
    header: [u8; HEADER],
    /// Bytes of the current header read so far.
    header_read: usize,
    /// Payload bytes of the current packet not yet read.
    payload_left: usize,
    scratch: Box<[u8]>,
    /// Until the client's first packet has passed: where its capability
    /// flags (the payload's first four bytes, in the handshake response as
    /// in an `SSLRequest`) go, and those read so far. opensrv keeps them to
    /// itself; the pass-through needs them to end a result as the client
    /// expects.
    capture: Option<(Arc<FixupFlags>, [u8; 4], usize)>,
}

impl<R> PacketFramer<R> {
    pub(super) fn new(inner: R, flags: Arc<FixupFlags>) -> Self {
        PacketFramer {
            inner,
            header: [0; HEADER],
            header_read: 0,
            payload_left: 0,
            scratch: vec![0; 16 * 1024].into_boxed_slice(),
            capture: Some((flags, [0; 4], 0)),
        }
    }
}

/// Keeps the first bytes of the client's first packet's payload (`read`, the
/// latest bytes of it) in `capture`, and hands the flags over, ending the
/// capture, once all four are in.
fn capture_flags(capture: &mut Option<(Arc<FixupFlags>, [u8; 4], usize)>, read: &[u8]) {
    let Some((flags, bytes, got)) = capture else {
        return;
    };
    for byte in read.iter().take(4 - *got) {
        bytes[*got] = *byte;
        *got += 1;
    }
    if *got == 4 {
        flags
            .client_capabilities
            .store(u32::from_le_bytes(*bytes), Ordering::Release);
        *capture = None;
    }
}

impl<R: AsyncRead + Unpin> PacketFramer<R> {
    /// Reads payload bytes of the current packet into `buf`, as many as are
    /// ready, at most to the packet's end.
    fn poll_payload(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let limit = self
            .payload_left
            .min(buf.remaining())
            .min(self.scratch.len());
        if limit == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut scratch = ReadBuf::new(&mut self.scratch[..limit]);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut scratch))?;
        let read = scratch.filled();
        buf.put_slice(read);
        self.payload_left -= read.len();
        capture_flags(&mut self.capture, read);
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for PacketFramer<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.header_read < HEADER {
            // Gather the whole header first (it rarely arrives split).
            while this.header_read < HEADER {
                let mut header = ReadBuf::new(&mut this.header[this.header_read..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut header))?;
                let n = header.filled().len();
                if n == 0 {
                    // End of stream: hand over a partial header for opensrv
                    // to report, then the end.
                    let partial = this.header_read;
                    this.header_read = 0;
                    buf.put_slice(&this.header[..partial.min(buf.remaining())]);
                    return Poll::Ready(Ok(()));
                }
                this.header_read += n;
            }
            this.payload_left = usize::from(this.header[0])
                | usize::from(this.header[1]) << 8
                | usize::from(this.header[2]) << 16;
            if buf.remaining() < HEADER {
                // Not seen with opensrv, whose reads offer 4 KiB at least.
                return Poll::Ready(Err(io::Error::other(
                    "a read too small for a packet header",
                )));
            }
            buf.put_slice(&this.header);
            // The payload that has arrived goes in the same read; if none
            // has, the header goes alone and the payload follows.
            if let Poll::Ready(Err(e)) = this.poll_payload(cx, buf) {
                return Poll::Ready(Err(e));
            }
        } else {
            ready!(this.poll_payload(cx, buf))?;
        }
        if this.payload_left == 0 {
            // The packet is complete; the next read starts a header.
            this.header_read = 0;
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        p.push(seq);
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn reads_stop_at_packet_boundaries() {
        let mut input = packet(0, b"\x03SELECT 1");
        input.extend(packet(0, b""));
        input.extend(packet(0, b"\x0e"));
        let flags = Arc::new(FixupFlags::default());
        let mut framer = PacketFramer::new(&input[..], Arc::clone(&flags));
        let mut reads = Vec::new();
        loop {
            let mut buf = vec![0u8; 4096];
            let n = framer.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            reads.push(buf[..n].to_vec());
        }
        assert_eq!(
            reads,
            vec![
                packet(0, b"\x03SELECT 1"),
                packet(0, b""),
                packet(0, b"\x0e"),
            ]
        );
        // The first packet's first four bytes, as the client's capabilities.
        assert_eq!(
            flags.client_capabilities.load(Ordering::Acquire),
            u32::from_le_bytes(*b"\x03SEL")
        );
    }

    #[tokio::test]
    async fn a_packet_arriving_in_pieces_is_read_in_pieces_and_nothing_past_it() {
        let input = packet(0, b"\x03SELECT 1");
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut framer = PacketFramer::new(rx, Arc::default());
        tokio::io::AsyncWriteExt::write_all(&mut tx, &input[..2])
            .await
            .expect("write");
        let mut buf = vec![0u8; 4096];
        let first = async {
            let n = framer.read(&mut buf).await.expect("read");
            buf[..n].to_vec()
        };
        let (first, ()) = tokio::join!(first, async {
            tokio::task::yield_now().await;
            tokio::io::AsyncWriteExt::write_all(&mut tx, &input[2..6])
                .await
                .expect("write");
        });
        // The header, and the two payload bytes that had arrived with it.
        assert_eq!(first, input[..6]);
        tokio::io::AsyncWriteExt::write_all(&mut tx, &input[6..])
            .await
            .expect("write");
        tokio::io::AsyncWriteExt::write_all(&mut tx, &packet(1, b"next"))
            .await
            .expect("write");
        let mut buf = vec![0u8; 4096];
        let n = framer.read(&mut buf).await.expect("read");
        assert_eq!(buf[..n], input[6..]);
        let n = framer.read(&mut buf).await.expect("read");
        assert_eq!(buf[..n], packet(1, b"next")[..]);
    }
}

/// What the shim and the connection's I/O layers share: flags the shim
/// raises for [`Fixups`] to act on the next matching packet, and what the
/// [`PacketFramer`] saw of the client.
#[derive(Debug, Default)]
pub(super) struct FixupFlags {
    /// A login was refused: rewrite the access-denied error code.
    pub(super) access_denied: AtomicBool,
    /// Another result set follows: flag the OK packet that ends this one.
    pub(super) more_results: AtomicBool,
    /// The capability flags the client sent in its first packet.
    pub(super) client_capabilities: AtomicU32,
}

/// Corrects two packets opensrv-mysql 0.7 writes wrongly, on their way out.
///
/// - A failed login gets error 1698 (`ER_ACCESS_DENIED_NO_PASSWORD_ERROR`,
///   meant for socket authentication); MySQL answers a wrong password with
///   1045 (`ER_ACCESS_DENIED_ERROR`), which clients and their users look for.
///   Both have SQLSTATE 28000, so only the two code bytes change.
/// - The OK packet that ends a result set (header `0xfe`, the
///   `CLIENT_DEPRECATE_EOF` form) never carries `SERVER_MORE_RESULTS_EXISTS`,
///   even when another result set of a multi-statement query follows, so
///   clients stop reading after the first. The shim raises `more_results`
///   just before starting the next result set, and the flag is set in that
///   packet's status.
///
/// Each fix is armed by the shim and disarmed once applied.
#[derive(Debug)]
pub(super) struct Fixups<W> {
    inner: W,
    flags: Arc<FixupFlags>,
}

impl<W> Fixups<W> {
    pub(super) fn new(inner: W, flags: Arc<FixupFlags>) -> Self {
        Fixups { inner, flags }
    }

    /// Whether a fix is armed. Almost never: a packet then passes without
    /// being looked at (opensrv writes every row as its own packet).
    fn armed(&self) -> bool {
        self.flags.access_denied.load(Ordering::Acquire)
            || self.flags.more_results.load(Ordering::Acquire)
    }

    /// The payload corrected, if it is a packet an armed fix applies to.
    fn patched(&self, payload: &[u8]) -> Option<Vec<u8>> {
        const OPENSRV_DENIED: [u8; 3] = [0xff, 0xa2, 0x06]; // 1698, little-endian
        const MYSQL_DENIED: [u8; 3] = [0xff, 0x15, 0x04]; // 1045
        const SERVER_MORE_RESULTS_EXISTS: u8 = 0x08;
        if payload.starts_with(&OPENSRV_DENIED) && self.flags.access_denied.load(Ordering::Acquire)
        {
            let mut patched = payload.to_vec();
            patched[..3].copy_from_slice(&MYSQL_DENIED);
            return Some(patched);
        }
        // 0xfe, affected rows 0, last insert id 0, status (2), warnings (2).
        if payload.len() == 7
            && payload.starts_with(&[0xfe, 0, 0])
            && self.flags.more_results.swap(false, Ordering::AcqRel)
        {
            let mut patched = payload.to_vec();
            patched[3] |= SERVER_MORE_RESULTS_EXISTS;
            return Some(patched);
        }
        None
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Fixups<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.armed() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        // opensrv writes a header and its payload together (vectored); a
        // plain write carries both, the payload from byte 4.
        let patched = buf
            .get(4..)
            .and_then(|payload| this.patched(payload))
            .map(|payload| [&buf[..4], &payload[..]].concat());
        match patched {
            Some(bytes) => Pin::new(&mut this.inner).poll_write(cx, &bytes),
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.armed() {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        let patched: Vec<Option<Vec<u8>>> = bufs.iter().map(|b| this.patched(b)).collect();
        if patched.iter().all(Option::is_none) {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        let slices: Vec<io::IoSlice<'_>> = bufs
            .iter()
            .zip(&patched)
            .map(|(original, patched)| io::IoSlice::new(patched.as_deref().unwrap_or(original)))
            .collect();
        Pin::new(&mut this.inner).poll_write_vectored(cx, &slices)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A writer shared by opensrv and the shim: opensrv writes through one
/// handle, and the shim writes a pass-through result's packets through
/// another (opensrv gives it no way to send bytes it did not encode). Both
/// run in the connection's one task and never at once; each write takes the
/// lock only for the poll.
#[derive(Debug)]
pub(super) struct SharedWriter<W>(Arc<Mutex<W>>);

impl<W> SharedWriter<W> {
    pub(super) fn new(inner: W) -> Self {
        SharedWriter(Arc::new(Mutex::new(inner)))
    }

    /// Runs `f` on the writer; a poisoned lock (a panic mid-write) is an
    /// I/O error.
    fn with<T>(&self, f: impl FnOnce(&mut W) -> Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match self.0.lock() {
            Ok(mut inner) => f(&mut inner),
            Err(_) => Poll::Ready(Err(io::Error::other("the connection's writer failed"))),
        }
    }
}

impl<W> Clone for SharedWriter<W> {
    fn clone(&self) -> Self {
        SharedWriter(Arc::clone(&self.0))
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for SharedWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|inner| Pin::new(inner).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.with(|inner| Pin::new(inner).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.0.lock().is_ok_and(|inner| inner.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|inner| Pin::new(inner).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|inner| Pin::new(inner).poll_shutdown(cx))
    }
}
