//! Crash safety of the real server process (Foundation issue, item 9).
//!
//! `acknowledged_notes_survive_kill_9`: append notes over HTTP, `kill -9` the server at
//! seeded random moments, restart it, and check that every acknowledged note is present
//! exactly once and that `cellops ledger verify` passes on what the crash left behind.
//! Requests in flight at the kill are retried with the same Idempotency-Key after the
//! restart and must end up recorded exactly once.
//!
//! Knobs (a test takes no flags, so these are environment variables):
//! - `CELLOPS_CRASH_CYCLES=1000` runs 1,000 kill/restart cycles instead of the CI default
//!   (`CRASH_CYCLES_DEFAULT`), e.g.
//!   `CELLOPS_CRASH_CYCLES=1000 cargo test -p cellops --test crash -- --nocapture`;
//! - `CELLOPS_SEED=N` replays a run (every run prints its seed).
//!
//! `a_full_disk_refuses_appends_and_records_nothing_partial`: a SQLite quota
//! (`?max_page_count=N`) makes the database fill up; appends then fail with HTTP 507, the
//! server keeps serving, and the ledger stays intact and verifiable.

mod common;

use common::{Client, Server, SqliteDb};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Kill/restart cycles when `CELLOPS_CRASH_CYCLES` is not set.
const CRASH_CYCLES_DEFAULT: u64 = 30;
/// Longest time a burst of appends runs before the kill, in ms.
const KILL_AFTER_MS_MAX: u64 = 300;
/// Most client threads appending at once (several make the writer group commits).
const CLIENT_THREADS_MAX: usize = 4;
/// Bound on the notes one client thread sends in one burst.
const NOTES_PER_THREAD_MAX: usize = 100_000;
/// The stream the crash test writes to.
const STREAM: &str = "note/crash";

fn crash_cycles() -> u64 {
    match std::env::var("CELLOPS_CRASH_CYCLES") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CELLOPS_CRASH_CYCLES={s:?} is not a whole number")),
        Err(_) => CRASH_CYCLES_DEFAULT,
    }
}

/// One POST /api/notes as sent: its idempotency key and text.
#[derive(Debug, Clone)]
struct Sent {
    key: String,
    text: String,
}

/// What one client thread saw in one burst.
#[derive(Default)]
struct Burst {
    acknowledged: Vec<Sent>,
    /// The request that got no complete answer (the server died under it), if any.
    in_flight: Option<Sent>,
}

/// Appends notes until the server stops answering (it is killed) or `stop` is set.
fn burst(client: Client, prefix: String, stop: Arc<AtomicBool>) -> Burst {
    let mut out = Burst::default();
    for i in 0..NOTES_PER_THREAD_MAX {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let key = format!("{prefix}-n{i}");
        let sent = Sent {
            text: format!("crash-test note {key}"),
            key,
        };
        match client.post_note(STREAM, &sent.text, Some(&sent.key)) {
            Ok(r) if r.status == 200 => {
                let body = r.json();
                assert_eq!(body["record"]["payload"]["text"], sent.text.as_str());
                assert_eq!(body["replayed"], false, "a new key was replayed: {body}");
                out.acknowledged.push(sent);
            }
            Ok(r) => panic!(
                "POST /api/notes {} answered {} while the server was alive: {}",
                sent.key,
                r.status,
                r.text()
            ),
            Err(_) => {
                out.in_flight = Some(sent);
                break;
            }
        }
    }
    out
}

/// Re-read the whole stream (instead of only the new records) every this many cycles.
const FULL_RECOUNT_EVERY_CYCLES: u64 = 25;

/// The count of each note text in the stream.
fn note_counts(client: &Client) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for text in client.note_texts(STREAM) {
        *counts.entry(text).or_insert(0) += 1;
    }
    counts
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
    fn update(&mut self, client: &Client, cycle: u64, seed: u64) {
        let size = client.ledger_size();
        assert!(
            size >= self.ledger_size_min,
            "cycle {cycle} (seed {seed}): the ledger shrank from {} to {size} records",
            self.ledger_size_min
        );
        self.ledger_size_min = size;
        for r in client.stream_records_after(STREAM, self.last_seq) {
            self.last_seq = r["seq"].as_u64().expect("seq");
            if r["type"] == "note.recorded" {
                let text = r["payload"]["text"].as_str().expect("note text");
                *self.counts.entry(text.to_string()).or_insert(0) += 1;
            }
        }
        if cycle.is_multiple_of(FULL_RECOUNT_EVERY_CYCLES) {
            assert_eq!(
                note_counts(client),
                self.counts,
                "cycle {cycle} (seed {seed}): re-reading the whole stream disagrees"
            );
        }
    }
}

