//! Failover under load: a PostgreSQL instance of the test's own (initdb and
//! pg_ctl on a temporary directory and a free port; the shared server is never
//! touched) is one of two engines serving the same table. Sixteen clients read
//! through Floe while the instance is killed with SIGKILL and restarted: no
//! read fails, the engine goes Down within its probe interval, comes back
//! Healthy and gets traffic again; a write is never retried elsewhere.
//! And with that instance as the only engine: a restart behind the pooled
//! pass-through connections it closed is no client's error.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use floe_conformance::{Daemon, eventually};

use crate::routing::postgres_direct;
use crate::{plain_daemon, text_rows};

/// A throwaway PostgreSQL server.
struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(|v| v.ok().map(|v| v.path().join("bin")))
                    .filter(|b| b.join("initdb").exists())
                    .max()
            })
            .expect("PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = OwnPostgres { dir, bin, port };
        // initdb refuses to run as root: the server runs as `postgres` then.
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the data directory to postgres");
        }
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        server.start_server();
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `tool` of this PostgreSQL, run as `postgres` when the test runs as root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn start_server(&self) {
        // After a SIGKILL the lock files stay; every process that held them is gone.
        let _ = std::fs::remove_file(self.dir.path().join("data/postmaster.pid"));
        let _ = std::fs::remove_file(self.dir.path().join(format!(".s.PGSQL.{}.lock", self.port)));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// A clean restart: the server ends every connection (telling each
    /// client why) before it stops.
    fn restart(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        self.start_server();
    }

    fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// SIGKILL to the postmaster and every process it started.
    fn kill(&self) {
        let pid_file = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .expect("postmaster.pid");
        let pid: u32 = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("postmaster pid");
        let mut victims = vec![pid];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                // The parent pid is the second field after the command's `)`.
                let parent = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if parent == Some(pid) {
                    victims.push(child);
                }
            }
        }
        for victim in victims {
            let _ = Command::new("kill")
                .args(["-KILL", &victim.to_string()])
                .status();
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.as_str(), "-m", "immediate", "stop"])
            .output();
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const SETUP: &[&str] = &[
    "DROP TABLE IF EXISTS public.route_kill, public.route_kill_w",
    "CREATE TABLE public.route_kill (id INT)",
    "INSERT INTO public.route_kill SELECT generate_series(1, 100)",
    "CREATE TABLE public.route_kill_w (id BIGINT)",
];

