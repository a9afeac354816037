//! Floe's configuration: one TOML file, validated once at start.
//!
//! [`FloeConfig`] composes the sections; crates that act on a section own its
//! type (catalogs are `floe_maintenance::catalog::CatalogConfig`). This module is
//! the only code that reads configuration files or `FLOE_*` environment
//! variables. Every struct rejects unknown keys, so a typo stops start-up with
//! the key's name and line instead of being ignored.
//!
//! Precedence, lowest first: built-in defaults, the file, `FLOE_<SECTION>_<KEY>`
//! environment variables, command-line flags.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use floe_maintenance::adaptive::MaintainerConfig;
use floe_maintenance::catalog::CatalogConfig;
use floe_maintenance::policy::{self, Bytes, Mode, Policy};
use floe_maintenance::telemetry::TelemetryConfig;
use floe_router::RoutingConfig;
use floe_router::routing::{CostModel, EngineSpec, Rule, Strategy};
use serde::{Deserialize, Serialize};

/// The sections that `FLOE_<SECTION>_<KEY>` environment variables may set.
const ENV_SECTIONS: &[&str] = &[
    "server",
    "listen",
    "postgres",
    "mysql",
    "flight_sql",
    "routing",
    "demo",
    "logging",
    "maintenance",
];

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloeConfig {
    /// Daemon-wide settings.
    pub server: ServerConfig,
    /// Where each front end listens; omit one to disable it.
    pub listen: ListenConfig,
    /// PostgreSQL front-end settings: authentication and TLS.
    pub postgres: PostgresConfig,
    /// MySQL front-end settings: TLS.
    pub mysql: MysqlConfig,
    /// Arrow Flight SQL front-end settings: TLS, dialect, ticket and token
    /// lifetimes.
    pub flight_sql: FlightSqlConfig,
    /// Users allowed to connect. With none, every client on any address is
    /// trusted, which is what the loopback-only defaults are for.
    pub users: Vec<UserConfig>,
    /// Iceberg catalogs. With none, a local SQL catalog named `lake` lives in
    /// the data directory.
    pub catalogs: Vec<CatalogConfig>,
    /// Query engines. With none, the embedded DataFusion engine `local` serves
    /// every catalog.
    pub engines: Vec<EngineConfig>,
    /// How statements are routed between the engines.
    pub routing: RoutingSection,
    /// The demo dataset created on first start.
    pub demo: DemoConfig,
    /// Logging.
    pub logging: LoggingConfig,
    /// The maintenance engine: mode, scheduler, telemetry.
    pub maintenance: MaintenanceSection,
    /// Maintenance and configuration policies, each for a catalog, namespace
    /// or table (`floe_maintenance::policy::Policy`).
    pub policies: Vec<Policy>,
}

/// `[maintenance]`: how the maintenance engine runs inside the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceSection {
    /// What maintenance does by itself, unless a policy says otherwise:
    /// `off` (nothing, ever), `manual` (only what an operator starts),
    /// `scheduled` (cron schedules of policies) or `adaptive` (schedules,
    /// triggers and query telemetry).
    ///
    /// _Default:_ `manual`.
    pub mode: Mode,
    /// How often the scheduler looks at every table.
    ///
    /// _Default:_ `60s`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Maintenance jobs run at once.
    ///
    /// _Default:_ `1`.
    pub concurrency: usize,
    /// Bytes compaction may rewrite per hour across the lake (`50GiB`);
    /// unset: no limit.
    pub max_bytes_per_hour: Option<Bytes>,
    /// Query telemetry.
    pub telemetry: TelemetrySection,
}

impl Default for MaintenanceSection {
    fn default() -> Self {
        MaintenanceSection {
            mode: Mode::Manual,
            interval: Duration::from_secs(60),
            concurrency: 1,
            max_bytes_per_hour: None,
            telemetry: TelemetrySection::default(),
        }
    }
}

/// `[maintenance.telemetry]`: what the router reports about every query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySection {
    /// Whether statements are reported at all.
    ///
    /// _Default:_ `true`.
    pub enabled: bool,
    /// Events the channel holds; when it is full new events are dropped (and
    /// counted in `floe_telemetry_events_total{result="dropped"}`), the query
    /// never waits.
    ///
    /// _Default:_ `8192`.
    pub channel: usize,
    /// A query's weight in the statistics halves every half-life.
    ///
    /// _Default:_ `6h`.
    #[serde(with = "humantime_serde")]
    pub half_life: Duration,
    /// How long raw events (statement shapes, never constants) are kept.
    ///
    /// _Default:_ `1h`.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// At most this many raw events are kept.
    ///
    /// _Default:_ `10000`.
    pub max_events: usize,
    /// How often statistics are written to the state store.
    ///
    /// _Default:_ `10s`.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        let d = TelemetryConfig::default();
        TelemetrySection {
            enabled: true,
            channel: 8192,
            half_life: d.half_life,
            retention: d.raw_retention,
            max_events: d.raw_max,
            flush_interval: d.flush_interval,
        }
    }
}

