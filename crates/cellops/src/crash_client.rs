//! A `cellops serve` child process and a tiny blocking HTTP/1.1 client of its API, for the
//! code that drives the real binary from outside: `cellops bench crash` and the black-box
//! tests (which include this file with `#[path]`, so it depends on nothing of this crate).
//!
//! The client opens one connection per request (`Connection: close`) and treats anything
//! short of a complete response (refused, reset, cut short) as an `Err`: such a request was
//! not acknowledged. That is exactly what a crash test needs to tell acknowledged appends
//! from the ones in flight at a `kill -9`.

use anyhow::Context;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a server may take to print its "listening" line, in s (a slow shared machine,
/// a debug build and a ledger to replay at start-up).
pub const STARTUP_TIMEOUT_S: u64 = 180;
/// How long a stopped server may take to exit after SIGTERM, in s.
pub const SHUTDOWN_TIMEOUT_S: u64 = 120;
/// Socket connect/read/write timeout of the HTTP client, in s: a hung server fails the run
/// instead of hanging it.
pub const HTTP_TIMEOUT_S: u64 = 120;
/// Records per page when reading the ledger through the API (the server's maximum).
pub const PAGE_RECORDS_MAX: usize = 1000;
/// Pages read from one stream before giving up (a bound on the paging loop).
pub const STREAM_PAGES_MAX: usize = 100_000;
/// How often a stopping server is polled for its exit, in ms.
const EXIT_POLL_MS: u64 = 20;

/// The line prefix with which `cellops serve` announces that it accepts connections.
const LISTENING_PREFIX: &str = "cellops listening on http://";

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

/// A running `cellops serve` child. Dropping it kills the process (SIGKILL) if it still
/// runs, so no server outlives the run that started it.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    ready_after: Duration,
    /// Every stdout line so far (drained by a thread so that the pipe never fills).
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl ServerProcess {
    /// Starts `EXE serve --database URL --listen 127.0.0.1:0 EXTRA…` with its stderr in
    /// `stderr_path`, and waits (at most `STARTUP_TIMEOUT_S`) for its "listening" line.
    pub fn start(
        exe: &Path,
        url: &str,
        extra: &[&str],
        stderr_path: &Path,
    ) -> anyhow::Result<ServerProcess> {
        let stderr = std::fs::File::create(stderr_path)
            .with_context(|| format!("creating the server log {}", stderr_path.display()))?;
        let started = Instant::now();
        let mut child = Command::new(exe)
            .args(["serve", "--database", url, "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the server's stdout is piped")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix(LISTENING_PREFIX) {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                    }
                    lock_lines(&lines).push(line);
                }
            });
        }
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ready_after: Duration::ZERO,
            stdout: lines,
            stderr_path: stderr_path.to_path_buf(),
        };
        let announced = rx.recv_timeout(Duration::from_secs(STARTUP_TIMEOUT_S));
        server.ready_after = started.elapsed();
        match announced {
            Ok(addr) => {
                server.addr = addr
                    .parse()
                    .with_context(|| format!("unparsable listening address {addr:?}"))?;
                Ok(server)
            }
            Err(e) => {
                let status = server.child.try_wait().ok().flatten();
                anyhow::bail!(
                    "{} serve --database {url} did not print its listening line within \
                     {STARTUP_TIMEOUT_S} s ({e:?}; exit {status:?})\nstdout:\n{}\nstderr:\n{}",
                    exe.display(),
                    server.stdout_text(),
                    server.stderr_text()
                )
            }
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Time from spawning the process to its "listening" line (ready to serve).
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed on stdout so far.
    pub fn stdout_text(&self) -> String {
        lock_lines(&self.stdout).join("\n")
    }

    /// Everything the server printed on stderr so far (its log).
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`: the process dies wherever it is, with no chance to clean up. Returns once
    /// it is gone.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a clean stop: finish requests, sign a final checkpoint), then waits at most
    /// `SHUTDOWN_TIMEOUT_S` for the exit.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill(1)")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed: {status}");
        let deadline = Instant::now() + Duration::from_secs(SHUTDOWN_TIMEOUT_S);
        while self.is_running() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "server {pid} did not exit within {SHUTDOWN_TIMEOUT_S} s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(EXIT_POLL_MS));
        }
        self.child
            .wait()
            .with_context(|| format!("collecting the exit of server {pid}"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill_hard();
        }
    }
}

/// The stdout lines, even if a reader thread panicked while holding the lock (a push cannot
/// leave the vector half-changed).
fn lock_lines(lines: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 client
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

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("HTTP {} body is not JSON: {}", self.status, self.text()))
    }
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

fn cut_short(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, msg.into())
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
    let timeout = Duration::from_secs(HTTP_TIMEOUT_S);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
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
        .ok_or_else(|| cut_short(format!("no complete response head in {} bytes", raw.len())))?;
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
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[head_end + 4..];
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    response.body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
        if rest.len() < len {
            return Err(cut_short(format!(
                "body cut short: {} of {len} bytes",
                rest.len()
            )));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| cut_short("chunk size line cut short"))?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("chunk"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(cut_short("chunk cut short"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A signed-in client of one server's API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    addr: SocketAddr,
    cookie: String,
}

impl ApiClient {
    /// Signs in as `user_id`; an error unless the server answers 200 with a session cookie.
    pub fn login(addr: SocketAddr, user_id: &str, password: &str) -> anyhow::Result<ApiClient> {
        let body = serde_json::json!({ "user_id": user_id, "password": password }).to_string();
        let r = http(addr, "POST", "/api/auth/login", &[], Some(&body))
            .with_context(|| format!("POST /api/auth/login at {addr}"))?;
        anyhow::ensure!(
            r.status == 200,
            "login at {addr}: {} {}",
            r.status,
            r.text()
        );
        let set_cookie = r
            .header("set-cookie")
            .context("the login response sets no cookie")?;
        let cookie = set_cookie.split(';').next().unwrap_or("").to_string();
        anyhow::ensure!(
            cookie.starts_with("cellops_session="),
            "the login cookie is not a cellops session: {set_cookie}"
        );
        Ok(ApiClient { addr, cookie })
    }

    /// The server this client talks to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The session cookie (`cellops_session=…`), for a `Cookie` header.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// POST /api/notes at `site` (with an Idempotency-Key when given). `Err` means no
    /// complete answer: the note was not acknowledged.
    pub fn post_note(
        &self,
        stream: &str,
        site: &str,
        text: &str,
        key: Option<&str>,
    ) -> std::io::Result<Response> {
        let body = serde_json::json!({ "stream": stream, "site": site, "text": text }).to_string();
        let mut headers = vec![("Cookie", self.cookie.as_str())];
        if let Some(key) = key {
            headers.push(("Idempotency-Key", key));
        }
        http(self.addr, "POST", "/api/notes", &headers, Some(&body))
    }

    /// POST `body` (JSON) to `path` with this client's session. `Err` means no complete answer.
    pub fn post_json(&self, path: &str, body: &Value) -> std::io::Result<Response> {
        let headers = [("Cookie", self.cookie.as_str())];
        http(self.addr, "POST", path, &headers, Some(&body.to_string()))
    }

    /// Records in the ledger as the server knows it (`GET /health`).
    pub fn ledger_size(&self) -> anyhow::Result<u64> {
        let r = http(self.addr, "GET", "/health", &[], None).context("GET /health")?;
        anyhow::ensure!(r.status == 200, "GET /health: {} {}", r.status, r.text());
        r.json()?["ledger_records"]
            .as_u64()
            .context("GET /health has no ledger_records count")
    }

    /// GET `path`, expecting 200 and JSON.
    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let r = http(self.addr, "GET", path, &[("Cookie", &self.cookie)], None)
            .with_context(|| format!("GET {path}"))?;
        anyhow::ensure!(r.status == 200, "GET {path}: {} {}", r.status, r.text());
        r.json()
    }

    /// The records of `stream` with seq above `after`, in seq order, read page by page.
    pub fn stream_records_after(&self, stream: &str, after: u64) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after = after;
        for _ in 0..STREAM_PAGES_MAX {
            let page = self.get_json(&format!(
                "/api/ledger/records?stream={stream}&after={after}&limit={PAGE_RECORDS_MAX}"
            ))?;
            let records = page["records"]
                .as_array()
                .context("a records page without a records array")?;
            out.extend(records.iter().cloned());
            match page["next_after"].as_u64() {
                Some(next) => after = next,
                None => return Ok(out),
            }
        }
        anyhow::bail!("stream {stream} has more than {STREAM_PAGES_MAX} pages of records")
    }
}
