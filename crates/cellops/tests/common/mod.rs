//! Shared helpers for the black-box tests that run the real `cellops` binary: databases
//! made per test, a server process that is always killed (even when a test panics), a tiny
//! blocking HTTP/1.1 client, and the seed that drives a randomised test. The server process
//! and the HTTP client are `src/crash_client.rs`, shared with `cellops bench crash`.

#![allow(dead_code)] // Each test binary uses a different subset.

use rand::{RngCore, SeedableRng};
use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// The test user's password (policy: at least 12 characters).
pub const PASSWORD: &str = "correct horse battery staple";
/// The test user: an operator at `SITE`, who may add notes there.
pub const USER_ID: &str = "olivia";
pub const USER_NAME: &str = "Olivia Operator";
pub const SITE: &str = "cpc-kyoto";

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cellops")
}

/// What a finished `cellops` command printed.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with everything the command printed unless it exited with `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &Output {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `cellops ARGS`, feeding `stdin` (if any), and waits for it.
pub fn cellops(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cellops binary starts");
    {
        let mut input = child.stdin.take().expect("stdin is piped");
        if let Some(text) = stdin {
            // The command may exit before reading (e.g. a bad argument): ignore EPIPE.
            let _ = input.write_all(text.as_bytes());
        }
    }
    let out = child.wait_with_output().expect("cellops runs to the end");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Creates the test user (`USER_ID`, operator at `SITE`) in the database at `url`.
pub fn add_user(url: &str) {
    let role = format!("operator@{SITE}");
    cellops(
        &[
            "user",
            "add",
            "--database",
            url,
            "--user-id",
            USER_ID,
            "--name",
            USER_NAME,
            "--role",
            &role,
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .expect_code(0, "cellops user add");
}

/// Runs `cellops ledger verify --database URL --json` and returns (exit code, report).
pub fn verify_json(url: &str) -> (Option<i32>, Value, Output) {
    let out = cellops(&["ledger", "verify", "--database", url, "--json"], None);
    let report = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ledger verify --json printed no JSON ({e})\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        )
    });
    (out.code, report, out)
}

/// The seed of a randomised test: `$CELLOPS_SEED` when set (to replay a failure), else
/// drawn. Printed either way, so a failing run says how to replay it.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("CELLOPS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CELLOPS_SEED={s:?} is not a whole number")),
        Err(_) => rand::rngs::StdRng::from_entropy().next_u64(),
    };
    println!("{test}: seed {seed} (replay with CELLOPS_SEED={seed})");
    seed
}

// ---------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------

/// A SQLite database file in its own temporary directory (removed on drop).
pub struct SqliteDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl SqliteDb {
    pub fn new() -> SqliteDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("ledger.db");
        SqliteDb { dir, path }
    }

    /// `sqlite:///abs/path/ledger.db`
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    /// Pages the database holds now (its logical size, WAL included), for quota tests.
    pub fn page_count(&self) -> u64 {
        let c = rusqlite::Connection::open(&self.path).expect("the test opens the file");
        c.query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("page_count")
    }
}

