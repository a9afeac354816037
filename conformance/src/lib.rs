//! The harness that runs the real `floe` binary for end-to-end tests and
//! benchmarks, and the suites that drive it with real clients.
//!
//! [`Daemon::start`] gives each daemon its own temporary directory (config,
//! data, log), binds every listener to port 0 and waits for the ready file the
//! daemon writes once it serves, so no test guesses a port or sleeps. Dropping
//! the handle kills the process; when the test is failing, the daemon's log is
//! printed first.
//!
//! ```no_run
//! # async fn run() {
//! use floe_conformance::{Daemon, DaemonOptions};
//!
//! let daemon = Daemon::start(DaemonOptions::new(env!("CARGO_MANIFEST_DIR")));
//! let client = daemon.connect().await;
//! let row = client.query_one("SELECT 1 + 1", &[]).await.expect("query");
//! assert_eq!(row.get::<_, i64>(0), 2);
//! # }
//! ```
#![deny(missing_docs)]

pub mod moto;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The test venv's Python (`bash scripts/test` creates the venv with every
/// Python package the tests drive and names its Python in `FLOE_PYTHON`).
///
/// # Panics
///
/// When `FLOE_PYTHON` is unset: the tests were not started by `scripts/test`.
pub fn python() -> String {
    std::env::var("FLOE_PYTHON").unwrap_or_else(|_| {
        panic!("FLOE_PYTHON is not set: run the tests with `bash scripts/test`, which creates the Python venv the tests need")
    })
}

/// A loopback port free right now, for a helper server the test starts.
///
/// # Panics
///
/// When no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits until something accepts connections on loopback `port`.
///
/// # Panics
///
/// When nothing listens within 30 s; `what` names it in the message.
pub async fn wait_for_port(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not listen on {port} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The `floe` executable.
    pub bin: PathBuf,
    /// Extra TOML appended to the generated configuration.
    pub extra_config: String,
    /// Rows of demo data; `None` disables the demo dataset (fast start).
    pub demo_rows: Option<u64>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// How long start-up may take.
    pub start_timeout: Duration,
    /// The data directory; default a fresh one in the daemon's temp dir. Set
    /// it to an earlier daemon's to restart on its catalog and state.
    pub data_dir: Option<PathBuf>,
}

impl DaemonOptions {
    /// Options with no demo data, for the binary at `bin`.
    ///
    /// `bin` may be a directory of a workspace member; the binary is then
    /// looked up with [`floe_bin`].
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let bin = bin.into();
        DaemonOptions {
            bin: if bin.is_dir() { floe_bin() } else { bin },
            extra_config: String::new(),
            demo_rows: None,
            env: Vec::new(),
            start_timeout: Duration::from_secs(300),
            data_dir: None,
        }
    }

    /// Adds configuration TOML.
    pub fn config(mut self, toml: &str) -> Self {
        self.extra_config.push_str(toml);
        self.extra_config.push('\n');
        self
    }

    /// Enables the demo dataset with this many trips.
    pub fn demo(mut self, rows: u64) -> Self {
        self.demo_rows = Some(rows);
        self
    }

    /// Uses `dir` as the data directory (catalog, warehouse, state store).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Sets an environment variable for the daemon.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// The `floe` binary of the current build: `FLOE_BIN` if set, otherwise the
/// `floe` beside the running test executable's `deps/` directory.
pub fn floe_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FLOE_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in <target>/<profile>/deps");
    let bin = profile_dir.join(format!("floe{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: build it with `cargo build -p floe-proxy` or set FLOE_BIN",
        bin.display()
    );
    bin
}

/// A running `floe serve`.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// Held so that the daemon exits when this process does, even if `Drop`
    /// never runs (a daemon shared by a whole test binary).
    _stdin: ChildStdin,
    dir: tempfile::TempDir,
    /// The PostgreSQL listener.
    pub postgres: SocketAddr,
    /// The MySQL listener, if the configuration enables it.
    pub mysql: Option<SocketAddr>,
    /// The Arrow Flight SQL listener, if the configuration enables it.
    pub flight_sql: Option<SocketAddr>,
    /// The admin HTTP listener.
    pub admin: SocketAddr,
    command_line: String,
}