async fn setup(conninfo: &str) {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{conninfo}: {e}"));
    tokio::spawn(connection);
    for sql in SETUP {
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn engine_field(daemon: &Daemon, engine: &str, field: &str) -> serde_json::Value {
    let (status, body) = daemon.admin_get("/api/engines");
    assert_eq!(status, 200, "{body}");
    let engines: serde_json::Value = serde_json::from_str(&body).expect("engines JSON");
    engines
        .as_array()
        .and_then(|list| list.iter().find(|e| e["name"] == engine))
        .map(|e| e[field].clone())
        .unwrap_or(serde_json::Value::Null)
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

const PROBE_INTERVAL: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_engine_mid_run_loses_no_read_and_retries_no_write() {
    let own = OwnPostgres::start();
    setup(&own.conninfo()).await;
    let shared_conninfo = std::env::var("FLOE_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned());
    setup(&shared_conninfo).await;
    let daemon = plain_daemon(&format!(
        r#"
[[engines]]
name = "own"
type = "postgres"
url = "{}"
probe_interval = "500ms"
connect_timeout = "1s"

[[engines]]
name = "shared"
type = "postgres"
url = "{shared_conninfo}"
probe_interval = "500ms"

[routing]
strategy = "throughput"

[[routing.rules]]
name = "pinned"
tag = "own"
engines = ["own"]
"#,
        own.conninfo()
    ));

    let stop = Arc::new(AtomicBool::new(false));
    // A failing assertion must stop the client tasks too.
    let _stop_on_exit = StopOnDrop(Arc::clone(&stop));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..16 {
        let client = daemon.connect().await;
        let stop = Arc::clone(&stop);
        let reads = Arc::clone(&reads);
        readers.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client
                    .simple_query("SELECT count(*) FROM public.route_kill")
                    .await
                {
                    Ok(messages) => {
                        let rows = text_rows(&messages);
                        assert_eq!(rows[0][0].as_deref(), Some("100"));
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.push(format!("{e:?}"));
                        if errors.len() > 20 {
                            break;
                        }
                    }
                }
            }
            errors
        }));
    }
    // A writer whose statements go to either engine: a failed one must not
    // have been run again on the other.
    let writer = {
        let client = daemon.connect().await;
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut id = 0i64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                if let Err(e) = client
                    .simple_query(&format!("INSERT INTO public.route_kill_w VALUES ({id})"))
                    .await
                {
                    failed.push((id, e.code().map(|c| c.code().to_owned())));
                    if failed.len() > 20 {
                        break;
                    }
                }
            }
            failed
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        engine_field(&daemon, "own", "statements_measured").as_u64() > Some(0),
        "own served reads before the kill"
    );
    own.kill();
    let killed = Instant::now();
    let down = eventually(Duration::from_secs(10), || async {
        engine_field(&daemon, "own", "health") == "down"
    })
    .await;
    let took = killed.elapsed();
    assert!(down, "own never went down");
    assert!(
        took <= PROBE_INTERVAL * 2 + Duration::from_millis(500),
        "own went down after {took:?}, more than its probe interval allows"
    );

    // A write pinned to the dead engine fails with a connection-failure SQLSTATE.
    let pinned = daemon.connect().await;
    pinned
        .batch_execute("SET floe.tag = 'own'")
        .await
        .expect("tag");
    let error = pinned
        .batch_execute("INSERT INTO public.route_kill_w VALUES (-1)")
        .await
        .expect_err("the only engine for it is down");
    assert_eq!(error.code().map(|c| c.code()), Some("08006"), "{error}");
    let message = error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(message.contains("engine own unavailable"), "{message}");

    tokio::time::sleep(Duration::from_secs(1)).await;
    own.start_server();
    let healthy = eventually(Duration::from_secs(15), || async {
        engine_field(&daemon, "own", "health") == "healthy"
    })
    .await;
    assert!(healthy, "own never came back healthy");
    let before = engine_field(&daemon, "own", "statements_measured").as_u64();
    let traffic = eventually(Duration::from_secs(10), || async {
        engine_field(&daemon, "own", "statements_measured").as_u64() > before
    })
    .await;
    assert!(traffic, "own got no traffic after it recovered");

    stop.store(true, Ordering::Relaxed);
    let mut read_errors = Vec::new();
    for reader in readers {
        read_errors.extend(reader.await.expect("reader task"));
    }
    assert!(read_errors.is_empty(), "reads failed: {read_errors:?}");
    assert!(reads.load(Ordering::Relaxed) > 100, "the readers ran");
    let failed = writer.await.expect("writer task");
    let shared = postgres_direct().await;
    for (id, code) in &failed {
        assert_eq!(
            code.as_deref(),
            Some("08006"),
            "write {id} failed: {code:?}"
        );
        let rows = text_rows(
            &shared
                .simple_query(&format!(
                    "SELECT count(*) FROM public.route_kill_w WHERE id = {id}"
                ))
                .await
                .expect("count on shared"),
        );
        assert_eq!(
            rows[0][0].as_deref(),
            Some("0"),
            "write {id} failed on own and was silently run on shared"
        );
    }
    let log = daemon.log();
    assert!(
        log.contains("engine health changed"),
        "transitions are logged"
    );
}

/// The PostgreSQL pass-through keeps idle connections of its own (no task
/// watches them); after the server restarts, each is closed. A statement
/// must never be sent on one of them and fail for it: the client sees its
/// rows as if nothing happened, however many idle connections the pool held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_behind_idle_pass_through_connections_costs_no_statement() {
    let own = OwnPostgres::start();
    setup(&own.conninfo()).await;
    let daemon = plain_daemon(&format!(
        r#"
[[engines]]
name = "own"
type = "postgres"
url = "{}"
connect_timeout = "2s"
"#,
        own.conninfo()
    ));
    // Four clients at once leave up to four connections idle in each pool:
    // the pass-through's (simple queries, text rows) and the converting
    // path's (binary rows through tokio-postgres).
    let clients = futures::future::join_all((0..4).map(|_| daemon.connect())).await;
    read_on_each(&clients).await;

    own.restart();
    // Each read after the restart finds the pools' connections closed.
    for _ in 0..3 {
        read_on_each(&clients).await;
    }
}

/// A simple and an extended-protocol count on each client, all at once.
async fn read_on_each(clients: &[tokio_postgres::Client]) {
    let count = "SELECT count(*) FROM public.route_kill";
    let simple = futures::future::join_all(clients.iter().map(|c| c.simple_query(count)));
    let binary = futures::future::join_all(clients.iter().map(|c| c.query_one(count, &[])));
    let (simple, binary) = futures::future::join(simple, binary).await;
    for result in simple {
        let rows = text_rows(&result.expect("a simple query"));
        assert_eq!(rows[0][0].as_deref(), Some("100"));
    }
    for result in binary {
        let n: i64 = result.expect("an extended query").get(0);
        assert_eq!(n, 100);
    }
}
