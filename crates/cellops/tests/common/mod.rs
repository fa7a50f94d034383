//! Shared helpers for the black-box tests that run the real `cellops` binary: databases
//! made per test, a server process that is always killed (even when a test panics), a tiny
//! blocking HTTP/1.1 client, and the seed that drives a randomised test.

#![allow(dead_code)] // Each test binary uses a different subset.

use rand::{RngCore, SeedableRng};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a server may take to print its "listening" line (a slow shared machine, a
/// debug build and a ledger to replay at start-up).
pub const STARTUP_TIMEOUT_S: u64 = 180;
/// How long a stopped server may take to exit after SIGTERM.
pub const SHUTDOWN_TIMEOUT_S: u64 = 120;
/// Socket read/write timeout of the HTTP client: a hung server fails the test, not the CI.
pub const HTTP_TIMEOUT_S: u64 = 120;
/// Records per page when reading the ledger through the API (the server's maximum).
pub const PAGE_RECORDS_MAX: usize = 1000;

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
// The server process
// ---------------------------------------------------------------------------------------

/// A running `cellops serve`. Dropping it kills the process (SIGKILL) if it still runs, so
/// no server outlives a failed test.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Every stdout line so far (drained by a thread so the pipe never fills).
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts `cellops serve --database URL --listen 127.0.0.1:0 EXTRA…` and waits for its
    /// "listening" line. `log_dir` receives the server's stderr (shown if it fails).
    pub fn start(url: &str, extra: &[&str], log_dir: &Path) -> Server {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stderr_path = log_dir.join(format!("server-{n}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("server log file");
        let mut child = Command::new(bin())
            .args(["serve", "--database", url, "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("cellops serve starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("cellops listening on http://") {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                    }
                    lines.lock().expect("stdout lines").push(line);
                }
            });
        }
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().expect("placeholder address"),
            stdout: lines,
            stderr_path,
        };
        match rx.recv_timeout(Duration::from_secs(STARTUP_TIMEOUT_S)) {
            Ok(addr) => {
                server.addr = addr
                    .parse()
                    .unwrap_or_else(|_| panic!("unparsable listening address {addr:?}"));
                server
            }
            Err(e) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "cellops serve --database {url} did not print its listening line ({e:?}; exit {status:?})\nstdout:\n{}\nstderr:\n{}",
                    server.stdout_text(),
                    server.stderr_text()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().expect("stdout lines").join("\n")
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`: the process dies wherever it is, with no chance to clean up.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a clean stop: finish requests, sign a final checkpoint) and wait for exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(SHUTDOWN_TIMEOUT_S);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server {} did not exit within {SHUTDOWN_TIMEOUT_S} s of SIGTERM",
                self.child.id()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 client (blocking, one connection per request, `Connection: close`)
// ---------------------------------------------------------------------------------------

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Sends one request and reads the whole response. Any failure to get a complete response
/// (refused, reset, cut short) is an `Err`: the request was not acknowledged.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(HTTP_TIMEOUT_S))?;
    stream.set_read_timeout(Some(Duration::from_secs(HTTP_TIMEOUT_S)))?;
    stream.set_write_timeout(Some(Duration::from_secs(HTTP_TIMEOUT_S)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" || !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("no complete response head in {} bytes", raw.len())))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| invalid("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
        if rest.len() < len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("body cut short: {} of {len} bytes", rest.len()),
            ));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("chunk size line cut short"))?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("chunk"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "chunk cut short",
            ));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A signed-in API client of one server.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    cookie: String,
}

impl Client {
    /// Signs in as `user_id`; panics unless the server answers 200 with a session cookie.
    pub fn login(addr: SocketAddr, user_id: &str, password: &str) -> Client {
        let body = serde_json::json!({ "user_id": user_id, "password": password }).to_string();
        let r = http(addr, "POST", "/api/auth/login", &[], Some(&body))
            .unwrap_or_else(|e| panic!("login at {addr} failed: {e}"));
        assert_eq!(r.status, 200, "login: {}", r.text());
        let set_cookie = r.header("set-cookie").expect("login sets a cookie");
        let cookie = set_cookie
            .split(';')
            .next()
            .expect("cookie pair")
            .to_string();
        assert!(cookie.starts_with("cellops_session="), "{set_cookie}");
        Client { addr, cookie }
    }

    /// Signs in as the test user.
    pub fn login_test_user(addr: SocketAddr) -> Client {
        Client::login(addr, USER_ID, PASSWORD)
    }

    /// POST /api/notes (with an Idempotency-Key when given).
    pub fn post_note(
        &self,
        stream: &str,
        text: &str,
        key: Option<&str>,
    ) -> std::io::Result<Response> {
        let body = serde_json::json!({ "stream": stream, "site": SITE, "text": text }).to_string();
        let mut headers = vec![("Cookie", self.cookie.as_str())];
        if let Some(key) = key {
            headers.push(("Idempotency-Key", key));
        }
        http(self.addr, "POST", "/api/notes", &headers, Some(&body))
    }

    /// Records in the ledger as the server knows it (`GET /health`).
    pub fn ledger_size(&self) -> u64 {
        let r = http(self.addr, "GET", "/health", &[], None).expect("GET /health");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["ledger_records"].as_u64().expect("ledger_records")
    }

    /// GET `path`, expecting 200 and JSON.
    pub fn get_json(&self, path: &str) -> Value {
        let r = http(self.addr, "GET", path, &[("Cookie", &self.cookie)], None)
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// Every record of `stream` in seq order, read page by page through the API.
    pub fn stream_records(&self, stream: &str) -> Vec<Value> {
        self.stream_records_after(stream, 0)
    }

    /// The records of `stream` with seq above `after`, in seq order.
    pub fn stream_records_after(&self, stream: &str, after: u64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = after;
        loop {
            let page = self.get_json(&format!(
                "/api/ledger/records?stream={stream}&after={after}&limit={PAGE_RECORDS_MAX}"
            ));
            let records = page["records"].as_array().expect("records array").clone();
            match page["next_after"].as_u64() {
                Some(next) => after = next,
                None => return out,
            }
            out.extend(records);
        }
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