impl Daemon {
    /// Starts a daemon and waits until it serves.
    ///
    /// # Panics
    ///
    /// When it exits or does not become ready in time; the message holds its log.
    pub fn start(options: DaemonOptions) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let demo = match options.demo_rows {
            Some(rows) => format!(
                "[demo]\nenabled = true\nrows = {rows}\nappends = {}\n",
                (rows / 10_000).clamp(1, 100)
            ),
            None => "[demo]\nenabled = false\n".to_owned(),
        };
        let mut config = format!(
            "[server]\ndata_dir = {data_dir:?}\nshutdown_timeout = \"10s\"\n\n{demo}\n{}",
            options.extra_config
        );
        if !config.contains("[listen]") {
            config.push_str(
                "\n[listen]\npostgres = \"127.0.0.1:0\"\nmysql = \"127.0.0.1:0\"\nflight_sql = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n",
            );
        }
        let config_path = dir.path().join("floe.toml");
        std::fs::write(&config_path, config).expect("write config");
        let ready_path = dir.path().join("ready.json");
        let log_path = dir.path().join("floe.log");
        let log = std::fs::File::create(&log_path).expect("create log");
        let mut command = Command::new(&options.bin);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready_path)
            .arg("--exit-on-stdin-eof")
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env_remove("FLOE_CONFIG")
            .env_remove("FLOE_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let command_line = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command_line}: {e}"));
        let stdin = child.stdin.take().expect("stdin is piped");
        let deadline = Instant::now() + options.start_timeout;
        let ready = loop {
            if let Ok(text) = std::fs::read_to_string(&ready_path) {
                break serde_json::from_str::<serde_json::Value>(&text)
                    .expect("ready file is JSON");
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "floe exited with {status} before becoming ready\ncommand: {command_line}\nlog:\n{}",
                    read(&log_path)
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "floe did not become ready in time\ncommand: {command_line}\nlog:\n{}",
                    read(&log_path)
                );
            }
            poll_pause();
        };
        let addr = |key: &str| -> SocketAddr {
            ready[key]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("ready file has no {key} address: {ready}"))
        };
        Daemon {
            postgres: addr("postgres"),
            mysql: ready["mysql"].as_str().and_then(|s| s.parse().ok()),
            flight_sql: ready["flight_sql"].as_str().and_then(|s| s.parse().ok()),
            admin: addr("admin"),
            child,
            _stdin: stdin,
            dir,
            command_line,
        }
    }

    /// The daemon's temporary directory (config, data, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon has logged so far.
    pub fn log(&self) -> String {
        read(&self.dir.path().join("floe.log"))
    }

    /// A libpq connection string for `user` (no password).
    pub fn pg_config(&self, user: &str) -> String {
        format!(
            "host={} port={} user={user} dbname=floe",
            self.postgres.ip(),
            self.postgres.port()
        )
    }

    /// A `postgresql://` URL for `user`.
    pub fn pg_url(&self, user: &str) -> String {
        format!("postgresql://{user}@{}/floe", self.postgres)
    }

    /// A tokio-postgres client as user `floe`, its connection driven on a task.
    pub async fn connect(&self) -> tokio_postgres::Client {
        self.try_connect(&self.pg_config("floe"))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to floe: {e}\nlog:\n{}", self.log()))
    }

    /// Connects with a libpq-style configuration string.
    ///
    /// # Errors
    ///
    /// The connection error, for tests that expect one.
    pub async fn try_connect(
        &self,
        config: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(config, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The value of one series in `/metrics` (its name with labels, as
    /// printed), 0 when it has not been recorded yet.
    ///
    /// # Panics
    ///
    /// When `/metrics` does not answer 200.
    pub fn metric(&self, series: &str) -> f64 {
        let (status, metrics) = self.admin_get("/metrics");
        assert_eq!(status, 200, "{metrics}");
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The status and body of `GET path` on the admin listener.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        self.admin_request("GET", path)
    }

    /// The status and body of an empty `POST path` on the admin listener.
    pub fn admin_post(&self, path: &str) -> (u16, String) {
        self.admin_request("POST", path)
    }

    /// The status and body of `method path` with a JSON `body`.
    pub fn admin_send(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.admin_request_with(method, path, body)
    }

    /// One plain HTTP/1.0 request to the admin listener.
    fn admin_request(&self, method: &str, path: &str) -> (u16, String) {
        self.admin_request_with(method, path, "")
    }

    fn admin_request_with(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(self.admin).expect("admin listener answers");
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            poll_pause();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- floe log ({}) ---\n{}\n--- end of floe log ---",
                self.command_line,
                self.log()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pause between two checks of a condition polled with a deadline.
#[allow(clippy::disallowed_methods)] // polling with a deadline, not synchronising by sleep
fn poll_pause() {
    std::thread::sleep(Duration::from_millis(20));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The rows of a simple-protocol answer as text (`None` for NULL).
pub fn text_rows(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}
