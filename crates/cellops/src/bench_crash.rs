//! `cellops bench crash [--cycles N]`: crash safety of the real server process (Foundation
//! issue, item 9).
//!
//! On a fresh SQLite database, each cycle starts `cellops serve` (this very executable),
//! appends notes from 1–4 client threads with unique Idempotency-Keys, `kill -9`s the server
//! at a random moment, checks that `cellops ledger verify` passes on what the crash left
//! behind, restarts the server and retries the requests that got no answer with the same
//! keys. After every restart each acknowledged note must be in the ledger exactly once;
//! after the last cycle the server stops cleanly and its final checkpoint must cover every
//! record. A lost or duplicated note, a failed verification or any other broken promise
//! makes the command exit non-zero (after printing the report).
//!
//! One seed (`CELLOPS_SEED`, or drawn and printed on stderr) drives the thread counts and
//! kill moments, so a failure names the line that replays it.

use crate::bench::{BenchReport, BenchResult, median};
use crate::crash_client::{ApiClient, Response, ServerProcess};
use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Kill/restart cycles without `--cycles` (what CI runs through `tests/crash.rs`).
pub const CRASH_CYCLES_DEFAULT: u64 = 30;
/// Kill/restart cycles with `--quick`.
pub const CRASH_CYCLES_QUICK: u64 = 5;
/// Most cycles one run accepts (each takes about a second).
pub const CRASH_CYCLES_MAX: u64 = 100_000;
/// Longest time a burst of appends runs before the kill, in ms.
const KILL_AFTER_MS_MAX: u64 = 300;
/// Most client threads appending at once (several make the writer group commits).
const CLIENT_THREADS_MAX: usize = 4;
/// Bound on the notes one client thread sends in one burst.
const NOTES_PER_THREAD_MAX: usize = 100_000;
/// Re-read the whole stream (instead of only the new records) every this many cycles.
const FULL_RECOUNT_EVERY_CYCLES: u64 = 25;
/// Lost or duplicated notes named in the failure message (the counts are always complete).
const FAILURE_EXAMPLES_MAX: usize = 5;

/// The stream the bench writes to.
const STREAM: &str = "note/crash";
/// The bench's user: an operator at `SITE`, who may add notes there.
const USER_ID: &str = "crash-bench";
const USER_NAME: &str = "Crash Bench";
/// Meets the password policy (at least 12 characters); the database is thrown away.
const PASSWORD: &str = "correct horse battery staple";
const SITE: &str = "cpc-kyoto";

/// Runs `cycles` (default `CRASH_CYCLES_DEFAULT`, `CRASH_CYCLES_QUICK` with `quick`)
/// kill/restart cycles and returns the backend and the figures. When a promise is broken
/// it prints the report itself (as JSON with `json`) and returns the error, which names
/// the seed and the kept database.
pub fn run(
    cycles: Option<u64>,
    quick: bool,
    json: bool,
) -> anyhow::Result<(Option<String>, Vec<BenchResult>)> {
    let cycles = cycles.unwrap_or(if quick {
        CRASH_CYCLES_QUICK
    } else {
        CRASH_CYCLES_DEFAULT
    });
    anyhow::ensure!(
        (1..=CRASH_CYCLES_MAX).contains(&cycles),
        "--cycles {cycles} is out of range: give 1 to {CRASH_CYCLES_MAX}"
    );
    let seed = seed()?;
    eprintln!(
        "bench crash: {cycles} kill -9 cycles, seed {seed} (replay with CELLOPS_SEED={seed})"
    );
    let setup = Setup::new()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let started = Instant::now();
    let broken = run_cycles(&setup, cycles, &mut rng, &mut tally).err();
    eprintln!("bench crash: {}", tally.summary(started.elapsed()));
    let backend = Some("sqlite".to_string());
    let results = tally.results();
    let Some(failure) = tally.failure(broken) else {
        return Ok((backend, results));
    };
    let report = BenchReport::new("crash", backend, results);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_human();
    }
    let kept = setup.dir.keep();
    anyhow::bail!(
        "bench crash failed (seed {seed}; replay with CELLOPS_SEED={seed} cellops bench crash \
         --cycles {cycles}; database and server logs kept in {}): {failure}",
        kept.display()
    )
}