impl TelemetrySection {
    /// The aggregator's settings.
    pub fn aggregator(&self) -> TelemetryConfig {
        TelemetryConfig {
            half_life: self.half_life,
            raw_retention: self.retention,
            raw_max: self.max_events,
            flush_interval: self.flush_interval,
        }
    }
}

impl MaintenanceSection {
    /// The scheduler's settings.
    pub fn scheduler(&self) -> MaintainerConfig {
        MaintainerConfig {
            base: Policy {
                mode: Some(self.mode),
                ..Policy::default()
            },
            interval: self.interval,
            concurrency: self.concurrency,
            max_bytes_per_hour: self.max_bytes_per_hour.map(|b| b.0),
        }
    }
}

/// Daemon-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the local catalog, warehouse and state live.
    ///
    /// _Default:_ `floe-data` (relative to the working directory).
    pub data_dir: PathBuf,
    /// How many client connections all front ends accept at once; one more gets
    /// the protocol's "too many connections" error.
    ///
    /// _Default:_ `1000`.
    pub max_connections: usize,
    /// On SIGTERM or SIGINT, how long running statements may take to finish
    /// before the daemon exits anyway.
    ///
    /// _Default:_ `30s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How long a statement may run before it is cancelled; `0s` means no limit.
    ///
    /// _Default:_ `0s`.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Threads of the async runtime that serves clients and talks to remote
    /// engines; `0` means half the CPU cores, at least one. A statement that
    /// only crosses sockets costs less CPU when its tasks stay on one thread
    /// (no cross-thread wake-ups or work stealing: `benchmarks/RESULTS.md`),
    /// and a proxy shares its machine. Read at start only.
    ///
    /// _Default:_ `0`.
    pub worker_threads: usize,
    /// Threads of the runtime for CPU-bound work: the embedded DataFusion
    /// engine's planning and execution and the maintenance engine's
    /// operations, kept apart so that they never stall the clients' runtime;
    /// `0` means one per CPU core. Read at start only.
    ///
    /// _Default:_ `0`.
    pub cpu_threads: usize,
}

impl ServerConfig {
    /// The clients' runtime threads: `worker_threads`, or half of `cores`.
    pub fn client_threads(&self, cores: usize) -> usize {
        match self.worker_threads {
            0 => (cores / 2).max(1),
            n => n,
        }
    }

    /// The CPU runtime's threads: `cpu_threads`, or `cores`.
    pub fn compute_threads(&self, cores: usize) -> usize {
        match self.cpu_threads {
            0 => cores.max(1),
            n => n,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("floe-data"),
            max_connections: 1000,
            shutdown_timeout: Duration::from_secs(30),
            statement_timeout: Duration::ZERO,
            worker_threads: 0,
            cpu_threads: 0,
        }
    }
}

/// Listener addresses. Port 0 picks a free port; the daemon reports the bound
/// addresses in its log and in the `--ready-file`. `"off"` turns a listener
/// off (a key left out keeps its default address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// PostgreSQL wire protocol.
    ///
    /// _Default:_ `127.0.0.1:15432`.
    #[serde(with = "listen_address")]
    pub postgres: Option<SocketAddr>,
    /// MySQL wire protocol.
    ///
    /// _Default:_ `127.0.0.1:13306`.
    #[serde(with = "listen_address")]
    pub mysql: Option<SocketAddr>,
    /// Arrow Flight SQL (gRPC).
    ///
    /// _Default:_ `127.0.0.1:15433`.
    #[serde(with = "listen_address")]
    pub flight_sql: Option<SocketAddr>,
    /// Admin HTTP: `/metrics`, `/healthz`, `/readyz`, `/api/*`.
    ///
    /// _Default:_ `127.0.0.1:18080`.
    #[serde(with = "listen_address")]
    pub admin: Option<SocketAddr>,
}

