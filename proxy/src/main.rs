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
mod error;
mod frontend;
mod metrics;
mod session;
mod shutdown;

fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("floe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
