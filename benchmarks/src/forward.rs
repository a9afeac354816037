//! `floe-bench forward`: the floor under any proxy's cost.
//!
//! A proxy on the same machine as its clients and server adds two loopback
//! hops per statement: its own receive and send on each side, and the
//! wake-ups of the processes at either end. This forwarder does only that —
//! it accepts a client, connects to the server and copies bytes both ways,
//! on a tokio runtime shaped like Floe's client runtime (half the cores, at
//! least one thread) — so its throughput is the most any proxy built this
//! way can reach on the machine, and `pgbench.sh` / `sysbench.sh` print
//! Floe's ratio to it beside the ratio to the server direct.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};

/// Forwards every connection to `listen` to `to` until the process is
/// killed. `threads` 0 means half the cores, as Floe's default.
pub(crate) fn run(listen: SocketAddr, to: SocketAddr, threads: usize) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = if threads == 0 {
        (cores / 2).max(1)
    } else {
        threads
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the forwarder's runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        loop {
            let (mut client, peer) = listener.accept().await.context("accept failed")?;
            tokio::spawn(async move {
                // As Floe and pgbouncer do: replies are small and go at once.
                let server = async {
                    client.set_nodelay(true)?;
                    let server = TcpStream::connect(to).await?;
                    server.set_nodelay(true)?;
                    Ok::<_, std::io::Error>(server)
                };
                match server.await {
                    Ok(mut server) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    Err(e) => eprintln!("floe-bench forward: {peer} → {to}: {e}"),
                }
            });
        }
    })
}