/// A listener's address in the config: `host:port`, or `"off"` for none.
mod listen_address {
    use std::net::SocketAddr;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        address: &Option<SocketAddr>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match address {
            Some(address) => serializer.collect_str(address),
            None => serializer.serialize_str("off"),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        text.trim().parse().map(Some).map_err(|_| {
            D::Error::custom(format!(
                "{text:?} is not an address: expected host:port (an IP address) or \"off\""
            ))
        })
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            postgres: Some(SocketAddr::from(([127, 0, 0, 1], 15432))),
            mysql: Some(SocketAddr::from(([127, 0, 0, 1], 13306))),
            flight_sql: Some(SocketAddr::from(([127, 0, 0, 1], 15433))),
            admin: Some(SocketAddr::from(([127, 0, 0, 1], 18080))),
        }
    }
}

/// PostgreSQL front-end settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// How configured users prove who they are. Ignored while no user is
    /// configured (every client is trusted then).
    ///
    /// _Default:_ `scram-sha-256`.
    pub auth_method: AuthMethod,
    /// PEM certificate chain for TLS. With `tls_key`, clients may use
    /// `sslmode=require`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for TLS.
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not use TLS.
    ///
    /// _Default:_ `false`.
    pub tls_required: bool,
}

/// MySQL front-end settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlConfig {
    /// PEM certificate chain for TLS. With `tls_key`, clients may use
    /// `--ssl` / `ssl-mode=REQUIRED`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// Refuse logins that do not use TLS.
    ///
    /// _Default:_ `false`.
    pub tls_required: bool,
}

/// Arrow Flight SQL front-end settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlightSqlConfig {
    /// PEM certificate chain for TLS. With `tls_key`, the listener speaks only
    /// TLS (`grpc+tls://`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// The SQL dialect Flight SQL clients write.
    ///
    /// _Default:_ `datafusion` (the embedded engine's).
    pub dialect: String,
    /// How long a `GetFlightInfo` ticket stays valid for its `DoGet`.
    ///
    /// _Default:_ `5m`.
    #[serde(with = "humantime_serde")]
    pub ticket_ttl: Duration,
    /// How long a bearer token from `Handshake` stays valid.
    ///
    /// _Default:_ `12h`.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
}

impl Default for FlightSqlConfig {
    fn default() -> Self {
        FlightSqlConfig {
            tls_cert: None,
            tls_key: None,
            dialect: "datafusion".to_owned(),
            ticket_ttl: Duration::from_secs(300),
            token_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// How PostgreSQL clients authenticate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// SCRAM-SHA-256, PostgreSQL's default since version 14.
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// MD5 password hashes, for old clients.
    Md5,
    /// No password.
    Trust,
}

/// A user allowed to connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name clients log in with.
    pub name: String,
    /// The environment variable holding the password, so that no secret sits in
    /// the file.
    pub password_env: Option<String>,
    /// The password itself. Prefer `password_env`.
    pub password: Option<String>,
}

/// One query engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// The engine's name in logs, metrics, rules and `SET floe.engine`.
    pub name: String,
    /// What kind of engine.
    #[serde(rename = "type")]
    pub kind: EngineKind,
    /// Where the server is: `postgres://user@host:port/db`,
    /// `mysql://user@host:port/db` or `http://host:port` (Flight SQL). Not for
    /// `datafusion`.
    pub url: Option<String>,
    /// The environment variable holding the server's password, so that no
    /// secret sits in the file (or in logs: URLs are never logged).
    pub password_env: Option<String>,
    /// The user for the Flight SQL handshake (with `password_env`).
    pub user: Option<String>,
    /// The dialect a `flightsql` engine speaks.
    ///
    /// _Default:_ `datafusion`.
    pub dialect: Option<String>,
    /// Which tables it serves: `catalog.*`, `catalog.namespace.*` or
    /// `catalog.namespace.table` glob patterns.
    ///
    /// _Default:_ every configured catalog.
    pub serves: Vec<String>,
    /// Whether it accepts writes and DDL.
    ///
    /// _Default:_ `true`.
    pub writes: bool,
    /// Its price: `{ per_query, per_second, per_tb_scanned }`.
    ///
    /// _Default:_ free.
    pub cost: CostModel,
    /// Statements it runs at once at most; `0` is unlimited.
    ///
    /// _Default:_ `0`.
    pub max_concurrency: usize,
    /// Statements that may wait for a free slot.
    ///
    /// _Default:_ `64`.
    pub queue_len: usize,
    /// How long a statement waits for a slot before the next engine is tried.
    ///
    /// _Default:_ `5s`.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// Connections to the server at most (remote engines).
    ///
    /// _Default:_ `16`.
    pub max_connections: usize,
    /// How long connecting may take.
    ///
    /// _Default:_ `5s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `postgres` engines: PostgreSQL clients' read-only statements with text
    /// results get the server's own rows; `mysql` engines: MySQL clients'
    /// read-only statements do (text or binary rows). Forwarded without
    /// conversion, on a pool of their own (at most `max_connections` more
    /// connections). `false` converts every result through Arrow.
    ///
    /// _Default:_ `true`.
    pub pass_through: bool,
    /// `postgres` engines, with `pass_through`: a simple query's integer and
    /// quoted constants compared with columns go to the server as typed
    /// parameters of a statement it prepares once per connection, so it
    /// parses and plans each query shape once rather than every statement.
    /// `false` sends every simple query's text as it is.
    ///
    /// _Default:_ `true`.
    pub parameterize: bool,
    /// How often the engine is probed.
    ///
    /// _Default:_ `5s`.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Relative capacity for the throughput strategy.
    ///
    /// _Default:_ `1.0`.
    pub weight: f64,
    /// The latency assumed before any statement was measured on it.
    ///
    /// _Default:_ `10ms`.
    #[serde(with = "humantime_serde")]
    pub expected_latency: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let spec = EngineSpec::default();
        EngineConfig {
            name: String::new(),
            kind: EngineKind::Datafusion,
            url: None,
            password_env: None,
            user: None,
            dialect: None,
            serves: Vec::new(),
            writes: spec.writes,
            cost: spec.cost,
            max_concurrency: spec.max_concurrency,
            queue_len: spec.queue_len,
            queue_timeout: spec.queue_timeout,
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            pass_through: true,
            parameterize: true,
            probe_interval: spec.probe_interval,
            weight: spec.weight,
            expected_latency: spec.expected_latency,
        }
    }
}

