//! `floe-bench`: reproducible benchmarks that compare Floe with its peers in one
//! run and print each figure with Floe's ratio to the others.
//!
//! `floe-bench pg` measures the PostgreSQL wire path: 1-client `SELECT 1`
//! latency (p50/p99) and pgbench throughput with a `SELECT 1` script (1 and 8
//! clients, simple and extended protocol) against Floe's embedded engine, the
//! local PostgreSQL directly, and pgbouncer in front of that PostgreSQL
//! (started here on a private port). Build Floe in release first:
//!
//! ```sh
//! cargo build --release -p floe-proxy -p floe-benchmarks
//! target/release/floe-bench pg --floe target/release/floe
//! ```
//!
//! `floe-bench frontends` measures the three front ends on one large result
//! (10 M rows by default) against DataFusion collecting the same query in
//! process, and 1-client `SELECT 1` latency through Floe's MySQL front end
//! against the local MariaDB directly:
//!
//! ```sh
//! target/release/floe-bench frontends --floe target/release/floe
//! ```
//!
//! `floe-bench dialects` times Floe's `translate` against sqlglot's
//! `transpile` on the translation corpus (`conformance/corpus`), with
//! `analyze` and a translation-cache hit:
//!
//! ```sh
//! target/release/floe-bench dialects --python target/test-venv/bin/python
//! ```
//!
//! `floe-bench forward` copies bytes between a client and a server and does
//! nothing else: the floor any proxy on the machine pays (two loopback hops
//! per statement). `pgbench.sh` and `sysbench.sh` run it beside Floe:
//!
//! ```sh
//! target/release/floe-bench forward --listen 127.0.0.1:17432 --to 127.0.0.1:5432
//! ```
//!
//! `floe-bench compact` generates a table of many small files and times Floe's
//! binpack compaction against raw DataFusion rewriting the same Parquet files
//! and pyiceberg overwriting the table, then a selective query before and
//! after binpack and sort:
//!
//! ```sh
//! target/release/floe-bench compact --floe target/release/floe --python target/test-venv/bin/python
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use floe_conformance::{Daemon, DaemonOptions};

mod compact;
mod dialects;
mod forward;
mod frontends;
mod lake;

#[derive(Debug, Parser)]
#[command(name = "floe-bench", about = "Benchmarks Floe against its peers")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// PostgreSQL wire: Floe vs PostgreSQL vs pgbouncer.
    Pg {
        /// The floe binary to benchmark (release build recommended).
        #[arg(long, default_value = "target/release/floe")]
        floe: PathBuf,
        /// PostgreSQL to compare with and to put pgbouncer in front of.
        #[arg(
            long,
            env = "FLOE_BENCH_PG",
            default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
        )]
        postgres: String,
        /// Sequential queries for the latency figure.
        #[arg(long, default_value_t = 5000)]
        queries: usize,
        /// Seconds per pgbench run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// Dialect translation: Floe's `translate` vs sqlglot on the corpus.
    Dialects {
        /// The corpus directory (`mysql.sql`, `postgres.sql`).
        #[arg(long, default_value = "conformance/corpus")]
        corpus: PathBuf,
        /// A Python with sqlglot installed.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// Rounds per statement.
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// Compaction: Floe vs raw DataFusion vs pyiceberg, and query speed-ups.
    Compact {
        /// The floe binary to benchmark (release build).
        #[arg(long, default_value = "target/release/floe")]
        floe: PathBuf,
        /// A Python with pyiceberg installed.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// Table size in MiB of Parquet.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Number of small data files.
        #[arg(long, default_value_t = 2000)]
        files: u64,
        /// Instance price per hour for the cost per TB (AWS c7i.large on demand).
        #[arg(long, default_value_t = 0.0893)]
        price_per_hour: f64,
    },
    /// (internal) The raw DataFusion contender of `compact`: reads the listed
    /// Parquet files and writes them into a directory.
    #[command(hide = true)]
    DatafusionRewrite {
        /// A file with one Parquet path per line.
        list: PathBuf,
        /// The output directory.
        out: PathBuf,
    },
    /// A lake under load: hot-query latency and bytes scanned with adaptive
    /// maintenance off vs on, plotted.
    Lake {
        /// The floe binary to benchmark (release build).
        #[arg(long, default_value = "target/release/floe")]
        floe: PathBuf,
        /// A Python with matplotlib, for the plot.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// Seconds per phase.
        #[arg(long, default_value_t = 180)]
        seconds: u64,
        /// Rows loaded before the run.
        #[arg(long, default_value_t = 2_000_000)]
        initial_rows: u64,
        /// Appends of the initial load.
        #[arg(long, default_value_t = 100)]
        initial_appends: u64,
        /// Rows per append during the run (every 2 s).
        #[arg(long, default_value_t = 5_000)]
        append_rows: u64,
        /// Where the CSV and PNG go.
        #[arg(long, default_value = "benchmarks")]
        out: PathBuf,
    },
    /// A TCP forwarder that does nothing but copy bytes: the floor under any
    /// proxy's cost, run beside Floe by `pgbench.sh` and `sysbench.sh`.
    Forward {
        /// Where clients connect.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The server each client's bytes go to.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// Runtime worker threads; 0 means half the cores, as Floe's default.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// What reporting one query to the maintenance engine costs.
    Telemetry {
        /// Events to emit per measurement.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// The three front ends on a large result, and MySQL wire latency vs MariaDB.
    Frontends {
        /// The floe binary to benchmark (release build recommended).
        #[arg(long, default_value = "target/release/floe")]
        floe: PathBuf,
        /// Rows in the large result.
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        /// MariaDB or MySQL to compare `SELECT 1` latency with.
        #[arg(
            long,
            env = "FLOE_BENCH_MYSQL",
            default_value = "mysql://root@127.0.0.1:3306/test"
        )]
        mysql: String,
        /// Sequential queries for the latency figure.
        #[arg(long, default_value_t = 5000)]
        queries: usize,
    },
}

