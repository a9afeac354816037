//! `floe serve`: builds every part from the validated configuration, serves
//! until SIGINT or SIGTERM, then drains.
//!
//! Start-up order matters: the admin listener comes first so `/healthz`
//! answers while the demo dataset loads; the engine is built after the demo
//! tables exist because it lists tables when it starts; the client listeners
//! come last, and the ready file is written once they are bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use floe_maintenance::adaptive::Maintainer;
use floe_maintenance::audit::AuditLog;
use floe_maintenance::catalog::{ensure_namespaces, open_catalog, open_committer};
use floe_maintenance::ops::Target;
use floe_maintenance::schedule::SystemClock;
use floe_maintenance::telemetry::{self, Heat};
use floe_router::Router;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminMaintenance, AdminRouting, AdminState};
use crate::config::{EngineKind, FloeConfig};
use crate::demo::{self, DemoState};
use crate::engines::{self, LoadConfig, Reloader};
use crate::frontend::{flight, mysql, pg};
use crate::session::Shared;
use crate::shutdown::{self, Drain};

/// The bound addresses, written to `--ready-file` once the daemon serves.
#[derive(Debug, Serialize)]
struct Ready {
    pid: u32,
    postgres: Option<SocketAddr>,
    mysql: Option<SocketAddr>,
    flight_sql: Option<SocketAddr>,
    admin: Option<SocketAddr>,
}

/// How `floe serve` was asked to run, beyond its configuration.
#[derive(Default)]
pub struct RunOptions {
    /// Where to write the bound addresses once serving.
    pub ready_file: Option<PathBuf>,
    /// Shut down when standard input reaches end of file.
    pub exit_on_stdin_eof: bool,
    /// Reads the configuration again, for SIGHUP and `POST /api/reload`;
    /// `None` disables reloads.
    pub reload_config: Option<LoadConfig>,
    /// The runtime for CPU-bound work: the embedded engine's planning and
    /// execution, the maintenance engine's operations and telemetry
    /// aggregation, kept off the runtime that serves clients. `None` runs
    /// them on the caller's runtime (spawned there).
    pub cpu_runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("ready_file", &self.ready_file)
            .field("exit_on_stdin_eof", &self.exit_on_stdin_eof)
            .finish_non_exhaustive()
    }
}