impl EngineConfig {
    /// How the router treats this engine.
    pub fn spec(&self) -> EngineSpec {
        EngineSpec {
            serves: self.serves.clone(),
            writes: self.writes,
            cost: self.cost,
            max_concurrency: self.max_concurrency,
            queue_len: self.queue_len,
            queue_timeout: self.queue_timeout,
            probe_interval: self.probe_interval,
            weight: self.weight,
            expected_latency: self.expected_latency,
        }
    }

    /// Whether `other` connects to the same server the same way, so that a
    /// reload may keep the running engine (and its pool) and change only how
    /// it is routed to.
    pub fn same_connection(&self, other: &EngineConfig) -> bool {
        self.name == other.name
            && self.kind == other.kind
            && self.url == other.url
            && self.password_env == other.password_env
            && self.user == other.user
            && self.dialect == other.dialect
            && self.max_connections == other.max_connections
            && self.connect_timeout == other.connect_timeout
            && self.pass_through == other.pass_through
            && self.parameterize == other.parameterize
            && (self.kind != EngineKind::Datafusion || self.serves == other.serves)
    }
}

/// The kinds of query engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The embedded DataFusion engine over the configured Iceberg catalogs.
    Datafusion,
    /// A PostgreSQL server.
    Postgres,
    /// A MySQL or MariaDB server.
    Mysql,
    /// An Arrow Flight SQL server.
    Flightsql,
}

/// How statements are routed between engines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSection {
    /// `cost`, `latency` or `throughput`; sessions override it with
    /// `SET floe.strategy`, rules per statement.
    ///
    /// _Default:_ `cost`.
    pub strategy: Strategy,
    /// The latency the cost strategy must meet.
    ///
    /// _Default:_ `500ms`.
    #[serde(with = "humantime_serde")]
    pub latency_slo: Duration,
    /// Share of latency-strategy decisions that try another candidate, so
    /// every engine stays measured.
    ///
    /// _Default:_ `0.05`.
    pub exploration: f64,
    /// The schema unqualified table names belong to when the session chose
    /// none (MySQL `USE` chooses one).
    ///
    /// _Default:_ `public`.
    pub default_schema: String,
    /// Translations remembered by the translation cache.
    ///
    /// _Default:_ `10000`.
    pub translation_cache: usize,
    /// Rules that pin or exclude engines (`[[routing.rules]]`), in order.
    pub rules: Vec<Rule>,
}

impl Default for RoutingSection {
    fn default() -> Self {
        let defaults = RoutingConfig::default();
        RoutingSection {
            strategy: defaults.strategy,
            latency_slo: defaults.latency_slo,
            exploration: defaults.exploration,
            default_schema: defaults.default_schema,
            translation_cache: defaults.translation_cache,
            rules: Vec::new(),
        }
    }
}

