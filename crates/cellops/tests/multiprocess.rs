//! Several `cellops serve` processes on one PostgreSQL database (Foundation issue, item 3):
//! four servers append concurrently and the ledger stays one gap-free, verifiable chain with
//! every note exactly once.
//!
//! Needs a PostgreSQL server (`$CELLOPS_TEST_POSTGRES`, default the local one with trust
//! auth); fails loudly when it is unreachable unless `CELLOPS_SKIP_POSTGRES=1`.

mod common;

use common::{Client, PgDb, Server};
use std::collections::BTreeSet;
use std::time::Instant;

/// Server processes sharing the database.
const SERVERS: usize = 4;
/// Appends sent to each server.
const APPENDS_PER_SERVER: usize = 2_000;
/// Client threads per server (each sends `APPENDS_PER_SERVER / CLIENTS_PER_SERVER`).
const CLIENTS_PER_SERVER: usize = 4;
/// Each server signs a checkpoint after this many records.
const CHECKPOINT_EVERY_RECORDS: u64 = 500;

/// Of server 0's appends, these are sent last, after the others finished; then server 0 is
/// killed (-9), so only the other servers' clean stops can cover them with a checkpoint.
const TAIL_APPENDS: usize = 3;

const _: () = assert!(APPENDS_PER_SERVER.is_multiple_of(CLIENTS_PER_SERVER));
const _: () = assert!(TAIL_APPENDS < APPENDS_PER_SERVER / CLIENTS_PER_SERVER);

/// Appends one note through `client`; panics unless it is acknowledged. Returns its text.
fn append(client: &Client, server: usize, label: &str) -> String {
    let text = format!("multiprocess note server {server} {label}");
    let key = format!("mp-{server}-{label}");
    let stream = format!("note/mp-{server}");
    let r = client
        .post_note(&stream, &text, Some(&key))
        .unwrap_or_else(|e| panic!("server {server}: POST {key} failed: {e}"));
    assert_eq!(r.status, 200, "server {server}: POST {key}: {}", r.text());
    text
}

#[test]
fn four_servers_append_to_one_gap_free_verifiable_ledger() {
    let Some(db) = PgDb::create() else { return };
    let logs = tempfile::tempdir().expect("log dir");
    common::add_user(&db.url);
    let user_records: i64 = db
        .client()
        .query_one("SELECT count(*) FROM ledger_records", &[])
        .expect("count the user's records")
        .get(0);

    let every = CHECKPOINT_EVERY_RECORDS.to_string();
    // Start all four at once: they race to migrate the same empty schema.
    let starters: Vec<_> = (0..SERVERS)
        .map(|_| {
            let url = db.url.clone();
            let every = every.clone();
            let dir = logs.path().to_path_buf();
            std::thread::spawn(move || {
                Server::start(&url, &["--checkpoint-every-records", &every], &dir)
            })
        })
        .collect();
    let mut servers: Vec<Server> = starters
        .into_iter()
        .map(|h| h.join().expect("a server started"))
        .collect();

    let clients: Vec<Client> = servers
        .iter()
        .map(|server| Client::login_test_user(server.addr))
        .collect();
    let started = Instant::now();
    let mut workers = Vec::new();
    for (s, client) in clients.iter().enumerate() {
        for t in 0..CLIENTS_PER_SERVER {
            let client = client.clone();
            let count = APPENDS_PER_SERVER / CLIENTS_PER_SERVER
                - if s == 0 && t == 0 { TAIL_APPENDS } else { 0 };
            workers.push(std::thread::spawn(move || {
                (0..count)
                    .map(|i| append(&client, s, &format!("client {t} #{i}")))
                    .collect::<Vec<String>>()
            }));
        }
    }
    let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
    if results.iter().any(|r| r.is_err()) {
        for (s, server) in servers.iter_mut().enumerate() {
            eprintln!(
                "server {s} (pid {}, running: {}) stderr:\n{}",
                server.pid(),
                server.is_running(),
                server.stderr_text()
            );
        }
        panic!("a client thread failed (see above)");
    }
    let mut sent = BTreeSet::new();
    for texts in results.into_iter().flatten() {
        for text in texts {
            assert!(sent.insert(text), "texts are unique");
        }
    }
    for i in 0..TAIL_APPENDS {
        assert!(sent.insert(append(&clients[0], 0, &format!("tail #{i}"))));
    }
    let append_s = started.elapsed().as_secs_f64();
    assert_eq!(sent.len(), SERVERS * APPENDS_PER_SERVER);

    // Server 0 dies without a final checkpoint; the others stop cleanly, and each signs a
    // checkpoint over everything in the database, server 0's tail included.
    servers[0].kill_hard();
    for server in &mut servers[1..] {
        let status = server.terminate();
        assert!(
            status.success(),
            "server {} stopped with {status}\nstdout:\n{}\nstderr:\n{}",
            server.pid(),
            server.stdout_text(),
            server.stderr_text()
        );
    }

    // The table itself: seq 1..N without gaps, every note exactly once.
    let mut pg = db.client();
    let rows = pg
        .query(
            "SELECT seq, event_type, entry FROM ledger_records ORDER BY seq",
            &[],
        )
        .expect("read ledger_records");
    let total = rows.len();
    let mut notes = BTreeSet::new();
    let mut logins = 0;
    for (i, row) in rows.iter().enumerate() {
        let seq: i64 = row.get(0);
        assert_eq!(seq, i as i64 + 1, "seq is gap-free from 1");
        let event_type: String = row.get(1);
        if event_type == "auth.login" {
            logins += 1;
        }
        if event_type == "note.recorded" {
            // The entry column holds the record as canonical JSON.
            let entry: String = row.get(2);
            let entry: serde_json::Value = serde_json::from_str(&entry).expect("entry is JSON");
            let text = entry["payload"]["text"]
                .as_str()
                .expect("note text")
                .to_string();
            assert!(sent.contains(&text), "unexpected note {text:?}");
            assert!(notes.insert(text.clone()), "note recorded twice: {text:?}");
        }
    }
    assert_eq!(
        notes.len(),
        SERVERS * APPENDS_PER_SERVER,
        "every note exactly once"
    );
    // Besides the notes: the user's records from `user add` and one login per server.
    assert_eq!(logins, SERVERS, "one login per server");
    assert_eq!(
        total,
        user_records as usize + SERVERS + SERVERS * APPENDS_PER_SERVER,
        "nothing but the user, the logins and the notes"
    );

    let (code, report, out) = common::verify_json(&db.url);
    assert_eq!(code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(report["problem"].is_null(), "{report}");
    assert_eq!(report["records_checked"], total as u64, "{report}");
    let checkpoints = report["checkpoints_checked"].as_u64().unwrap_or(0);
    assert!(
        checkpoints >= total as u64 / CHECKPOINT_EVERY_RECORDS,
        "at least one checkpoint per {CHECKPOINT_EVERY_RECORDS} records: {report}"
    );
    assert_eq!(
        report["verified_checkpoint_size"], total as u64,
        "a clean stop signs over every record, also those another process appended: {report}"
    );
    // The human-readable form says the same.
    let text = common::cellops(&["ledger", "verify", "--database", &db.url], None);
    text.expect_code(0, "ledger verify");
    assert!(
        text.stdout.starts_with(&format!(
            "OK: {total} records, {checkpoints} checkpoints verified"
        )),
        "{}",
        text.stdout
    );
    println!(
        "{} appends through {SERVERS} servers in {append_s:.1} s ({:.0}/s); {total} records, \
         {checkpoints} checkpoints",
        sent.len(),
        sent.len() as f64 / append_s
    );
}
