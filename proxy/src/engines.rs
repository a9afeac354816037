//! Engines from configuration, and configuration reloads.
//!
//! [`build`] makes each `[[engines]]` entry into a running engine; remote
//! engines open no connection until they are used or probed, so a server that
//! is down at start-up does not stop Floe (it starts Down and recovers when
//! its probe succeeds). [`Reloader`] re-reads the configuration on SIGHUP or
//! `POST /api/reload` and hands the router the new set: an engine whose
//! connection settings did not change is kept as it is (its pool, health and
//! latency history), so client connections and running statements are never
//! dropped by a reload.

use std::sync::Arc;

use anyhow::Context as _;
use floe_router::Router;
use floe_router::engine::{
    DataFusionEngine, DataFusionEngineOptions, Engine, FlightSqlEngine, FlightSqlEngineOptions,
    MySqlEngine, PostgresEngine, ServerEngineOptions,
};
use floe_router::routing::EngineSpec;
use tokio::runtime::Handle;
use tokio::sync::Mutex;

use crate::admin::NamedCatalogs;
use crate::config::{EngineConfig, EngineKind, FloeConfig};

/// An engine with the configuration it was built from.
#[derive(Debug, Clone)]
pub struct Built {
    /// Its configuration.
    pub config: EngineConfig,
    /// The engine.
    pub engine: Arc<dyn Engine>,
}

/// Builds every configured engine, reusing from `previous` those whose
/// connection settings are unchanged. An embedded engine plans and runs its
/// statements on `cpu` (the daemon's CPU runtime).
///
/// # Errors
///
/// An engine cannot be built (a URL that does not parse, the embedded engine
/// failing to list its catalogs).
pub async fn build(
    config: &FloeConfig,
    catalogs: &NamedCatalogs,
    cpu: &Handle,
    previous: &[Built],
) -> anyhow::Result<Vec<Built>> {
    let mut built = Vec::with_capacity(config.engines.len());
    for engine_config in &config.engines {
        let kept = previous
            .iter()
            .find(|b| b.config.same_connection(engine_config));
        let engine = match kept {
            Some(kept) => Arc::clone(&kept.engine),
            None => build_one(engine_config, catalogs, cpu)
                .await
                .with_context(|| format!("engine {}", engine_config.name))?,
        };
        built.push(Built {
            config: engine_config.clone(),
            engine,
        });
    }
    Ok(built)
}

/// The engines with their routing specs, as the router takes them.
pub fn routed(built: &[Built]) -> Vec<(Arc<dyn Engine>, EngineSpec)> {
    built
        .iter()
        .map(|b| (Arc::clone(&b.engine), b.config.spec()))
        .collect()
}

async fn build_one(
    config: &EngineConfig,
    catalogs: &NamedCatalogs,
    cpu: &Handle,
) -> anyhow::Result<Arc<dyn Engine>> {
    let password = match &config.password_env {
        Some(var) => {
            Some(std::env::var(var).with_context(|| format!("password_env `{var}` is not set"))?)
        }
        None => None,
    };
    let url = || config.url.clone().context("url is required");
    let server = |password: Option<String>| -> anyhow::Result<ServerEngineOptions> {
        Ok(ServerEngineOptions {
            name: config.name.clone(),
            url: url()?,
            password,
            max_connections: config.max_connections,
            connect_timeout: config.connect_timeout,
            pass_through: config.pass_through,
            parameterize: config.parameterize,
        })
    };
    Ok(match config.kind {
        EngineKind::Datafusion => {
            let (default_name, default_catalog) =
                catalogs.first().cloned().context("no catalog configured")?;
            let mut options =
                DataFusionEngineOptions::new(&config.name, default_name, default_catalog);
            options.catalogs = catalogs
                .iter()
                .filter(|(name, _)| {
                    config.serves.is_empty()
                        || config.serves.iter().any(|p| {
                            glob::Pattern::new(p.split('.').next().unwrap_or_default())
                                .is_ok_and(|c| c.matches(name))
                        })
                })
                .cloned()
                .collect();
            options.runtime = Some(cpu.clone());
            Arc::new(DataFusionEngine::try_new(options).await?)
        }
        EngineKind::Postgres => Arc::new(PostgresEngine::new(server(password)?)?),
        EngineKind::Mysql => Arc::new(MySqlEngine::new(server(password)?)?),
        EngineKind::Flightsql => {
            let dialect = config
                .dialect
                .as_deref()
                .unwrap_or("datafusion")
                .parse()
                .map_err(|e| anyhow::anyhow!("dialect: {e}"))?;
            let credentials = match (&config.user, password) {
                (Some(user), Some(password)) => Some((user.clone(), password)),
                (Some(user), None) => Some((user.clone(), String::new())),
                _ => None,
            };
            Arc::new(FlightSqlEngine::new(FlightSqlEngineOptions {
                name: config.name.clone(),
                url: url()?,
                dialect,
                credentials,
                connect_timeout: config.connect_timeout,
            })?)
        }
    })
}

/// Reads the configuration again: the same file, environment and flags as at
/// start-up.
pub type LoadConfig = Arc<dyn Fn() -> anyhow::Result<FloeConfig> + Send + Sync>;

/// Applies configuration reloads to the router, one at a time.
pub struct Reloader {
    load: LoadConfig,
    router: Arc<Router>,
    catalogs: NamedCatalogs,
    cpu: Handle,
    engines: Mutex<Vec<Built>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for `router`, whose engines are `engines` now; new
    /// engines are built as [`build`] does, with `cpu`.
    pub fn new(
        load: LoadConfig,
        router: Arc<Router>,
        catalogs: NamedCatalogs,
        cpu: Handle,
        engines: Vec<Built>,
    ) -> Self {
        Reloader {
            load,
            router,
            catalogs,
            cpu,
            engines: Mutex::new(engines),
        }
    }

    /// Re-reads the configuration and applies its engines and routing; on any
    /// problem the running configuration stays. Returns a one-line summary.
    ///
    /// # Errors
    ///
    /// The configuration is invalid or an engine cannot be built. Sections
    /// other than `engines` and `routing` apply at the next start.
    pub async fn reload(&self) -> anyhow::Result<String> {
        let config = (self.load)()?;
        let mut engines = self.engines.lock().await;
        let built = build(&config, &self.catalogs, &self.cpu, &engines).await?;
        self.router
            .reconfigure(config.routing_config(), routed(&built))
            .map_err(|e| anyhow::anyhow!("routing: {e}"))?;
        let kept = built
            .iter()
            .filter(|b| {
                engines
                    .iter()
                    .any(|old| Arc::ptr_eq(&old.engine, &b.engine))
            })
            .count();
        let summary = format!(
            "{} engines ({} kept, {} new), {} routing rules",
            built.len(),
            kept,
            built.len() - kept,
            config.routing.rules.len()
        );
        *engines = built;
        metrics::counter!("floe_config_reloads_total").increment(1);
        tracing::info!(%summary, "configuration reloaded");
        Ok(summary)
    }
}