impl FloeConfig {
    /// The router's configuration.
    pub fn routing_config(&self) -> RoutingConfig {
        RoutingConfig {
            strategy: self.routing.strategy,
            latency_slo: self.routing.latency_slo,
            exploration: self.routing.exploration,
            default_catalog: self
                .catalogs
                .first()
                .map_or_else(|| "lake".to_owned(), |c| c.name.clone()),
            default_schema: self.routing.default_schema.clone(),
            rules: self.routing.rules.clone(),
            translation_cache: self.routing.translation_cache,
        }
    }
}

/// The demo dataset: namespace `demo` with `trips` (many small appends) and
/// `zones` (a small dimension table). Created once, when `demo.trips` does not
/// exist yet in the first catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Whether to create the demo dataset on first start.
    ///
    /// _Default:_ `true`.
    pub enabled: bool,
    /// Rows in `demo.trips`.
    ///
    /// _Default:_ `1000000`.
    pub rows: u64,
    /// How many appends (and so snapshots) `demo.trips` is written in.
    ///
    /// _Default:_ `100`.
    pub appends: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: true,
            rows: 1_000_000,
            appends: 100,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// `plain` for people, `json` for log pipelines.
    ///
    /// _Default:_ `plain`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `floe=debug,info`; `RUST_LOG` wins
    /// when set.
    ///
    /// _Default:_ `info`.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            format: LogFormat::Plain,
            level: "info".to_owned(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// Why a configuration cannot be used: each line names the key and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ConfigError {
    /// One line per problem, `file: key: reason`.
    pub problems: Vec<String>,
}