/// One system under test.
struct Target {
    name: &'static str,
    host: String,
    port: u16,
    user: String,
    dbname: String,
}

impl Target {
    fn conninfo(&self) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.host, self.port, self.user, self.dbname
        )
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Bench::Pg {
            floe,
            postgres,
            queries,
            seconds,
        } => pg(floe, &postgres, queries, seconds),
        Bench::Frontends {
            floe,
            rows,
            mysql,
            queries,
        } => frontends::run(floe, rows, &mysql, queries),
        Bench::Dialects {
            corpus,
            python,
            rounds,
        } => dialects::run(corpus, python, rounds),
        Bench::Compact {
            floe,
            python,
            size_mib,
            files,
            price_per_hour,
        } => compact::run(compact::Options {
            floe,
            python,
            size_mib,
            files,
            price_per_hour,
        }),
        Bench::Lake {
            floe,
            python,
            seconds,
            initial_rows,
            initial_appends,
            append_rows,
            out,
        } => lake::run(&lake::Options {
            floe,
            python,
            seconds,
            initial_rows,
            initial_appends,
            append_rows,
            out,
        }),
        Bench::Telemetry { events } => lake::telemetry(events),
        Bench::Forward {
            listen,
            to,
            threads,
        } => forward::run(listen, to, threads),
        Bench::DatafusionRewrite { list, out } => {
            tokio::runtime::Runtime::new()?.block_on(compact::datafusion_rewrite(&list, &out))
        }
    }
}

fn pg(floe: PathBuf, postgres: &str, queries: usize, seconds: u32) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let pg = parse_conninfo(postgres)?;
    // Fail early, with the address, when the peer to compare with is not there.
    drop(
        runtime
            .block_on(tokio_postgres::connect(
                &pg.conninfo(),
                tokio_postgres::NoTls,
            ))
            .with_context(|| format!("PostgreSQL at `{postgres}` is unreachable"))?,
    );
    let daemon = Daemon::start(DaemonOptions::new(floe));
    let floe_target = Target {
        name: "floe",
        host: daemon.postgres.ip().to_string(),
        port: daemon.postgres.port(),
        user: "floe".to_owned(),
        dbname: "floe".to_owned(),
    };
    let bouncer = Pgbouncer::start(&pg)?;
    let bouncer_target = Target {
        name: "pgbouncer",
        host: "127.0.0.1".to_owned(),
        port: bouncer.port,
        user: pg.user.clone(),
        dbname: pg.dbname.clone(),
    };
    let pg_target = Target {
        name: "postgres",
        ..pg
    };
    let targets = [&floe_target, &pg_target, &bouncer_target];

    println!("# floe-bench pg: {queries} sequential queries for latency, pgbench -T {seconds}");
    println!();
    println!("| measure | floe | postgres | pgbouncer | floe/postgres | floe/pgbouncer |");
    println!("|---|---|---|---|---|---|");
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for target in targets {
        let (a, b) = runtime.block_on(latency(target, queries))?;
        p50.push(a);
        p99.push(b);
    }
    row("SELECT 1 latency p50 (µs), 1 client", &p50, false);
    row("SELECT 1 latency p99 (µs), 1 client", &p99, false);
    for mode in ["simple", "extended"] {
        for clients in [1u32, 8] {
            let mut tps = Vec::new();
            for target in targets {
                tps.push(pgbench(target, mode, clients, seconds)?);
            }
            row(
                &format!("pgbench SELECT 1 tps, {clients} client(s), {mode}"),
                &tps,
                true,
            );
        }
    }
    drop(bouncer);
    drop(daemon);
    Ok(())
}