/// (a) every acknowledged note exactly once, and nothing in the stream that was not sent.
fn check_exactly_once(
    counts: &BTreeMap<String, usize>,
    acknowledged: &[Sent],
    sent_texts: &BTreeSet<String>,
    cycle: u64,
    seed: u64,
) {
    for s in acknowledged {
        let n = counts.get(&s.text).copied().unwrap_or(0);
        assert_eq!(
            n, 1,
            "cycle {cycle} (seed {seed}): acknowledged note {} is present {n} times",
            s.key
        );
    }
    for (text, n) in counts {
        assert!(
            sent_texts.contains(text),
            "cycle {cycle} (seed {seed}): the ledger holds a note nobody sent: {text:?}"
        );
        assert_eq!(
            *n, 1,
            "cycle {cycle} (seed {seed}): note {text:?} is recorded {n} times"
        );
    }
}

/// (b) `cellops ledger verify` on the database as it is now.
fn check_verifies(url: &str, cycle: u64, seed: u64) -> Value {
    let (code, report, out) = common::verify_json(url);
    assert_eq!(
        code,
        Some(0),
        "cycle {cycle} (seed {seed}): ledger verify failed after kill -9\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(report["problem"].is_null(), "{report}");
    report
}

#[test]
fn acknowledged_notes_survive_kill_9() {
    let seed = common::seed("acknowledged_notes_survive_kill_9");
    let cycles = crash_cycles();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let db = SqliteDb::new();
    let url = db.url();
    common::add_user(&url);

    let started = Instant::now();
    let mut acknowledged: Vec<Sent> = Vec::new();
    let mut sent_texts: BTreeSet<String> = BTreeSet::new();
    let mut pending: Vec<Sent> = Vec::new();
    let mut notes = NoteIndex::default();
    let (mut retried_committed, mut retried_new, mut concurrent_cycles) = (0u64, 0u64, 0u64);

    for cycle in 0..=cycles {
        let mut server = Server::start(&url, &[], db.dir.path());
        let client = Client::login_test_user(server.addr);

        // Idempotent retry of every request the last kill cut off: recorded exactly once,
        // whether or not the first attempt had committed before the kill.
        for s in pending.drain(..) {
            let r = client
                .post_note(STREAM, &s.text, Some(&s.key))
                .unwrap_or_else(|e| panic!("retry of {} failed: {e}", s.key));
            assert_eq!(r.status, 200, "retry of {}: {}", s.key, r.text());
            let body = r.json();
            assert_eq!(body["record"]["payload"]["text"], s.text.as_str());
            if body["replayed"] == true {
                retried_committed += 1;
            } else {
                retried_new += 1;
            }
            acknowledged.push(s);
        }
        notes.update(&client, cycle, seed);
        check_exactly_once(&notes.counts, &acknowledged, &sent_texts, cycle, seed);
        if cycle == cycles {
            assert_eq!(note_counts(&client), notes.counts, "final full re-read");
            // A clean stop after the last cycle signs a checkpoint over everything.
            let status = server.terminate();
            assert!(
                status.success(),
                "clean stop: {status}\n{}",
                server.stderr_text()
            );
            let report = check_verifies(&url, cycle, seed);
            assert_eq!(
                report["verified_checkpoint_size"], report["records_checked"],
                "after a clean stop the last checkpoint covers every record: {report}"
            );
            break;
        }

        let threads = if rng.gen_bool(0.5) {
            1
        } else {
            rng.gen_range(2..=CLIENT_THREADS_MAX)
        };
        if threads > 1 {
            concurrent_cycles += 1;
        }
        let kill_after = Duration::from_millis(rng.gen_range(0..=KILL_AFTER_MS_MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let client = client.clone();
                let stop = stop.clone();
                let prefix = format!("s{seed:x}-c{cycle}-t{t}");
                std::thread::spawn(move || burst(client, prefix, stop))
            })
            .collect();
        std::thread::sleep(kill_after);
        server.kill_hard();
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            let b = h.join().expect("a client thread panicked");
            for s in b.acknowledged {
                sent_texts.insert(s.text.clone());
                acknowledged.push(s);
            }
            if let Some(s) = b.in_flight {
                sent_texts.insert(s.text.clone());
                pending.push(s);
            }
        }
        // The database exactly as the crash left it (WAL not checkpointed) verifies.
        check_verifies(&url, cycle, seed);
    }
    println!(
        "{cycles} kill -9 cycles in {:.1} s: {} notes acknowledged, {concurrent_cycles} cycles \
         with concurrent clients; retried in-flight requests: {retried_committed} had committed \
         before the kill, {retried_new} had not",
        started.elapsed().as_secs_f64(),
        acknowledged.len()
    );
    assert!(
        acknowledged.len() as u64 >= cycles,
        "too few notes were acknowledged to test anything ({})",
        acknowledged.len()
    );
}

