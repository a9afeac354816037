//! `floe`: the Floe daemon and its command line.
//!
//! The binary is thin: `cli.rs` parses arguments, `daemon.rs` wires the parts,
//! `frontend/` holds the wire protocols and `session.rs` the protocol-independent
//! session layer. See ARCHITECTURE.md for the map.

mod admin;
mod cli;
mod config;
mod daemon;
mod demo;
mod engines;
mod error;
mod frontend;
mod maintain;
mod metrics;
mod session;
mod shutdown;

/// The global allocator (see the `mimalloc` feature in Cargo.toml): every
/// statement allocates its messages, analysis and results on the query path,
/// and with mimalloc's per-thread free lists Floe spent a fifth to a quarter
/// less CPU per statement than with glibc's allocator
/// (`benchmarks/RESULTS.md`, session 13).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The server version MySQL clients see: a MySQL 8.0 version, which decides
/// the protocol features connectors use, tagged with Floe's own.
const VERSION_MYSQL: &str = concat!("8.0.36-floe-", env!("CARGO_PKG_VERSION"));

fn main() -> std::process::ExitCode {
    // Two rustls crypto providers are linked (ring for Floe's listeners,
    // aws-lc-rs for the AWS SDK behind the Glue catalog); with both, rustls
    // has no process default, and any client built without naming one would
    // fail. Floe's is ring. An error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("floe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