/// Runs the daemon until a signal (or `shutdown` being cancelled) and the drain
/// that follows are over.
///
/// # Errors
///
/// When a listener cannot bind or a catalog or engine cannot start.
pub async fn run(
    config: FloeConfig,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let prometheus = crate::metrics::install()?;
    let mut tasks = JoinSet::new();
    tasks.spawn(shutdown::cancel_on_signal(shutdown.clone()));
    if options.exit_on_stdin_eof {
        tasks.spawn(shutdown::cancel_on_stdin_eof(shutdown.clone()));
    }
    tasks.spawn({
        let prometheus = prometheus.clone();
        let shutdown = shutdown.clone();
        async move {
            // Histograms need periodic upkeep to drain their buffers.
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            while tokio::select! { _ = tick.tick() => true, _ = shutdown.cancelled() => false } {
                prometheus.run_upkeep();
            }
        }
    });

    let ready = Arc::new(AtomicBool::new(false));
    let catalogs = Arc::new(std::sync::RwLock::new(Vec::new()));
    let admin_router = Arc::new(std::sync::RwLock::new(None));
    let admin_maintenance = Arc::new(std::sync::RwLock::new(None));
    let admin_addr = match config.listen.admin {
        Some(addr) => {
            let listener = bind(addr, "admin").await?;
            let local = listener.local_addr()?;
            tracing::info!(addr = %local, "admin HTTP listening (metrics, healthz, readyz)");
            tasks.spawn(admin::serve(
                listener,
                AdminState {
                    prometheus,
                    ready: Arc::clone(&ready),
                    shutdown: shutdown.clone(),
                    catalogs: Arc::clone(&catalogs),
                    routing: Arc::clone(&admin_router),
                    maintenance: Arc::clone(&admin_maintenance),
                },
            ));
            Some(local)
        }
        None => None,
    };

    let mut opened = Vec::with_capacity(config.catalogs.len());
    for catalog in &config.catalogs {
        opened.push((catalog.name.clone(), open_catalog(catalog).await?));
    }
    let (default_name, default_catalog) =
        opened.first().cloned().context("no catalog configured")?;
    let mut namespaces = vec!["public"];
    if config.demo.enabled {
        namespaces.push(demo::NAMESPACE);
    }
    ensure_namespaces(default_catalog.as_ref(), &default_name, &namespaces).await?;
    let demo_state = demo::prepare(default_catalog.as_ref(), &config.demo).await?;
    if let Ok(mut list) = catalogs.write() {
        list.clone_from(&opened);
    }

    let cpu = options
        .cpu_runtime
        .clone()
        .unwrap_or_else(tokio::runtime::Handle::current);
    let built = engines::build(&config, &opened, &cpu, &[]).await?;
    for engine in &built {
        tracing::info!(engine = engine.engine.name(), kind = ?engine.config.kind, "engine ready");
    }
    let router = Arc::new(Router::new(
        config.routing_config(),
        engines::routed(&built),
    )?);
    tasks.spawn(Arc::clone(&router).run_probes(shutdown.clone()));
    tasks.spawn(crate::metrics::export_translation_cache(
        Arc::clone(&router),
        shutdown.clone(),
    ));
    let local = built
        .iter()
        .find(|b| b.config.kind == EngineKind::Datafusion)
        .map(|b| Arc::clone(&b.engine));

    if demo_state == DemoState::NeedsLoad {
        match &local {
            Some(engine) => {
                tracing::info!(
                    rows = config.demo.rows,
                    appends = config.demo.appends,
                    "creating the demo dataset"
                );
                tokio::select! {
                    loaded = demo::load(engine.as_ref(), default_catalog.as_ref(), &config.demo) => loaded?,
                    _ = shutdown.cancelled() => {
                        tracing::warn!("shutdown during demo creation; it resumes on the next start");
                        return Ok(());
                    }
                }
            }
            None => tracing::warn!(
                "no datafusion engine is configured: the demo dataset is not created"
            ),
        }
    }

    let reloader = options.reload_config.clone().map(|load| {
        Arc::new(Reloader::new(
            load,
            Arc::clone(&router),
            opened.clone(),
            cpu.clone(),
            built,
        ))
    });
    if let Some(reloader) = &reloader {
        tasks.spawn(reload_on_sighup(Arc::clone(reloader), shutdown.clone()));
    }
    if let Ok(mut slot) = admin_router.write() {
        *slot = Some(AdminRouting {
            router: Arc::clone(&router),
            reloader,
        });
    }

    // The maintenance engine: telemetry aggregation and the scheduler. The
    // aggregator stops after the drain, so the last statements still count.
    let state_path = crate::maintain::state_path(&config);
    let stop_telemetry = CancellationToken::new();
    let telemetry_section = &config.maintenance.telemetry;
    let (telemetry, heat, heat_task) = if telemetry_section.enabled {
        let heat = Arc::new(Heat::open(telemetry_section.aggregator(), &state_path).await?);
        let (sender, events) = telemetry::channel(telemetry_section.channel);
        // On the compute runtime: aggregating a tick's events is work the
        // clients' few threads, which carry every connection, need not do.
        let task = cpu.spawn(Arc::clone(&heat).run(events, stop_telemetry.clone()));
        (Some(sender), Some(heat), Some(task))
    } else {
        (None, None, None)
    };
    // One audit trail (one connection pool) for every catalog's runs.
    let audit = AuditLog::open(&state_path).await?;
    let mut targets = Vec::with_capacity(opened.len());
    for (catalog_config, (name, catalog)) in config.catalogs.iter().zip(&opened) {
        targets.push(Target {
            catalog_name: name.clone(),
            catalog: Arc::clone(catalog),
            committer: open_committer(catalog_config).await?,
            audit: Some(audit.clone()),
        });
    }
    let maintainer = Arc::new(
        Maintainer::new(
            targets,
            heat.clone(),
            Arc::new(SystemClock),
            config.maintenance.scheduler(),
            config.policies.clone(),
            Some(&state_path),
        )
        .await?,
    );
    // Compaction encodes Parquet for minutes at a time: not on the clients' runtime.
    tasks.spawn_on(Arc::clone(&maintainer).run(shutdown.clone()), &cpu);
    if let Ok(mut slot) = admin_maintenance.write() {
        *slot = Some(AdminMaintenance {
            maintainer,
            heat,
            cpu,
        });
    }

    let drain = Drain::default();
    let shared = Shared {
        router,
        drain: drain.clone(),
        statement_timeout: config.server.statement_timeout,
        telemetry,
        schema_epoch: Default::default(),
        analyses: Arc::new(floe_dialects::Analyses::new(
            crate::session::ANALYSED_SHAPES,
        )),
    };
    let connections = Arc::new(Semaphore::new(config.server.max_connections));
    let mut postgres_addr = None;
    if let Some(addr) = config.listen.postgres {
        let listener = bind(addr, "listen.postgres").await?;
        let local = listener.local_addr()?;
        let tls = match (&config.postgres.tls_cert, &config.postgres.tls_key) {
            (Some(cert), Some(key)) => Some(pg::tls_acceptor(cert, key, "postgres")?),
            _ => None,
        };
        tracing::info!(addr = %local, tls = tls.is_some(), "PostgreSQL wire listening");
        tasks.spawn(pg::serve(
            listener,
            pg::Options {
                shared: shared.clone(),
                tls,
                users: pg::user_passwords(&config)?,
                config: config.postgres.clone(),
                connections: Arc::clone(&connections),
            },
            shutdown.clone(),
        ));
        postgres_addr = Some(local);
    }
    let mut mysql_addr = None;
    if let Some(addr) = config.listen.mysql {
        let listener = bind(addr, "listen.mysql").await?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, tls = config.mysql.tls_cert.is_some(), "MySQL wire listening");
        tasks.spawn(mysql::serve(
            listener,
            mysql::Options {
                shared: shared.clone(),
                users: pg::user_passwords(&config)?,
                connections: Arc::clone(&connections),
                tls: mysql::Tls::from_config(&config.mysql)?,
            },
            shutdown.clone(),
        ));
        mysql_addr = Some(local);
    }
    let mut flight_addr = None;
    if let Some(addr) = config.listen.flight_sql {
        let server = flight::build(flight::Options {
            shared: shared.clone(),
            users: pg::user_passwords(&config)?,
            config: config.flight_sql.clone(),
        })?;
        let listener = bind(addr, "listen.flight_sql").await?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, tls = config.flight_sql.tls_cert.is_some(), "Arrow Flight SQL listening");
        tasks.spawn(flight::serve(listener, server, shutdown.clone()));
        flight_addr = Some(local);
    }

    if let Some(path) = &options.ready_file {
        write_ready_file(
            path,
            &Ready {
                pid: std::process::id(),
                postgres: postgres_addr,
                mysql: mysql_addr,
                flight_sql: flight_addr,
                admin: admin_addr,
            },
        )?;
    }
    ready.store(true, Ordering::Release);
    tracing::info!("Floe is ready");

    shutdown.cancelled().await;
    drain.close();
    let running = drain.running();
    if running > 0 {
        tracing::info!(running, timeout = ?config.server.shutdown_timeout, "waiting for running statements");
    }
    let left = drain.wait_idle(config.server.shutdown_timeout).await;
    if left > 0 {
        tracing::warn!(
            left,
            "shutdown timeout reached; cancelling the statements still running"
        );
    }
    stop_telemetry.cancel();
    if let Some(task) = heat_task
        && tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
    {
        tracing::warn!("telemetry did not flush within 5s");
    }
    tasks.abort_all();
    tracing::info!("Floe stopped");
    Ok(())
}

/// Reloads engines and routing on every SIGHUP until shutdown; a bad
/// configuration is logged and the running one stays.
async fn reload_on_sighup(reloader: Arc<Reloader>, shutdown: CancellationToken) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!(
            "cannot listen for SIGHUP: configuration reloads only through the admin API"
        );
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        if let Err(e) = reloader.reload().await {
            tracing::error!(error = %format!("{e:#}"), "configuration reload failed; the running configuration stays");
        }
    }
}

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{key}: cannot listen on {addr}"))
}

/// Writes the ready file atomically, so a reader never sees half of it.
fn write_ready_file(path: &Path, ready: &Ready) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(ready)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
