//! A throwaway PostgreSQL for tests (features `testkit` and `postgres`).
//!
//! [`TestCluster::start`] runs `initdb` and `pg_ctl` in a temporary directory (as the
//! `postgres` user when running as root: the server refuses root), on a free port of
//! 127.0.0.1, with a random password, and stops it when dropped. With `DATABASE_URL`
//! set it uses that server instead. Without PostgreSQL's binaries it prints that the
//! test did not run and returns `None`, unless `RECEIPT_SYNC_REQUIRE_POSTGRES=1` is
//! set (as CI does), in which case it panics: a test that must run cannot pass by
//! being skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Set to `1` to make a missing PostgreSQL a failure rather than a skip.
pub const REQUIRE_ENV: &str = "RECEIPT_SYNC_REQUIRE_POSTGRES";

/// A PostgreSQL server for tests: a cluster of its own, or `DATABASE_URL`'s.
pub struct TestCluster {
    url: String,
    password: String,
    managed: Option<Managed>,
}

/// A cluster this process started, and how to stop it.
struct Managed {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    as_postgres: bool,
    /// The server's options (`pg_ctl start -o`), to start it again on the same port.
    options: String,
    watchdog: Option<Child>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("managed", &self.managed.is_some())
            .finish_non_exhaustive()
    }
}

impl TestCluster {
    /// A server for one test: `DATABASE_URL`'s, or a new cluster stopped on drop.
    /// `None` (after saying so on stderr) when there is no PostgreSQL and it is not
    /// required.
    ///
    /// # Panics
    /// When PostgreSQL is required but missing, or present but fails to start.
    pub fn start() -> Option<Self> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let password = url::Url::parse(&url)
                .ok()
                .and_then(|u| u.password().map(str::to_owned))
                .unwrap_or_default();
            return Some(Self {
                url,
                password,
                managed: None,
            });
        }
        let Some(bin) = find_binaries() else {
            return unavailable(
                "no initdb found (install Debian's `postgresql`, or set DATABASE_URL)",
            );
        };
        Some(start_cluster(&bin).unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}")))
    }

    /// One server for the whole test process, started at the first call. Statics
    /// are never dropped: a watchdog process stops the cluster once this process is
    /// gone, however it ends.
    pub fn shared() -> Option<&'static Self> {
        static SHARED: OnceLock<Option<TestCluster>> = OnceLock::new();
        SHARED.get_or_init(Self::start).as_ref()
    }

    /// The connection string (password included: for the code under test only).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The password in [`url`](Self::url), for tests that check it never shows.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The connection string of a new, empty database on this server.
    ///
    /// # Panics
    /// When the database cannot be created.
    pub async fn fresh_database(&self) -> String {
        let name = unique_name("db");
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating a test database: {e}"));
        drop(client);
        let _ = connection.await;
        let mut url = url::Url::parse(&self.url)
            .unwrap_or_else(|e| panic!("DATABASE_URL must be a postgresql:// URL here: {e}"));
        url.set_path(&name);
        url.to_string()
    }
}