/// The PostgreSQL server for tests (trust auth): `$CELLOPS_TEST_POSTGRES` or the local one.
pub fn pg_admin_url() -> String {
    std::env::var("CELLOPS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh PostgreSQL database, dropped (with its connections) afterwards.
pub struct PgDb {
    pub url: String,
    name: String,
}

impl PgDb {
    /// A new database. Panics when PostgreSQL is unreachable, unless
    /// `CELLOPS_SKIP_POSTGRES=1` asks to skip (loudly; CI never sets it).
    pub fn create() -> Option<PgDb> {
        let admin = pg_admin_url();
        let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(c) => c,
            Err(e) if std::env::var("CELLOPS_SKIP_POSTGRES").as_deref() == Ok("1") => {
                eprintln!("SKIPPING PostgreSQL test: {e} (CELLOPS_SKIP_POSTGRES=1)");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL at {admin} is unreachable ({e}); start it, point CELLOPS_TEST_POSTGRES \
                 at one, or set CELLOPS_SKIP_POSTGRES=1 to skip this test loudly"
            ),
        };
        let name = format!(
            "cellops_bintest_{}_{:08x}",
            std::process::id(),
            rand::rngs::StdRng::from_entropy().next_u32()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        let base = admin
            .rsplit_once('/')
            .expect("the admin URL ends in /DATABASE")
            .0;
        Some(PgDb {
            url: format!("{base}/{name}"),
            name,
        })
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test db")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_admin_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server process and the HTTP client: the ones `cellops bench crash` uses, wrapped so
// that a test panics (with the server's output) instead of handling errors.
// ---------------------------------------------------------------------------------------

#[path = "../../src/crash_client.rs"]
mod crash_client;

#[allow(unused_imports)] // Each test binary uses a different subset.
pub use crash_client::{Response, http};

/// A running `cellops serve`. Dropping it kills the process (SIGKILL) if it still runs, so
/// no server outlives a failed test.
pub struct Server {
    process: crash_client::ServerProcess,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `cellops serve --database URL --listen 127.0.0.1:0 EXTRA…` and waits for its
    /// "listening" line. `log_dir` receives the server's stderr (shown if it fails).
    pub fn start(url: &str, extra: &[&str], log_dir: &Path) -> Server {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stderr_path = log_dir.join(format!("server-{n}.stderr"));
        let process =
            crash_client::ServerProcess::start(Path::new(bin()), url, extra, &stderr_path)
                .unwrap_or_else(|e| panic!("{e:#}"));
        Server {
            addr: process.addr(),
            process,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn stdout_text(&self) -> String {
        self.process.stdout_text()
    }

    pub fn stderr_text(&self) -> String {
        self.process.stderr_text()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// `kill -9`: the process dies wherever it is, with no chance to clean up.
    pub fn kill_hard(&mut self) {
        self.process.kill_hard()
    }

    /// SIGTERM (a clean stop: finish requests, sign a final checkpoint) and wait for exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process
            .terminate()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", self.process.stderr_text()))
    }
}

/// A signed-in API client of one server (panics where the shared client returns errors).
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    inner: crash_client::ApiClient,
}

impl Client {
    /// Signs in as `user_id`; panics unless the server answers 200 with a session cookie.
    pub fn login(addr: SocketAddr, user_id: &str, password: &str) -> Client {
        let inner = crash_client::ApiClient::login(addr, user_id, password)
            .unwrap_or_else(|e| panic!("{e:#}"));
        Client { addr, inner }
    }

    /// Signs in as the test user.
    pub fn login_test_user(addr: SocketAddr) -> Client {
        Client::login(addr, USER_ID, PASSWORD)
    }

    /// POST /api/notes at `SITE` (with an Idempotency-Key when given).
    pub fn post_note(
        &self,
        stream: &str,
        text: &str,
        key: Option<&str>,
    ) -> std::io::Result<Response> {
        self.inner.post_note(stream, SITE, text, key)
    }

    /// Records in the ledger as the server knows it (`GET /health`).
    pub fn ledger_size(&self) -> u64 {
        self.inner.ledger_size().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// GET `path`, expecting 200 and JSON.
    pub fn get_json(&self, path: &str) -> Value {
        self.inner
            .get_json(path)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Every record of `stream` in seq order, read page by page through the API.
    pub fn stream_records(&self, stream: &str) -> Vec<Value> {
        self.stream_records_after(stream, 0)
    }

    /// The records of `stream` with seq above `after`, in seq order.
    pub fn stream_records_after(&self, stream: &str, after: u64) -> Vec<Value> {
        self.inner
            .stream_records_after(stream, after)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The note texts of `stream`, in seq order.
    pub fn note_texts(&self, stream: &str) -> Vec<String> {
        self.stream_records(stream)
            .iter()
            .filter(|r| r["type"] == "note.recorded")
            .map(|r| {
                r["payload"]["text"]
                    .as_str()
                    .expect("a note has text")
                    .to_string()
            })
            .collect()
    }
}