impl FloeConfig {
    /// Reads a configuration file (or none, for the defaults), applies
    /// `FLOE_*` environment overrides, fills in defaults and validates.
    ///
    /// # Errors
    ///
    /// Every problem found, each on its own line with the key and a reason.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<FloeConfig, ConfigError> {
        let (origin, text) = match path {
            Some(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|e| ConfigError {
                    problems: vec![format!("{}: cannot read: {e}", path.display())],
                })?,
            ),
            None => ("defaults".to_owned(), String::new()),
        };
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            problems: vec![format!("{origin}: {}", one_line(&e.to_string()))],
        })?;
        apply_env(&mut table, env).map_err(|problems| ConfigError { problems })?;
        // Re-serialising keeps serde's messages (`unknown field`, `invalid type`)
        // and lets toml attach line numbers to them for the file's own keys.
        let merged = toml::to_string(&table).map_err(|e| ConfigError {
            problems: vec![format!("{origin}: {e}")],
        })?;
        let config: FloeConfig = toml::from_str(&merged).map_err(|e: toml::de::Error| {
            // Point at the line in the original file when the key came from it.
            let located = toml::from_str::<FloeConfig>(&text).err().unwrap_or(e);
            ConfigError {
                problems: vec![format!("{origin}: {}", one_line(&located.to_string()))],
            }
        })?;
        let config = config.with_defaults();
        let problems: Vec<String> = config
            .validate()
            .into_iter()
            .map(|p| format!("{origin}: {p}"))
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Fills in the catalog and engine a configuration without them gets.
    pub fn with_defaults(mut self) -> Self {
        if self.catalogs.is_empty() {
            self.catalogs
                .push(CatalogConfig::local("lake", &self.server.data_dir));
        }
        if self.engines.is_empty() {
            self.engines.push(EngineConfig {
                name: "local".to_owned(),
                ..EngineConfig::default()
            });
        }
        for engine in &mut self.engines {
            if engine.serves.is_empty() {
                engine.serves = self
                    .catalogs
                    .iter()
                    .map(|c| format!("{}.*", c.name))
                    .collect();
            }
        }
        self
    }

    /// Checks everything that can be checked before starting; returns one line
    /// per problem, naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.server.max_connections == 0 {
            problems.push("server.max_connections: must be at least 1".to_owned());
        }
        if self.listen.postgres.is_none()
            && self.listen.mysql.is_none()
            && self.listen.flight_sql.is_none()
        {
            problems.push("listen: at least one front end must listen".to_owned());
        }
        match (&self.postgres.tls_cert, &self.postgres.tls_key) {
            (Some(_), None) => {
                problems.push("postgres.tls_key: required with postgres.tls_cert".to_owned())
            }
            (None, Some(_)) => {
                problems.push("postgres.tls_cert: required with postgres.tls_key".to_owned())
            }
            _ => {}
        }
        if self.postgres.tls_required && self.postgres.tls_cert.is_none() {
            problems.push(
                "postgres.tls_required: needs postgres.tls_cert and postgres.tls_key".to_owned(),
            );
        }
        match (&self.mysql.tls_cert, &self.mysql.tls_key) {
            (Some(_), None) => {
                problems.push("mysql.tls_key: required with mysql.tls_cert".to_owned())
            }
            (None, Some(_)) => {
                problems.push("mysql.tls_cert: required with mysql.tls_key".to_owned())
            }
            _ => {}
        }
        if self.mysql.tls_required && self.mysql.tls_cert.is_none() {
            problems.push("mysql.tls_required: needs mysql.tls_cert and mysql.tls_key".to_owned());
        }
        match (&self.flight_sql.tls_cert, &self.flight_sql.tls_key) {
            (Some(_), None) => {
                problems.push("flight_sql.tls_key: required with flight_sql.tls_cert".to_owned())
            }
            (None, Some(_)) => {
                problems.push("flight_sql.tls_cert: required with flight_sql.tls_key".to_owned())
            }
            _ => {}
        }
        if self
            .flight_sql
            .dialect
            .parse::<floe_dialects::Dialect>()
            .is_err()
        {
            problems.push(format!(
                "flight_sql.dialect: `{}` is not a dialect (postgres, mysql, datafusion, duckdb, trino)",
                self.flight_sql.dialect
            ));
        }
        if self.flight_sql.ticket_ttl.is_zero() || self.flight_sql.token_ttl.is_zero() {
            problems.push("flight_sql.ticket_ttl, token_ttl: must be longer than 0s".to_owned());
        }
        if self.maintenance.interval.is_zero() {
            problems.push("maintenance.interval: must be longer than 0s".to_owned());
        }
        if self.maintenance.concurrency == 0 {
            problems.push("maintenance.concurrency: must be at least 1".to_owned());
        }
        let telemetry = &self.maintenance.telemetry;
        if telemetry.channel == 0
            || telemetry.half_life.is_zero()
            || telemetry.flush_interval.is_zero()
        {
            problems.push(
                "maintenance.telemetry: channel, half_life and flush_interval must be above 0"
                    .to_owned(),
            );
        }
        let mut scopes = BTreeSet::new();
        for (i, p) in self.policies.iter().enumerate() {
            let key = format!("policies[{i}]");
            problems.extend(policy::validate(p, &key));
            if !scopes.insert(p.scope.as_str()) {
                problems.push(format!(
                    "{key}.scope: `{}` has another policy; merge them",
                    p.scope
                ));
            }
            let catalog = p.scope.split('.').next().unwrap_or_default();
            if !self.catalogs.is_empty() && !self.catalogs.iter().any(|c| c.name == catalog) {
                problems.push(format!("{key}.scope: no catalog is named `{catalog}`"));
            }
        }
        let mut names = BTreeSet::new();
        for user in &self.users {
            if !names.insert(user.name.as_str()) {
                problems.push(format!("users.name: `{}` is listed twice", user.name));
            }
            match (&user.password_env, &user.password) {
                (Some(var), None) => {
                    if std::env::var_os(var).is_none() {
                        problems.push(format!(
                            "users.password_env: user `{}` reads its password from `{var}`, which is not set",
                            user.name
                        ));
                    }
                }
                (None, Some(_)) => {}
                (Some(_), Some(_)) => problems.push(format!(
                    "users: user `{}` sets both password and password_env; keep one",
                    user.name
                )),
                (None, None) => {
                    if self.postgres.auth_method != AuthMethod::Trust {
                        problems.push(format!(
                            "users.password_env: user `{}` has no password (set password_env)",
                            user.name
                        ))
                    }
                }
            }
        }
        let mut catalog_names = BTreeSet::new();
        for catalog in &self.catalogs {
            if !catalog_names.insert(catalog.name.as_str()) {
                problems.push(format!("catalogs.name: `{}` is listed twice", catalog.name));
            }
            problems.extend(catalog.problems());
        }
        let mut engine_names = BTreeSet::new();
        for engine in &self.engines {
            let name = &engine.name;
            if name.is_empty() {
                problems.push("engines.name: every engine needs a name".to_owned());
            }
            if !engine_names.insert(name.as_str()) {
                problems.push(format!("engines.name: `{name}` is listed twice"));
            }
            match (engine.kind, &engine.url) {
                (EngineKind::Datafusion, Some(_)) => problems.push(format!(
                    "engines.url: engine `{name}` is the embedded datafusion engine and takes no url"
                )),
                (EngineKind::Datafusion, None) => {}
                (_, None) => problems.push(format!(
                    "engines.url: engine `{name}` needs the server's url"
                )),
                (_, Some(_)) => {}
            }
            if let Some(var) = &engine.password_env
                && std::env::var_os(var).is_none()
            {
                problems.push(format!(
                    "engines.password_env: engine `{name}` reads its password from `{var}`, which is not set"
                ));
            }
            if let Some(dialect) = &engine.dialect
                && (engine.kind != EngineKind::Flightsql
                    || dialect.parse::<floe_dialects::Dialect>().is_err())
            {
                problems.push(format!(
                    "engines.dialect: engine `{name}`: only flightsql engines take a dialect, one of postgres, mysql, datafusion, duckdb, trino"
                ));
            }
            if engine.weight <= 0.0 || engine.weight.is_nan() {
                problems.push(format!("engines.weight: engine `{name}`: must be above 0"));
            }
            if engine.max_connections == 0 {
                problems.push(format!(
                    "engines.max_connections: engine `{name}`: must be at least 1"
                ));
            }
            if engine.probe_interval.is_zero() {
                problems.push(format!(
                    "engines.probe_interval: engine `{name}`: must be longer than 0s"
                ));
            }
            for pattern in &engine.serves {
                let catalog = pattern.split('.').next().unwrap_or_default();
                if !catalog_names.contains(catalog) && !catalog.contains(['*', '?', '[']) {
                    problems.push(format!(
                        "engines.serves: engine `{name}` serves `{pattern}`, but no catalog is named `{catalog}`"
                    ));
                }
                if glob::Pattern::new(pattern).is_err() {
                    problems.push(format!(
                        "engines.serves: engine `{name}`: `{pattern}` is not a glob pattern"
                    ));
                }
            }
        }
        if self
            .engines
            .iter()
            .filter(|e| e.kind == EngineKind::Datafusion)
            .count()
            > 1
        {
            problems.push("engines.type: at most one embedded datafusion engine".to_owned());
        }
        if !(0.0..=1.0).contains(&self.routing.exploration) {
            problems.push("routing.exploration: must be between 0 and 1".to_owned());
        }
        for (index, rule) in self.routing.rules.iter().enumerate() {
            let label = rule
                .name
                .clone()
                .unwrap_or_else(|| format!("#{}", index + 1));
            for engine in rule.engines.iter().chain(&rule.exclude) {
                if !engine_names.contains(engine.as_str()) {
                    problems.push(format!(
                        "routing.rules: rule {label} names engine `{engine}`, which is not configured"
                    ));
                }
            }
            if let Some(regex) = &rule.regex
                && let Err(e) = regex::Regex::new(regex)
            {
                problems.push(format!("routing.rules.regex: rule {label}: {e}"));
            }
        }
        if self.demo.enabled
            && (self.demo.appends == 0 || self.demo.appends > self.demo.rows.max(1))
        {
            problems.push("demo.appends: must be between 1 and demo.rows".to_owned());
        }
        problems
    }
}