fn row(label: &str, values: &[f64], higher_is_better: bool) {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    println!(
        "| {label} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        values[0],
        values[1],
        values[2],
        ratio(values[0], values[1]),
        ratio(values[0], values[2]),
    );
    let _ = higher_is_better;
}

async fn latency(target: &Target, queries: usize) -> anyhow::Result<(f64, f64)> {
    let (client, connection) = tokio_postgres::connect(&target.conninfo(), tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to {}", target.name))?;
    let driver = tokio::spawn(connection);
    for _ in 0..200 {
        client.simple_query("SELECT 1").await?;
    }
    let mut samples = Vec::with_capacity(queries);
    for _ in 0..queries {
        let started = Instant::now();
        client.simple_query("SELECT 1").await?;
        samples.push(started.elapsed());
    }
    drop(client);
    let _ = driver.await;
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    Ok((at(0.50), at(0.99)))
}

fn pgbench(target: &Target, mode: &str, clients: u32, seconds: u32) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n")?;
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            mode,
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .args([
            "-h",
            &target.host,
            "-p",
            &target.port.to_string(),
            "-U",
            &target.user,
            &target.dbname,
        ])
        .output()
        .context("cannot run pgbench (apt-get install postgresql-contrib or postgresql-client)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench against {} failed: {}\n{stdout}",
            target.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no tps line in pgbench output:\n{stdout}"))
}

fn parse_conninfo(conninfo: &str) -> anyhow::Result<Target> {
    let mut target = Target {
        name: "postgres",
        host: "127.0.0.1".to_owned(),
        port: 5432,
        user: "postgres".to_owned(),
        dbname: "test".to_owned(),
    };
    for pair in conninfo.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("`{pair}` is not key=value"))?;
        match key {
            "host" => target.host = value.to_owned(),
            "port" => target.port = value.parse()?,
            "user" => target.user = value.to_owned(),
            "dbname" => target.dbname = value.to_owned(),
            other => bail!("unsupported conninfo key `{other}`"),
        }
    }
    Ok(target)
}

/// pgbouncer in front of PostgreSQL on a free port, session pooling, trust auth.
struct Pgbouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Pgbouncer {
    fn start(pg: &Target) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let ini = dir.path().join("pgbouncer.ini");
        let users = dir.path().join("users.txt");
        std::fs::write(&users, format!("\"{}\" \"\"\n", pg.user))?;
        std::fs::write(
            &ini,
            format!(
                "[databases]\n{db} = host={host} port={pgport} dbname={db}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\nauth_file = {users}\n\
                 pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 20\n\
                 unix_socket_dir =\nlogfile = {log}\n",
                db = pg.dbname,
                host = pg.host,
                pgport = pg.port,
                users = users.display(),
                log = dir.path().join("pgbouncer.log").display(),
            ),
        )?;
        // pgbouncer refuses to run as root; give it an unprivileged user.
        make_world_readable(dir.path())?;
        let mut command = Command::new("pgbouncer");
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start pgbouncer (apt-get install pgbouncer)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("pgbouncer did not start listening on port {port}");
            }
            #[allow(clippy::disallowed_methods)] // polling a port with a deadline
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Pgbouncer {
            child,
            port,
            _dir: dir,
        })
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn make_world_readable(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
    for entry in std::fs::read_dir(dir)? {
        std::fs::set_permissions(entry?.path(), std::fs::Permissions::from_mode(0o666))?;
    }
    Ok(())
}