impl TestCluster {
    /// Stops the server (`pg_ctl stop -m fast`: every connection is ended, as in a
    /// database restart or failover), waits `down`, and starts it again on the same
    /// port. A server this process did not start (`DATABASE_URL`) cannot be restarted.
    ///
    /// # Panics
    /// When the server is not one this process started, or does not stop or start.
    pub fn restart(&self, down: std::time::Duration) {
        let managed = self
            .managed
            .as_ref()
            .unwrap_or_else(|| panic!("only a cluster this process started can be restarted"));
        let data = managed.dir.path().join("data");
        let mut stop = command(&managed.pg_ctl, managed.as_postgres);
        stop.args(["stop", "-m", "fast", "-w", "-t", "60", "-D"])
            .arg(&data);
        run(stop, "pg_ctl stop").unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(down);
        let mut start = command(&managed.pg_ctl, managed.as_postgres);
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(managed.dir.path().join("log"))
            .args(["-o", &managed.options]);
        run(start, "pg_ctl start").unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A name no other test of any process uses (organisation ids, database names).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{:x}_{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let Some(managed) = &mut self.managed else {
            return;
        };
        let data = managed.dir.path().join("data");
        let _ = command(&managed.pg_ctl, managed.as_postgres)
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(watchdog) = &mut managed.watchdog {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

fn unavailable(reason: &str) -> Option<TestCluster> {
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("PostgreSQL is required ({REQUIRE_ENV}=1) but {reason}");
    }
    eprintln!("PostgreSQL tests did not run: {reason}");
    None
}

/// The directory of `initdb` and `pg_ctl`: on `PATH`, or Debian's versioned one.
fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    // The newest version first ("9.6" < "15" compared as numbers).
    debian.sort_by_key(|p| {
        let version = p
            .parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u32>().ok());
        std::cmp::Reverse(version)
    });
    on_path
        .chain(debian)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program`, run as the `postgres` user when `as_postgres`.
fn command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn start_cluster(bin: &Path) -> Result<TestCluster, String> {
    let as_postgres = running_as_root();
    let dir = tempfile::Builder::new()
        .prefix("receipt-sync-pg-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let password = unique_name("pw");
    let pwfile = dir.path().join("pwfile");
    std::fs::write(&pwfile, &password).map_err(|e| format!("password file: {e}"))?;
    if as_postgres {
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres"]).arg(dir.path());
        run(chown, "chown")?;
    }
    let data = dir.path().join("data");
    let mut initdb = command(&bin.join("initdb"), as_postgres);
    initdb
        .args([
            "-U",
            "postgres",
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ])
        .arg("--pwfile")
        .arg(&pwfile)
        .arg("-D")
        .arg(&data);
    run(initdb, "initdb")?;
    let _ = std::fs::remove_file(&pwfile);

    let pg_ctl = bin.join("pg_ctl");
    let mut last_error = String::new();
    // A free port can be taken between asking for it and the server binding it.
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
             -c shared_preload_libraries=pg_stat_statements",
            dir.path().display()
        );
        let mut start = command(&pg_ctl, as_postgres);
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-o", &options]);
        match run(start, "pg_ctl start") {
            Ok(()) => {
                let watchdog = spawn_watchdog(&pg_ctl, as_postgres, &data, dir.path());
                return Ok(TestCluster {
                    url: format!("postgresql://postgres:{password}@127.0.0.1:{port}/postgres"),
                    password,
                    managed: Some(Managed {
                        dir,
                        pg_ctl,
                        as_postgres,
                        options,
                        watchdog,
                    }),
                });
            }
            Err(e) => {
                let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
                last_error = format!("{e}\n{log}");
            }
        }
    }
    Err(last_error)
}

/// A shell that stops the cluster and removes its directory once this process is
/// gone: for the shared cluster (never dropped) and for a test process killed.
fn spawn_watchdog(pg_ctl: &Path, as_postgres: bool, data: &Path, dir: &Path) -> Option<Child> {
    let stop = if as_postgres {
        format!("runuser -u postgres -- '{}'", pg_ctl.display())
    } else {
        format!("'{}'", pg_ctl.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {stop} stop -m immediate -D '{data}' >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// A TCP relay in front of a database server that counts round trips, for figures
/// that must not depend on the driver's own accounting: each time a client sends after
/// the server last spoke on that connection is one more wait for the network. Returns
/// the relay's port on 127.0.0.1 and the running count.
///
/// # Errors
/// When no local port can be bound.
pub async fn counting_relay(
    server: std::net::SocketAddr,
) -> std::io::Result<(u16, std::sync::Arc<std::sync::atomic::AtomicU64>)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let trips = Arc::new(AtomicU64::new(0));
    let counter = trips.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = tokio::net::TcpStream::connect(server).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = upstream.into_split();
            // 0: the server spoke last (or nobody yet); 1: the client did.
            let last = Arc::new(AtomicU8::new(0));
            let (client_last, trips) = (last.clone(), counter.clone());
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                    if client_last.swap(1, Ordering::SeqCst) == 0 {
                        trips.fetch_add(1, Ordering::SeqCst);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                    last.store(0, Ordering::SeqCst);
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok((port, trips))
}
