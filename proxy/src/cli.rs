//! The `floe` command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use std::sync::Arc;

use crate::config::{FloeConfig, LogFormat};

/// Floe: one SQL endpoint for a lakehouse, with a built-in Iceberg maintenance engine.
#[derive(Debug, Parser)]
#[command(name = "floe", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon. With no config: DataFusion over a local Iceberg
    /// warehouse in ./floe-data with demo data, PostgreSQL wire on
    /// 127.0.0.1:15432 and admin HTTP on 127.0.0.1:18080.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Write the bound addresses as JSON to this file once the daemon serves.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
        /// Shut down (gracefully) when standard input closes: lets a supervisor
        /// or test harness tie the daemon's life to its own.
        #[arg(long)]
        exit_on_stdin_eof: bool,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List every table of every catalog with its health signals.
    Tables {
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Work with one table.
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Run maintenance operations on a table, a namespace or a catalog, with
    /// a before/after report; every run is recorded in the audit trail.
    Maintain {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        args: crate::maintain::MaintainArgs,
    },
    /// Work with maintenance policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Show the audit trail of maintenance runs, newest first.
    Runs {
        #[command(flatten)]
        common: Common,
        /// Only this table (`catalog.namespace.table`).
        #[arg(long)]
        table: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print a table's effective policy: every setting, its value and the
    /// policy it came from (configuration file or admin API, and its scope).
    Show {
        #[command(flatten)]
        common: Common,
        /// `catalog.namespace.table`.
        table: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Print a table's signals: files, sizes, snapshots, manifests.
    Show {
        #[command(flatten)]
        common: Common,
        /// `catalog.namespace.table`.
        table: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file: prints every problem and exits 1, or `ok`.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the effective configuration (file, environment and defaults merged).
    Show {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct Common {
    /// The configuration file.
    #[arg(long, short, env = "FLOE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data directory (catalog, warehouse, state); overrides `server.data_dir`.
    #[arg(long, env = "FLOE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl Common {
    fn load(&self) -> anyhow::Result<FloeConfig> {
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        if let Some(dir) = &self.data_dir {
            // The flag beats the file and FLOE_SERVER_DATA_DIR: it goes last.
            env.push((
                "FLOE_SERVER_DATA_DIR".to_owned(),
                format!(
                    "\"{}\"",
                    dir.display()
                        .to_string()
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                ),
            ));
        }
        FloeConfig::load(self.config.as_deref(), env)
            .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
    }
}

/// A multi-threaded runtime of `threads` workers named `name`.
fn build_runtime(threads: usize, name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .thread_name(name)
        .build()
        .with_context(|| format!("cannot start the {name} runtime"))
}

/// Runs the command line; the exit code is the process's.
pub fn run() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            common,
            ready_file,
            exit_on_stdin_eof,
        } => {
            let config = match common.load() {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("floe: {e:#}");
                    return Ok(std::process::ExitCode::from(2));
                }
            };
            init_logging(config.logging.format, &config.logging.level)?;
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            // Two runtimes: clients and remote engines on few threads, the
            // embedded engine and maintenance on every core (see
            // `daemon::RunOptions::cpu_runtime`).
            let runtime = build_runtime(config.server.client_threads(cores), "floe")?;
            let cpu_runtime = build_runtime(config.server.compute_threads(cores), "floe-cpu")?;
            let reload_from = common.clone();
            let options = crate::daemon::RunOptions {
                ready_file,
                exit_on_stdin_eof,
                reload_config: Some(Arc::new(move || reload_from.load())),
                cpu_runtime: Some(cpu_runtime.handle().clone()),
            };
            let result = runtime.block_on(crate::daemon::run(
                config,
                options,
                CancellationToken::new(),
            ));
            // Sessions left after the drain are cut off here, not waited for.
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            cpu_runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            if let Err(e) = result {
                tracing::error!("{e:#}");
                eprintln!("floe: {e:#}");
                return Ok(std::process::ExitCode::FAILURE);
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Config { command } => match command {
            ConfigCommand::Check { file } => {
                let env: Vec<(String, String)> = std::env::vars().collect();
                match FloeConfig::load(Some(&file), env) {
                    Ok(_) => {
                        println!("{}: ok", file.display());
                        Ok(std::process::ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        Ok(std::process::ExitCode::FAILURE)
                    }
                }
            }
            ConfigCommand::Show { common } => {
                let config = common.load()?;
                print!("{}", toml::to_string_pretty(&config)?);
                Ok(std::process::ExitCode::SUCCESS)
            }
        },
        Command::Tables { common, json } => offline(&common, |config| async move {
            crate::maintain::tables(&config, json).await.map(|()| true)
        }),
        Command::Table {
            command:
                TableCommand::Show {
                    common,
                    table,
                    json,
                },
        } => offline(&common, |config| async move {
            crate::maintain::table_show(&config, &table, json)
                .await
                .map(|()| true)
        }),
        Command::Maintain { common, args } => offline(&common, |config| async move {
            crate::maintain::maintain(&config, &args).await
        }),
        Command::Policy {
            command:
                PolicyCommand::Show {
                    common,
                    table,
                    json,
                },
        } => offline(&common, |config| async move {
            crate::maintain::policy_show(&config, &table, json)
                .await
                .map(|()| true)
        }),
        Command::Runs {
            common,
            table,
            limit,
            json,
        } => offline(&common, |config| async move {
            crate::maintain::runs(&config, table.as_deref(), limit, json)
                .await
                .map(|()| true)
        }),
    }
}

/// Runs a command that works on the catalogs without the daemon: loads the
/// configuration, logs warnings to stderr, exits 0 when `f` says all went
/// well, 1 when not, 2 on a bad configuration.
fn offline<F, Fut>(common: &Common, f: F) -> anyhow::Result<std::process::ExitCode>
where
    F: FnOnce(FloeConfig) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let config = match common.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("floe: {e:#}");
            return Ok(std::process::ExitCode::from(2));
        }
    };
    init_logging(config.logging.format, "warn")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match runtime.block_on(f(config)) {
        Ok(true) => Ok(std::process::ExitCode::SUCCESS),
        Ok(false) => Ok(std::process::ExitCode::FAILURE),
        Err(e) => {
            eprintln!("floe: {e:#}");
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .with_context(|| format!("logging.level: `{level}` is not a valid filter"))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
