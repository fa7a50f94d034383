//! Crash safety of the real server process (Foundation issue, item 9).
//!
//! `acknowledged_notes_survive_kill_9` runs `cellops bench crash --cycles N --json`, which
//! appends notes over HTTP, `kill -9`s the server at seeded random moments, restarts it, and
//! checks that every acknowledged note is present exactly once and that `cellops ledger
//! verify` passes on what the crash left behind (see `src/bench_crash.rs`). Requests in
//! flight at the kill are retried with the same Idempotency-Key after the restart and must
//! end up recorded exactly once. The bench exits non-zero when any of that fails; the test
//! also checks its report.
//!
//! Knobs (a test takes no flags, so these are environment variables):
//! - `CELLOPS_CRASH_CYCLES=1000` runs 1,000 kill/restart cycles instead of the CI default
//!   (`CRASH_CYCLES_DEFAULT`), e.g.
//!   `CELLOPS_CRASH_CYCLES=1000 cargo test -p cellops --test crash -- --nocapture`, the
//!   same as `cellops bench crash --cycles 1000`;
//! - `CELLOPS_SEED=N` replays a run (every run prints its seed).
//!
//! `a_full_disk_refuses_appends_and_records_nothing_partial`: a SQLite quota
//! (`?max_page_count=N`) makes the database fill up; appends then fail with HTTP 507, the
//! server keeps serving, and the ledger stays intact and verifiable.

mod common;

use common::{Client, Server, SqliteDb};
use serde_json::Value;

/// Kill/restart cycles when `CELLOPS_CRASH_CYCLES` is not set.
const CRASH_CYCLES_DEFAULT: u64 = 30;

fn crash_cycles() -> u64 {
    match std::env::var("CELLOPS_CRASH_CYCLES") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CELLOPS_CRASH_CYCLES={s:?} is not a whole number")),
        Err(_) => CRASH_CYCLES_DEFAULT,
    }
}

/// The value of the result `name` in a bench report.
fn figure(report: &Value, name: &str) -> f64 {
    report["results"]
        .as_array()
        .expect("a results array")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result {name:?} in {report}"))["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("result {name:?} has no number: {report}"))
}

#[test]
fn acknowledged_notes_survive_kill_9() {
    let cycles = crash_cycles();
    // `CELLOPS_SEED`, when set, reaches the bench through the environment.
    let out = common::cellops(
        &["bench", "crash", "--cycles", &cycles.to_string(), "--json"],
        None,
    );
    // The seed, the replay line and the summary are on stderr.
    eprintln!("{}", out.stderr);
    out.expect_code(0, "cellops bench crash");
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("bench crash --json printed no JSON ({e}):\n{}", out.stdout));
    assert_eq!(report["bench"], "crash", "{report}");
    assert_eq!(figure(&report, "crash_cycles"), cycles as f64, "{report}");
    assert_eq!(
        figure(&report, "lost_acknowledged_appends"),
        0.0,
        "{report}"
    );
    assert_eq!(figure(&report, "duplicated_appends"), 0.0, "{report}");
    let acknowledged = figure(&report, "acknowledged_appends");
    assert!(
        acknowledged >= cycles as f64,
        "too few notes were acknowledged to test anything ({acknowledged}): {report}"
    );
    assert!(figure(&report, "restart_to_ready_p50") > 0.0, "{report}");
}

/// One POST /api/notes as sent: its idempotency key and text.
#[derive(Debug, Clone)]
struct Sent {
    key: String,
    text: String,
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
                refused = Some((sent, r.json().expect("a 507 answer is JSON")));
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
        r.json().expect("a 200 answer is JSON")["replayed"],
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
