//! Leases on the real PostgreSQL: the rule, and exactly one holder across processes.

use std::process::Command;

use cellops_controller::{LeaseDecision, LeaseStore, PgLeaseStore};
use time::{Duration, OffsetDateTime};

use crate::support::t0;

/// Set in child processes of `leases_admit_one_holder_across_processes`.
const CHILD_ENV: &str = "CELLOPS_LEASE_CHILD";
const ROUNDS: u32 = 150;
const TTL: Duration = Duration::seconds(10);

fn admin_url() -> String {
    std::env::var("CELLOPS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh database, dropped afterwards.
struct TestDb {
    url: String,
    name: String,
}

impl TestDb {
    fn new() -> TestDb {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "cellops_lease_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let admin = admin_url();
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin} is unreachable ({e}); start it or set CELLOPS_TEST_POSTGRES"
            )
        });
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        TestDb {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn at(s: i64) -> OffsetDateTime {
    t0() + Duration::seconds(s)
}

#[test]
fn pg_leases_follow_the_lease_rule() {
    let db = TestDb::new();
    let mut a = PgLeaseStore::connect(&db.url).unwrap();
    let mut b = PgLeaseStore::connect(&db.url).unwrap();
    let ttl = Duration::seconds(30);
    assert!(
        matches!(a.acquire("bio-1", "a", at(0), ttl).unwrap(), LeaseDecision::Acquired(l) if l.epoch == 1)
    );
    assert!(
        matches!(b.acquire("bio-1", "b", at(29), ttl).unwrap(), LeaseDecision::HeldBy(l) if l.holder == "a")
    );
    assert!(
        matches!(a.acquire("bio-1", "a", at(20), ttl).unwrap(), LeaseDecision::Renewed(l) if l.epoch == 1)
    );
    // a's lease now runs to 50: b gets it only then, with a new epoch.
    assert!(matches!(
        b.acquire("bio-1", "b", at(49), ttl).unwrap(),
        LeaseDecision::HeldBy(_)
    ));
    let LeaseDecision::Acquired(lb) = b.acquire("bio-1", "b", at(50), ttl).unwrap() else {
        panic!("b must take the lapsed lease")
    };
    assert_eq!(lb.epoch, 2);
    assert!(
        matches!(a.acquire("bio-1", "a", at(51), ttl).unwrap(), LeaseDecision::HeldBy(l) if l.holder == "b")
    );
    // Another device is independent.
    assert!(
        matches!(a.acquire("bio-2", "a", at(51), ttl).unwrap(), LeaseDecision::Acquired(l) if l.epoch == 1)
    );
    // Release by a stale holder does nothing; by the holder it frees the lease at once.
    let stale = cellops_controller::Lease {
        holder: "a".into(),
        ..lb.clone()
    };
    a.release(&stale).unwrap();
    assert!(matches!(
        a.acquire("bio-1", "a", at(52), ttl).unwrap(),
        LeaseDecision::HeldBy(_)
    ));
    b.release(&lb).unwrap();
    assert!(
        matches!(a.acquire("bio-1", "a", at(53), ttl).unwrap(), LeaseDecision::Acquired(l) if l.epoch == 3)
    );
    // Bad input names the field.
    let e = a.acquire("", "a", at(54), ttl).unwrap_err();
    assert!(e.to_string().contains("device"), "{e}");
}

/// Entry point of the child processes (does nothing in a normal test run): races for the
/// lease on one device through its own connection, round after round, and prints each
/// outcome as `round decision epoch`.
#[test]
fn lease_race_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, holder) = spec
        .split_once(' ')
        .expect("CELLOPS_LEASE_CHILD is `<url> <holder>`");
    let mut store = PgLeaseStore::connect(url).unwrap();
    for round in 0..ROUNDS {
        // Rounds are two TTLs apart: every round starts with a lapsed lease.
        let now = t0() + TTL * (2 * round as i32);
        let outcome = match store.acquire("bio-race", holder, now, TTL).unwrap() {
            LeaseDecision::Acquired(l) => format!("acquired {}", l.epoch),
            LeaseDecision::Renewed(l) => format!("renewed {}", l.epoch),
            LeaseDecision::HeldBy(l) => format!("held {}", l.epoch),
        };
        println!("RACE {round} {outcome}");
    }
}

#[test]
fn leases_admit_one_holder_across_processes() {
    let db = TestDb::new();
    // Create the table first so the children only race for the lease.
    PgLeaseStore::connect(&db.url).unwrap();
    let exe = std::env::current_exe().unwrap();
    // All children start before any is awaited, so they race.
    let running: Vec<_> = ["proc-a", "proc-b", "proc-c"]
        .iter()
        .map(|holder| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "lease_pg::lease_race_child_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{} {holder}", db.url))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut winners = vec![Vec::new(); ROUNDS as usize];
    for child in running {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        // libtest may print its own `test … ` prefix on the first line.
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|l| l.find("RACE ").map(|i| &l[i..]))
            .collect();
        assert_eq!(
            lines.len(),
            ROUNDS as usize,
            "each child reports every round"
        );
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            let round: usize = parts[1].parse().unwrap();
            assert_ne!(
                parts[2], "renewed",
                "a lapsed lease is never renewed: {line}"
            );
            if parts[2] == "acquired" {
                winners[round].push(parts[3].parse::<u64>().unwrap());
            }
        }
    }
    // At each instant at most one process holds the lease, and every grant has its own,
    // rising epoch.
    let mut epochs: Vec<u64> = Vec::new();
    for (round, w) in winners.iter().enumerate() {
        assert!(
            w.len() <= 1,
            "round {round}: {} processes acquired the lease",
            w.len()
        );
        epochs.extend(w);
    }
    assert!(!epochs.is_empty());
    let mut sorted = epochs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        epochs.len(),
        "an epoch was granted twice: {epochs:?}"
    );
}