/// Pages the quota allows beyond what the database holds after `user add`: room for the
/// login and some notes, small enough to fill in well under a second of appends.
const QUOTA_HEADROOM_PAGES: u64 = 24;
/// Give up if the quota never fills (then it is not enforced).
const FULL_AFTER_NOTES_MAX: usize = 20_000;

#[test]
fn a_full_disk_refuses_appends_and_records_nothing_partial() {
    let db = SqliteDb::new();
    let url = db.url();
    common::add_user(&url);
    let quota_pages = db.page_count() + QUOTA_HEADROOM_PAGES;
    let capped = format!("{url}?max_page_count={quota_pages}");
    let stream = "note/full";

    let mut server = Server::start(&capped, &[], db.dir.path());
    let client = Client::login_test_user(server.addr);
    let mut acknowledged: Vec<Sent> = Vec::new();
    let mut refused: Option<(Sent, Value)> = None;
    for i in 0..FULL_AFTER_NOTES_MAX {
        let key = format!("full-{i}");
        let sent = Sent {
            text: format!("disk-full note {i} {}", "x".repeat(200)),
            key,
        };
        let r = client
            .post_note(stream, &sent.text, Some(&sent.key))
            .unwrap_or_else(|e| panic!("POST {} failed: {e}\n{}", sent.key, server.stderr_text()));
        match r.status {
            200 => acknowledged.push(sent),
            507 => {
                refused = Some((sent, r.json()));
                break;
            }
            other => panic!("POST {} answered {other}: {}", sent.key, r.text()),
        }
    }
    let (failed, body) = refused.unwrap_or_else(|| {
        panic!("{FULL_AFTER_NOTES_MAX} notes fit in a quota of {quota_pages} pages: not enforced")
    });
    assert!(
        !acknowledged.is_empty(),
        "the quota was full before the first note"
    );
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("full"), "{body}");
    assert!(
        message.contains("nothing of this request was recorded"),
        "{body}"
    );

    // The server keeps running and serving; further appends are refused the same way.
    assert!(server.is_running(), "the server died when the disk filled");
    let health = common::http(server.addr, "GET", "/health", &[], None).expect("GET /health");
    assert_eq!(health.status, 200, "{}", health.text());
    // (A note larger than the free space left in any page: a short one might still fit.)
    let again = client
        .post_note(stream, &"y".repeat(3_000), Some("full-again"))
        .expect("POST after full");
    assert_eq!(again.status, 507, "{}", again.text());

    // Nothing partial: every acknowledged note once, the refused ones absent.
    let texts = client.note_texts(stream);
    let expected: Vec<String> = acknowledged.iter().map(|s| s.text.clone()).collect();
    assert_eq!(
        texts, expected,
        "the stream holds exactly the acknowledged notes"
    );
    // A clean stop may fail to sign its final checkpoint (no space): that is reported, and
    // the records stay intact.
    let status = server.terminate();
    println!(
        "quota {quota_pages} pages: {} notes fitted; clean stop when full: {status}, {}",
        acknowledged.len(),
        server.stderr_text().trim()
    );
    drop(server);

    // Verifies without the cap, and the refused request goes through once space is back.
    let (code, report, out) = common::verify_json(&url);
    assert_eq!(code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(report["problem"].is_null(), "{report}");

    let server = Server::start(&url, &[], db.dir.path());
    let client = Client::login_test_user(server.addr);
    let r = client
        .post_note(stream, &failed.text, Some(&failed.key))
        .expect("retry after freeing space");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["replayed"],
        false,
        "the refused request must not have been recorded"
    );
    let mut expected = expected;
    expected.push(failed.text.clone());
    assert_eq!(client.note_texts(stream), expected);
    drop(server);
    let (code, _, out) = common::verify_json(&url);
    assert_eq!(code, Some(0), "{}\n{}", out.stdout, out.stderr);
}