/// `$CELLOPS_SEED` when set (to replay a run), else drawn.
fn seed() -> anyhow::Result<u64> {
    match std::env::var("CELLOPS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .with_context(|| format!("CELLOPS_SEED={s:?} is not a whole number")),
        Err(_) => Ok(StdRng::from_entropy().next_u64()),
    }
}

/// The executable and the temporary database (with the server logs) of one run.
struct Setup {
    exe: PathBuf,
    dir: tempfile::TempDir,
    url: String,
}

impl Setup {
    /// A fresh database in a temporary directory, with the bench's user in it.
    fn new() -> anyhow::Result<Setup> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let dir = tempfile::Builder::new()
            .prefix("cellops-bench-crash-")
            .tempdir()
            .context("creating a temporary directory")?;
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let setup = Setup { exe, dir, url };
        let role = format!("operator@{SITE}");
        let args = [
            "user",
            "add",
            "--database",
            &setup.url,
            "--user-id",
            USER_ID,
            "--name",
            USER_NAME,
            "--role",
            &role,
        ];
        setup.cellops(&args, &format!("{PASSWORD}\n"))?;
        Ok(setup)
    }

    /// Runs this executable with `args` and `stdin`; an error unless it exits 0.
    fn cellops(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let what = format!("cellops {}", args.join(" "));
        let mut child = Command::new(&self.exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        if let Some(mut input) = child.stdin.take() {
            // The command may exit before reading (a bad argument): its exit tells why.
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for {what}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            out.status.success(),
            "{what} exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(stdout)
    }

    /// `cellops ledger verify --json` on the database as it is now; its report.
    fn verify(&self) -> anyhow::Result<Value> {
        let stdout = self.cellops(&["ledger", "verify", "--database", &self.url, "--json"], "")?;
        let report: Value = serde_json::from_str(&stdout)
            .with_context(|| format!("ledger verify --json printed no JSON: {stdout}"))?;
        anyhow::ensure!(
            report["problem"].is_null(),
            "ledger verify exited 0 but reports a problem: {report}"
        );
        Ok(report)
    }

    /// Starts the server for `cycle`, its stderr in the run's directory.
    fn start_server(&self, cycle: u64) -> anyhow::Result<ServerProcess> {
        let log = self.dir.path().join(format!("server-{cycle}.stderr"));
        ServerProcess::start(&self.exe, &self.url, &[], &log)
    }

    fn log_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// One POST /api/notes as sent: its idempotency key and text.
#[derive(Debug, Clone)]
struct Sent {
    key: String,
    text: String,
}

impl Sent {
    fn new(key: String) -> Sent {
        Sent {
            text: format!("crash-bench note {key}"),
            key,
        }
    }
}

/// What one client thread saw in one burst.
#[derive(Default)]
struct Burst {
    acknowledged: Vec<Sent>,
    /// The request that got no complete answer (the server died under it), if any.
    in_flight: Option<Sent>,
}

/// Checks that a 200 answer to POST /api/notes recorded `sent`; returns whether it was a
/// replay of an earlier request with the same key.
fn recorded(r: &Response, sent: &Sent) -> anyhow::Result<bool> {
    let body = r.json()?;
    anyhow::ensure!(
        body["record"]["payload"]["text"] == sent.text.as_str(),
        "POST /api/notes {} answered with another note: {body}",
        sent.key
    );
    body["replayed"].as_bool().with_context(|| {
        format!(
            "POST /api/notes {} answered without replayed: {body}",
            sent.key
        )
    })
}

/// Appends notes until the server stops answering (it is killed) or `stop` is set.
fn burst(client: ApiClient, prefix: String, stop: Arc<AtomicBool>) -> anyhow::Result<Burst> {
    let mut out = Burst::default();
    for i in 0..NOTES_PER_THREAD_MAX {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let sent = Sent::new(format!("{prefix}-n{i}"));
        match client.post_note(STREAM, SITE, &sent.text, Some(&sent.key)) {
            Ok(r) if r.status == 200 => {
                anyhow::ensure!(
                    !recorded(&r, &sent)?,
                    "a new key was replayed: {}",
                    sent.key
                );
                out.acknowledged.push(sent);
            }
            Ok(r) => anyhow::bail!(
                "POST /api/notes {} to {} answered {} while the server was alive: {}",
                sent.key,
                client.addr(),
                r.status,
                r.text()
            ),
            Err(_) => {
                out.in_flight = Some(sent);
                break;
            }
        }
    }
    Ok(out)
}

/// The count of each note text in the stream, read from the start.
fn note_counts(client: &ApiClient) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut index = NoteIndex::default();
    index.read_new(client, &BTreeSet::new(), &mut BTreeSet::new(), false)?;
    Ok(index.counts)
}

/// The notes of the stream, read incrementally so that a long run stays linear: records are
/// append-only (`ledger verify` checks the chain every cycle) and the ledger may never
/// shrink, so only records after the last one seen are new.
#[derive(Default)]
struct NoteIndex {
    counts: BTreeMap<String, usize>,
    last_seq: u64,
    ledger_size_min: u64,
}

impl NoteIndex {
    /// Reads the records after the last one seen. A note text outside `sent` is an error
    /// when `check_sent`; a text seen twice goes into `duplicated`.
    fn read_new(
        &mut self,
        client: &ApiClient,
        sent: &BTreeSet<String>,
        duplicated: &mut BTreeSet<String>,
        check_sent: bool,
    ) -> anyhow::Result<()> {
        for r in client.stream_records_after(STREAM, self.last_seq)? {
            self.last_seq = r["seq"].as_u64().context("a record without seq")?;
            if r["type"] != "note.recorded" {
                continue;
            }
            let text = r["payload"]["text"]
                .as_str()
                .context("a note without text")?;
            anyhow::ensure!(
                !check_sent || sent.contains(text),
                "the ledger holds a note nobody sent: {text:?}"
            );
            let n = self.counts.entry(text.to_string()).or_insert(0);
            *n += 1;
            if *n > 1 {
                duplicated.insert(text.to_string());
            }
        }
        Ok(())
    }

    /// Catches up after a restart: the ledger did not shrink, the new notes were all sent,
    /// and every `FULL_RECOUNT_EVERY_CYCLES` a re-read from the start agrees.
    fn update(&mut self, client: &ApiClient, cycle: u64, tally: &mut Tally) -> anyhow::Result<()> {
        let size = client.ledger_size()?;
        anyhow::ensure!(
            size >= self.ledger_size_min,
            "the ledger shrank from {} to {size} records",
            self.ledger_size_min
        );
        self.ledger_size_min = size;
        self.read_new(client, &tally.sent_texts, &mut tally.duplicated_texts, true)?;
        if cycle.is_multiple_of(FULL_RECOUNT_EVERY_CYCLES) {
            anyhow::ensure!(
                note_counts(client)? == self.counts,
                "re-reading the whole stream disagrees with reading it cycle by cycle"
            );
        }
        Ok(())
    }
}

/// Everything a run has sent, measured and found so far.
#[derive(Default)]
struct Tally {
    cycles_run: u64,
    /// Every acknowledged note, retried ones included, in order.
    acknowledged: Vec<Sent>,
    /// `acknowledged[..checked]` have been found in the ledger (or counted as lost).
    checked: usize,
    /// Every note text ever sent, acknowledged or not.
    sent_texts: BTreeSet<String>,
    /// Requests cut off by the last kill, to retry after the restart.
    pending: Vec<Sent>,
    burst_acknowledged: u64,
    burst_time: Duration,
    ready_after: Vec<Duration>,
    lost_keys: BTreeSet<String>,
    duplicated_texts: BTreeSet<String>,
    retried_committed: u64,
    retried_new: u64,
    concurrent_cycles: u64,
}

impl Tally {
    /// Retries every request the last kill cut off, with its key: it must be recorded
    /// exactly once, whether or not the first attempt committed before the kill.
    fn retry_pending(&mut self, client: &ApiClient) -> anyhow::Result<()> {
        for sent in std::mem::take(&mut self.pending) {
            let r = client
                .post_note(STREAM, SITE, &sent.text, Some(&sent.key))
                .with_context(|| format!("retry of {} after the restart", sent.key))?;
            anyhow::ensure!(
                r.status == 200,
                "retry of {}: {} {}",
                sent.key,
                r.status,
                r.text()
            );
            if recorded(&r, &sent)? {
                self.retried_committed += 1;
            } else {
                self.retried_new += 1;
            }
            self.acknowledged.push(sent);
        }
        Ok(())
    }

    /// Counts as lost the acknowledged notes not yet checked that `counts` lacks.
    fn check_new_acknowledged(&mut self, counts: &BTreeMap<String, usize>) {
        for sent in &self.acknowledged[self.checked..] {
            if !counts.contains_key(&sent.text) {
                self.lost_keys.insert(sent.key.clone());
            }
        }
        self.checked = self.acknowledged.len();
    }

    /// Appends from 1–`CLIENT_THREADS_MAX` threads and `kill -9`s the server at a random
    /// moment; collects what was acknowledged and what was in flight.
    fn kill_during_bursts(
        &mut self,
        client: &ApiClient,
        server: &mut ServerProcess,
        rng: &mut StdRng,
        prefix: &str,
    ) -> anyhow::Result<()> {
        let threads = if rng.gen_bool(0.5) {
            1
        } else {
            rng.gen_range(2..=CLIENT_THREADS_MAX)
        };
        if threads > 1 {
            self.concurrent_cycles += 1;
        }
        let kill_after = Duration::from_millis(rng.gen_range(0..=KILL_AFTER_MS_MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (client, stop) = (client.clone(), stop.clone());
                let prefix = format!("{prefix}-t{t}");
                std::thread::spawn(move || burst(client, prefix, stop))
            })
            .collect();
        std::thread::sleep(kill_after);
        server.kill_hard();
        self.burst_time += started.elapsed();
        stop.store(true, Ordering::SeqCst);
        for handle in handles {
            let b = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
            self.burst_acknowledged += b.acknowledged.len() as u64;
            for sent in b.acknowledged {
                self.sent_texts.insert(sent.text.clone());
                self.acknowledged.push(sent);
            }
            if let Some(sent) = b.in_flight {
                self.sent_texts.insert(sent.text.clone());
                self.pending.push(sent);
            }
        }
        Ok(())
    }

    /// After the last cycle: every acknowledged note against a full re-read.
    fn check_all(&mut self, counts: &BTreeMap<String, usize>) {
        for sent in &self.acknowledged {
            match counts.get(&sent.text) {
                None => {
                    self.lost_keys.insert(sent.key.clone());
                }
                Some(n) if *n > 1 => {
                    self.duplicated_texts.insert(sent.text.clone());
                }
                Some(_) => {}
            }
        }
        self.checked = self.acknowledged.len();
    }

    fn results(&self) -> Vec<BenchResult> {
        let mut ready = self.ready_after.clone();
        let ready_ms_p50 = if ready.is_empty() {
            f64::NAN
        } else {
            median(&mut ready).as_secs_f64() * 1e3
        };
        let burst_s = self.burst_time.as_secs_f64();
        let appends_per_s = if burst_s > 0.0 {
            self.burst_acknowledged as f64 / burst_s
        } else {
            0.0
        };
        vec![
            BenchResult::absolute("crash_cycles", "cycles", self.cycles_run as f64, true, None),
            BenchResult::absolute(
                "acknowledged_appends",
                "appends",
                self.acknowledged.len() as f64,
                true,
                None,
            ),
            BenchResult::absolute(
                "lost_acknowledged_appends",
                "appends",
                self.lost_keys.len() as f64,
                false,
                Some(0.0),
            ),
            BenchResult::absolute(
                "duplicated_appends",
                "appends",
                self.duplicated_texts.len() as f64,
                false,
                Some(0.0),
            ),
            BenchResult::absolute("restart_to_ready_p50", "ms", ready_ms_p50, false, None),
            BenchResult::absolute(
                "appends_under_kills",
                "appends/s",
                appends_per_s,
                true,
                None,
            ),
        ]
    }

    fn summary(&self, elapsed: Duration) -> String {
        format!(
            "{} kill -9 cycles in {:.1} s: {} notes acknowledged ({} lost, {} duplicated), {} \
             cycles with concurrent clients; retried in-flight requests: {} had committed \
             before the kill, {} had not",
            self.cycles_run,
            elapsed.as_secs_f64(),
            self.acknowledged.len(),
            self.lost_keys.len(),
            self.duplicated_texts.len(),
            self.concurrent_cycles,
            self.retried_committed,
            self.retried_new
        )
    }

    /// Every broken promise, in one message; `None` when the run passed.
    fn failure(&self, broken: Option<anyhow::Error>) -> Option<String> {
        let mut problems = Vec::new();
        if let Some(e) = broken {
            problems.push(format!("{e:#}"));
        }
        if !self.lost_keys.is_empty() {
            problems.push(format!(
                "{} acknowledged notes are missing (keys {:?})",
                self.lost_keys.len(),
                examples(&self.lost_keys)
            ));
        }
        if !self.duplicated_texts.is_empty() {
            problems.push(format!(
                "{} notes are recorded more than once ({:?})",
                self.duplicated_texts.len(),
                examples(&self.duplicated_texts)
            ));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// The first `FAILURE_EXAMPLES_MAX` items.
fn examples(items: &BTreeSet<String>) -> Vec<&str> {
    items
        .iter()
        .take(FAILURE_EXAMPLES_MAX)
        .map(String::as_str)
        .collect()
}

/// Cycles `0..cycles` start the server, retry, check, append and kill; cycle `cycles` checks
/// and then stops the server cleanly.
fn run_cycles(
    setup: &Setup,
    cycles: u64,
    rng: &mut StdRng,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let progress = std::io::stderr().is_terminal();
    let mut notes = NoteIndex::default();
    for cycle in 0..=cycles {
        let context = || format!("cycle {cycle}");
        let mut server = setup.start_server(cycle).with_context(context)?;
        if cycle > 0 {
            tally.ready_after.push(server.ready_after());
        }
        let client = ApiClient::login(server.addr(), USER_ID, PASSWORD).with_context(context)?;
        tally.retry_pending(&client).with_context(context)?;
        notes.update(&client, cycle, tally).with_context(context)?;
        tally.check_new_acknowledged(&notes.counts);
        if cycle == cycles {
            return finish(setup, &mut server, &client, &notes, tally);
        }
        let prefix = format!("c{cycle}");
        tally
            .kill_during_bursts(&client, &mut server, rng, &prefix)
            .with_context(|| format!("cycle {cycle} (server log {})", log_of(setup, cycle)))?;
        // The database exactly as the crash left it (WAL not checkpointed) verifies.
        setup
            .verify()
            .with_context(|| format!("cycle {cycle}: ledger verify after kill -9"))?;
        tally.cycles_run += 1;
        if progress {
            eprint!("\rbench crash: cycle {}/{cycles}", cycle + 1);
        }
    }
    Ok(())
}

fn log_of(setup: &Setup, cycle: u64) -> String {
    setup
        .log_dir()
        .join(format!("server-{cycle}.stderr"))
        .display()
        .to_string()
}

/// After the last cycle: a full re-read agrees, every acknowledged note is there once, the
/// clean stop succeeds and its final checkpoint covers every record.
fn finish(
    setup: &Setup,
    server: &mut ServerProcess,
    client: &ApiClient,
    notes: &NoteIndex,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let counts = note_counts(client)?;
    anyhow::ensure!(
        counts == notes.counts,
        "the final full re-read disagrees with reading the stream cycle by cycle"
    );
    tally.check_all(&counts);
    let status = server.terminate()?;
    anyhow::ensure!(
        status.success(),
        "the clean stop of server {} after the last cycle exited with {status}\n{}",
        server.pid(),
        server.stderr_text()
    );
    let report = setup
        .verify()
        .context("ledger verify after the clean stop")?;
    anyhow::ensure!(
        report["verified_checkpoint_size"] == report["records_checked"],
        "after a clean stop the last checkpoint must cover every record: {report}"
    );
    Ok(())
}
