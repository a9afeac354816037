//! The MySQL wire front end, on `opensrv-mysql`.
//!
//! [`serve`] accepts connections, enforces the shared connection limit and
//! runs opensrv's protocol loop with a [`shim::Shim`] per connection. The shim
//! decodes commands into calls on the shared session layer; `local.rs` answers
//! what connectors send that is not for an engine; `encode.rs` writes Arrow
//! batches as MySQL rows; `error.rs` is the one place that knows MySQL's error
//! codes.
//!
//! # opensrv-mysql 0.7 and memory safety
//!
//! opensrv-mysql 0.7.0's packet reader frees its buffer while a parsed packet
//! still points into it whenever one read returns more than one packet (a
//! client that pipelines; opensrv issue #66, fixed upstream after the 0.7.0
//! release). Floe never lets that happen: [`framing::PacketFramer`] sits under
//! opensrv's reader and returns at most the rest of the current packet per
//! read, so opensrv's buffer never holds bytes past a packet boundary and the
//! freeing branch is never taken. opensrv also panics on some malformed
//! packets (a short `COM_STMT_EXECUTE`, a bad parameter type); each connection
//! runs on its own task, so such a panic closes only that connection.

mod encode;
mod error;
mod framing;
mod local;
mod params;
mod shim;
mod tls;

pub use self::tls::Tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use floe_router::engine::mysql_wire;
use opensrv_mysql::{AsyncMysqlIntermediary, ErrorKind, IntermediaryOptions};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::framing::{Fixups, PacketFramer, SharedWriter};
use self::shim::Shim;
use crate::metrics::{self, Protocol};
use crate::session::{CancelSlot, Shared};

/// Everything [`serve`] needs.
pub struct Options {
    /// Shared by all sessions.
    pub shared: Shared,
    /// Users and their cleartext passwords; empty means every client is trusted.
    pub users: HashMap<String, String>,
    /// The daemon-wide connection limit, shared with other front ends.
    pub connections: Arc<Semaphore>,
    /// TLS, if configured.
    pub tls: Option<Tls>,
}

/// Running statements by connection id, for `KILL QUERY`.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    slots: Mutex<HashMap<u32, Weak<CancelSlot>>>,
}

impl Connections {
    fn register(self: &Arc<Self>, id: u32, slot: &Arc<CancelSlot>) -> Registration {
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(id, Arc::downgrade(slot));
        }
        Registration {
            connections: Arc::clone(self),
            id,
        }
    }

    /// Cancels connection `id`'s running statement; false when there is no
    /// such connection.
    fn kill_query(&self, id: u32) -> bool {
        let slot = self
            .slots
            .lock()
            .ok()
            .and_then(|slots| slots.get(&id).and_then(Weak::upgrade));
        match slot {
            Some(slot) => {
                slot.cancel();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from [`Connections`] when it ends.
pub(crate) struct Registration {
    connections: Arc<Connections>,
    id: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.connections.slots.lock() {
            slots.remove(&self.id);
        }
    }
}

/// Accepts MySQL clients on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, options: Options, shutdown: CancellationToken) {
    let users = Arc::new(options.users);
    let registry = Arc::new(Connections::default());
    let mut next_id: u32 = 0;
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(joined) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = joined && e.is_panic() {
                    tracing::warn!("a MySQL connection closed after a malformed packet");
                }
            }
            (socket, peer) = crate::frontend::accept(&listener) => {
                let Ok(permit) = Arc::clone(&options.connections).try_acquire_owned() else {
                    metrics::connection_rejected(Protocol::MySql, "limit");
                    tracing::warn!(%peer, "connection limit reached");
                    sessions.spawn(refuse(socket));
                    continue;
                };
                // Connection ids start at 1 and wrap, skipping 0, as MySQL's do.
                next_id = next_id.checked_add(1).unwrap_or(1);
                let shim = Shim::new(
                    options.shared.clone(),
                    next_id,
                    peer,
                    Arc::clone(&users),
                    Arc::clone(&registry),
                );
                let tls = options.tls.clone();
                sessions.spawn(async move {
                    let _permit = permit;
                    let _gauge = metrics::connection_opened(Protocol::MySql);
                    if let Err(e) = run_connection(socket, shim, tls).await {
                        tracing::debug!(%peer, error = %e, "MySQL connection ended with an error");
                    }
                });
            }
        }
    }
    sessions.detach_all();
}

/// How the shim writes to its client: opensrv's writer and the shim's own
/// handle for pass-through results share it.
type ClientWriter = SharedWriter<Fixups<BufWriter<tls::SwitchWrite>>>;

async fn run_connection(
    socket: TcpStream,
    mut shim: Shim,
    tls: Option<Tls>,
) -> std::io::Result<()> {
    let (read, write, switch) = tls::split(socket);
    let reader = PacketFramer::new(read, shim.fixups());
    // Every row is one packet: a buffered writer turns them into large
    // writes, and sends whenever it fills, so results stream. The shim
    // writes pass-through results through its own handle.
    let mut writer = SharedWriter::new(Fixups::new(
        BufWriter::with_capacity(64 * 1024, write),
        shim.fixups(),
    ));
    shim.set_raw_writer(writer.clone());
    let options = IntermediaryOptions {
        process_use_statement_on_query: true,
        reject_connection_on_dbname_absence: false,
    };
    let announce = tls.as_ref().and_then(|t| t.announce.clone());
    let (wants_tls, handshake) =
        AsyncMysqlIntermediary::init_before_ssl(&mut shim, reader, &mut writer, &announce).await?;
    match &tls {
        Some(tls) if wants_tls => {
            // opensrv flushed its greeting, and the framer let it read
            // exactly the SSLRequest: nothing is buffered above the socket.
            switch.start_tls(&tls.acceptor).await?;
        }
        Some(tls) => shim.set_tls_missing(tls.required),
        None if wants_tls => {
            return Err(std::io::Error::other(
                "client asked for TLS, which is not configured",
            ));
        }
        None => {}
    }
    opensrv_mysql::plain_run_with_options(shim, writer, options, handshake).await
}

/// Answers a connection over the limit with MySQL's "Too many connections"
/// error in place of the greeting, as MySQL does (without a SQLSTATE: the
/// client has not said yet that it reads one).
async fn refuse(mut socket: TcpStream) {
    let payload = error::err_payload(
        ErrorKind::ER_CON_COUNT_ERROR,
        b"Too many connections",
        false,
    );
    let mut packet = Vec::with_capacity(4 + payload.len());
    mysql_wire::push_packet(&mut packet, &mut 0, &payload);
    let _ = socket.write_all(&packet).await;
    let _ = socket.shutdown().await;
}
