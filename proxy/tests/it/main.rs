//! Integration tests of the `floe` daemon: each starts the real binary (or
//! shares one) and talks to it with real clients.

mod adaptive;
mod admin;
mod auth;
mod aws;
mod bad_input;
mod cancel;
mod config;
mod demo;
mod errors;
mod extended;
mod failover;
mod flight;
mod limits;
mod maintenance;
mod mysql;
mod parity;
mod passthrough;
mod routing;
mod shutdown;
mod simple;
mod types;

use std::sync::OnceLock;

use floe_conformance::{Daemon, DaemonOptions};

/// Rows of the demo dataset in the shared daemon: the default size, so the
/// tests see what a new user sees.
pub const DEMO_ROWS: u64 = 1_000_000;
/// Rows of the demo's `demo.zones` (`ZONES` in `src/demo.rs`): `zone_id` is `1..=DEMO_ZONES`.
pub const DEMO_ZONES: i64 = 263;

/// Options for a daemon of this build without demo data.
pub fn options() -> DaemonOptions {
    DaemonOptions::new(env!("CARGO_BIN_EXE_floe"))
}

/// One daemon with the full demo dataset, shared by every test that only reads
/// it or writes tables of its own (loading the demo takes a while).
pub fn demo_daemon() -> &'static Daemon {
    static DAEMON: OnceLock<Daemon> = OnceLock::new();
    DAEMON.get_or_init(|| Daemon::start(options().demo(DEMO_ROWS)))
}

pub use floe_conformance::text_rows;

/// A daemon with no demo data, for tests that need a configuration of their own.
pub fn plain_daemon(extra_config: &str) -> Daemon {
    Daemon::start(options().config(extra_config))
}

/// A process's peak resident memory in KiB, from /proc.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}
