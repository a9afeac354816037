//! The admin HTTP listener: Prometheus metrics, health and readiness probes,
//! and the JSON API.
//!
//! | path | answers |
//! |---|---|
//! | `GET /metrics` | every metric in Prometheus text format |
//! | `GET /healthz` | `200 ok` while the process serves HTTP at all |
//! | `GET /readyz` | `200 ready` once every front end listens and the demo data exists; `503` before that and while draining |
//! | `GET /api/tables` | the inventory: every table with its snapshot and file counts |
//! | `GET /api/engines` | every engine: health, load, latency, last error |
//! | `GET /api/route?sql=...&dialect=postgres&user=&protocol=&schema=&tag=&strategy=` | what `EXPLAIN ROUTE` says of a statement, as JSON |
//! | `POST /api/reload` | re-reads the configuration and applies engines and routing (as SIGHUP) |
//! | `GET /api/telemetry` | every queried table, hottest first: decayed queries, latency, bytes scanned, predicate columns |
//! | `GET /api/telemetry/events?table=&since_ms=&limit=` | recent raw query events (shapes, never constants) |
//! | `GET /api/maintenance/plan` | what the scheduler would do now, table by table, with scores and reasons |
//! | `POST /api/maintenance/run` | one scheduler pass now; answers the jobs it ran |
//! | `GET /api/policies[?table=]` | every policy with its origin, or one table's effective policy with each setting's source |
//! | `PUT /api/policies` | sets the API policy of a scope (JSON body), persisted |
//! | `DELETE /api/policies?scope=` | removes the API policy of a scope |

mod maintenance;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Catalogs by configured name.
pub type NamedCatalogs = Vec<(String, Arc<dyn iceberg::Catalog>)>;

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// Set once the daemon serves clients.
    pub ready: Arc<AtomicBool>,
    /// Cancelled when shutdown begins.
    pub shutdown: CancellationToken,
    /// The catalogs, by configured name, for the inventory.
    pub catalogs: Arc<std::sync::RwLock<NamedCatalogs>>,
    /// The router and the reloader, once built (the admin API starts first).
    pub routing: Arc<std::sync::RwLock<Option<AdminRouting>>>,
    /// The maintenance engine, once built.
    pub maintenance: Arc<std::sync::RwLock<Option<AdminMaintenance>>>,
}

pub use maintenance::AdminMaintenance;

/// What the routing endpoints need.
#[derive(Clone)]
pub struct AdminRouting {
    /// The router.
    pub router: Arc<floe_router::Router>,
    /// Applies configuration reloads; `None` when the daemon cannot reload.
    pub reloader: Option<Arc<crate::engines::Reloader>>,
}

/// Serves the admin API on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: AdminState) {
    let shutdown = state.shutdown.clone();
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/tables", get(tables))
        .route("/api/engines", get(engines))
        .route("/api/route", get(route))
        .route("/api/reload", axum::routing::post(reload))
        .route("/api/telemetry", get(maintenance::telemetry))
        .route("/api/telemetry/events", get(maintenance::events))
        .route("/api/maintenance/plan", get(maintenance::plan))
        .route(
            "/api/maintenance/run",
            axum::routing::post(maintenance::run),
        )
        .route(
            "/api/policies",
            get(maintenance::policies)
                .put(maintenance::put_policy)
                .delete(maintenance::delete_policy),
        )
        .with_state(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn metrics(State(state): State<AdminState>) -> String {
    state.prometheus.render()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

#[derive(Serialize)]
struct CatalogTables {
    catalog: String,
    tables: Vec<floe_maintenance::inventory::TableSignals>,
}

async fn tables(State(state): State<AdminState>) -> Response {
    let catalogs = match state.catalogs.read() {
        Ok(catalogs) => catalogs.clone(),
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "catalog list poisoned\n").into_response();
        }
    };
    let mut out = Vec::with_capacity(catalogs.len());
    for (name, catalog) in catalogs {
        match floe_maintenance::inventory::inventory(catalog.as_ref()).await {
            Ok(tables) => out.push(CatalogTables {
                catalog: name,
                tables,
            }),
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("catalog {name}: {e}\n")).into_response();
            }
        }
    }
    Json(out).into_response()
}

/// The router once the daemon has built it.
fn routing(state: &AdminState) -> Option<AdminRouting> {
    state.routing.read().ok().and_then(|r| r.clone())
}

fn starting() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
}

#[derive(Serialize)]
struct EngineStatus {
    name: String,
    dialect: &'static str,
    health: floe_router::routing::HealthState,
    last_error: Option<String>,
    outstanding: usize,
    queued: usize,
    max_concurrency: usize,
    latency_ms: Option<f64>,
    statements_measured: u64,
    serves: Vec<String>,
    writes: bool,
}

async fn engines(State(state): State<AdminState>) -> Response {
    let Some(routing) = routing(&state) else {
        return starting();
    };
    let list: Vec<EngineStatus> = routing
        .router
        .engines()
        .iter()
        .map(|e| {
            let overall = e.latency.overall();
            EngineStatus {
                name: e.engine.name().to_owned(),
                dialect: e.engine.dialect().as_str(),
                health: e.health.state(),
                last_error: e.health.last_error(),
                outstanding: e.load.outstanding(),
                queued: e.load.queued(),
                max_concurrency: e.load.max_concurrency(),
                latency_ms: overall.map(|o| o.seconds * 1000.0),
                statements_measured: overall.map_or(0, |o| o.samples),
                serves: e.spec.serves.clone(),
                writes: e.spec.writes,
            }
        })
        .collect();
    Json(list).into_response()
}

#[derive(serde::Deserialize)]
struct RouteQuery {
    sql: String,
    #[serde(default)]
    dialect: Option<String>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    strategy: Option<String>,
}

async fn route(
    State(state): State<AdminState>,
    axum::extract::Query(query): axum::extract::Query<RouteQuery>,
) -> Response {
    let Some(routing) = routing(&state) else {
        return starting();
    };
    let bad = |message: String| (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
    let dialect = match query.dialect.as_deref().unwrap_or("postgres").parse() {
        Ok(d) => d,
        Err(e) => return bad(format!("dialect: {e}")),
    };
    let strategy = match query
        .strategy
        .as_deref()
        .map(str::parse::<floe_router::Strategy>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return bad(e.to_string()),
    };
    let analysis = match floe_dialects::analyze_statement(&query.sql, dialect) {
        Ok(a) => a,
        Err(e) => return bad(e.to_string()),
    };
    let ctx = floe_router::RouteContext {
        user: &query.user,
        protocol: query.protocol.as_deref().unwrap_or("postgres"),
        schema: query.schema.as_deref(),
        tag: query.tag.as_deref(),
        strategy,
        engine: None,
        settings: &[],
    };
    match routing.router.explain(&ctx, &analysis) {
        Ok(explanation) => Json(explanation).into_response(),
        Err(e) => bad(e.to_string()),
    }
}

async fn reload(State(state): State<AdminState>) -> Response {
    let Some(routing) = routing(&state) else {
        return starting();
    };
    let Some(reloader) = routing.reloader else {
        return (
            StatusCode::NOT_IMPLEMENTED,
            "this daemon cannot reload its configuration\n",
        )
            .into_response();
    };
    match reloader.reload().await {
        Ok(summary) => (StatusCode::OK, format!("reloaded: {summary}\n")).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("reload failed, the running configuration stays: {e:#}\n"),
        )
            .into_response(),
    }
}