/// Applies `FLOE_<SECTION>_<KEY>=value` overrides for the sections in
/// [`ENV_SECTIONS`]; other `FLOE_*` variables (passwords, `FLOE_CONFIG`) are
/// left alone. Values are read as TOML when they parse (`1000`, `true`) and as
/// strings otherwise.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("FLOE_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = rest.split_once('_') else {
            continue;
        };
        if !ENV_SECTIONS.contains(&section) {
            continue;
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        match table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(section_table) => {
                section_table.insert(key.to_owned(), parsed);
            }
            _ => problems.push(format!("{name}: `{section}` is not a section")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// toml's messages span several lines with a source excerpt; a config error
/// is reported on one line.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^' || c == ' ')
        })
        .collect();
    lines.join(": ").replace("TOML parse error at ", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<FloeConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("floe.toml");
        std::fs::write(&path, text).expect("write config");
        FloeConfig::load(
            Some(&path),
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn no_file_gives_the_embedded_defaults() {
        let config = FloeConfig::load(None, []).expect("defaults are valid");
        assert_eq!(
            config.listen.postgres,
            Some("127.0.0.1:15432".parse().expect("addr"))
        );
        assert_eq!(
            config.listen.admin,
            Some("127.0.0.1:18080".parse().expect("addr"))
        );
        assert_eq!(config.catalogs[0].name, "lake");
        assert_eq!(config.engines[0].serves, vec!["lake.*".to_owned()]);
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let err = load_str(
            "[listen]\npostgres = \"127.0.0.1:1\"\npostgress = \"x\"\n",
            &[],
        )
        .expect_err("typo must fail");
        let text = err.to_string();
        assert!(text.contains("postgress"), "{text}");
        assert!(text.contains("line 3"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let err =
            load_str("[server]\nshutdown_timeout = \"soon\"\n", &[]).expect_err("bad duration");
        assert!(err.to_string().contains("shutdown_timeout"), "{err}");
    }

    #[test]
    fn a_listener_is_turned_off_with_off_and_a_left_out_key_keeps_its_default() {
        let config = load_str(
            "[listen]\nmysql = \"off\"\nflight_sql = \"OFF\"\n",
            &[("FLOE_LISTEN_ADMIN", "off")],
        )
        .expect("valid");
        assert_eq!(config.listen.mysql, None);
        assert_eq!(config.listen.flight_sql, None);
        assert_eq!(config.listen.admin, None);
        assert_eq!(
            config.listen.postgres,
            Some("127.0.0.1:15432".parse().expect("addr"))
        );
        let text = toml::to_string(&config.listen).expect("serializes");
        assert!(text.contains("mysql = \"off\""), "{text}");
        let err = load_str("[listen]\nmysql = \"localhost:3306\"\n", &[])
            .expect_err("a host name is not an address");
        let err = err.to_string();
        assert!(err.contains("mysql") && err.contains("\"off\""), "{err}");
        let err = load_str(
            "[listen]\npostgres = \"off\"\nmysql = \"off\"\nflight_sql = \"off\"\n",
            &[],
        )
        .expect_err("nothing listens");
        assert!(err.to_string().contains("at least one front end"), "{err}");
    }

    #[test]
    fn env_overrides_the_file() {
        let config = load_str(
            "[server]\nmax_connections = 5\n",
            &[
                ("FLOE_SERVER_MAX_CONNECTIONS", "7"),
                ("FLOE_LISTEN_ADMIN", "127.0.0.1:0"),
            ],
        )
        .expect("valid");
        assert_eq!(config.server.max_connections, 7);
        assert_eq!(
            config.listen.admin,
            Some("127.0.0.1:0".parse().expect("addr"))
        );
    }

    #[test]
    fn maintenance_and_policies_parse_and_validate() {
        let config = load_str(
            r#"
[maintenance]
mode = "scheduled"
max_bytes_per_hour = "10GiB"
[maintenance.telemetry]
half_life = "1h"

[[policies]]
scope = "lake.demo"
schedule = "0 2 * * *"
timezone = "Europe/Paris"
window = "01:00-05:00"
expire = { older_than = "5d", retain_last = 10 }
compact = { strategy = "sort", target_file_size = "512MiB" }
triggers = { small_file_share = 0.4, hotness = 2.0 }
properties = { "write.parquet.compression-codec" = "zstd" }
enforce = "correct"
"#,
            &[("FLOE_MAINTENANCE_MODE", "adaptive")],
        )
        .expect("valid");
        assert_eq!(
            config.maintenance.mode,
            Mode::Adaptive,
            "the environment wins"
        );
        assert_eq!(config.maintenance.max_bytes_per_hour, Some(Bytes(10 << 30)));
        assert_eq!(
            config.maintenance.telemetry.half_life,
            Duration::from_secs(3600)
        );
        let policy = &config.policies[0];
        assert_eq!(policy.compact.target_file_size, Some(Bytes(512 << 20)));
        assert_eq!(policy.expire.retain_last, Some(10));

        let err = load_str(
            r#"
[[policies]]
scope = "elsewhere.demo"
schedule = "at dawn"
timezone = "Mars/Olympus"
[[policies]]
scope = "lake"
window = "9-5"
[[policies]]
scope = "lake"
"#,
            &[],
        )
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "policies[0].scope: no catalog is named `elsewhere`",
            "policies[0].schedule",
            "policies[0].timezone",
            "policies[1].window",
            "policies[2].scope: `lake` has another policy",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
        let err = load_str(
            "[[policies]]\nscope = \"lake\"\ncompact = { colour = 1 }\n",
            &[],
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn env_override_with_unknown_key_is_rejected() {
        let err = load_str("", &[("FLOE_SERVER_MAX_CONECTIONS", "7")]).expect_err("typo");
        assert!(err.to_string().contains("max_conections"), "{err}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let err = load_str(
            "[server]\nmax_connections = 0\n[postgres]\ntls_cert = \"c.pem\"\n[[users]]\nname = \"a\"\npassword = \"x\"\n[[users]]\nname = \"a\"\npassword = \"x\"\n",
            &[],
        )
        .expect_err("invalid");
        assert_eq!(err.problems.len(), 3, "{err}");
    }

    #[test]
    fn user_without_password_source_is_rejected() {
        let err = load_str(
            "[[users]]\nname = \"app\"\npassword_env = \"FLOE_TEST_SURELY_UNSET\"\n",
            &[],
        )
        .expect_err("unset env");
        assert!(err.to_string().contains("FLOE_TEST_SURELY_UNSET"), "{err}");
    }
}
