use cellops_domain::{SimClock, Timestamp};
use cellops_ledger::{AppendRequest, Backend, EventCatalog, Ledger, LedgerConfig, NewRecord};
use std::sync::Arc;

pub fn catalog() -> EventCatalog {
    EventCatalog::new()
        .with("note.recorded", 1)
        .with("batch.started", 1)
}

pub fn clock() -> Arc<SimClock> {
    Arc::new(SimClock::new(
        Timestamp::from_unix_us(1_764_000_000_000_000).unwrap(),
    ))
}

pub fn config(every: u64) -> LedgerConfig {
    let mut c = LedgerConfig::new(catalog());
    c.checkpoint_every_records = every;
    c.checkpoint_every_seconds = 3600;
    c.origin = "test.cellops/ledger".into();
    c
}

pub fn note(stream: &str, text: &str) -> NewRecord {
    NewRecord::new(
        stream,
        "note.recorded",
        1,
        serde_json::json!({ "text": text }),
        "alice",
        "cpc-kyoto",
    )
}

pub fn one(record: NewRecord) -> AppendRequest {
    AppendRequest {
        records: vec![record],
        idempotency_key: None,
    }
}

/// A database for one test: a file in a temp dir, or a fresh PostgreSQL database that is
/// dropped afterwards.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

pub fn admin_url() -> String {
    std::env::var("CELLOPS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            pg_name: None,
        }
    }

    /// A fresh PostgreSQL database. Panics when the server is unreachable, unless
    /// CELLOPS_SKIP_POSTGRES=1 says so loudly (CI never sets it).
    pub fn postgres() -> Option<TestDb> {
        let admin = admin_url();
        let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(c) => c,
            Err(e) if std::env::var("CELLOPS_SKIP_POSTGRES").as_deref() == Ok("1") => {
                eprintln!("SKIPPING PostgreSQL test: {e} (CELLOPS_SKIP_POSTGRES=1)");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL at {admin} is unreachable ({e}); start it, set CELLOPS_TEST_POSTGRES, or set CELLOPS_SKIP_POSTGRES=1 to skip loudly"
            ),
        };
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "cellops_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            rand::random::<u32>()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        Some(TestDb {
            url: format!("{base}/{name}"),
            _dir: None,
            pg_name: Some(name),
        })
    }

    pub fn open<B: Backend>(&self, every: u64) -> Ledger<B> {
        Ledger::<B>::open(&self.url, clock(), config(every)).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut c) = postgres::Client::connect(&admin_url(), postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Runs `sql` on the raw database, bypassing the ledger (to simulate an attacker with
/// database access). Drops the append-only triggers first, as such an attacker could.
pub fn tamper(db: &TestDb, sql: &str) {
    if db.url.starts_with("sqlite://") {
        let path = db.url.trim_start_matches("sqlite://");
        let c = rusqlite::Connection::open(path).unwrap();
        c.execute_batch(
            "DROP TRIGGER IF EXISTS ledger_records_no_update; DROP TRIGGER IF EXISTS ledger_records_no_delete; DROP TRIGGER IF EXISTS ledger_checkpoints_no_update; DROP TRIGGER IF EXISTS ledger_checkpoints_no_delete;",
        )
        .unwrap();
        c.execute_batch(sql).unwrap();
    } else {
        let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
        c.batch_execute(
            "ALTER TABLE ledger_records DISABLE TRIGGER ALL; ALTER TABLE ledger_checkpoints DISABLE TRIGGER ALL;",
        )
        .unwrap();
        c.batch_execute(sql).unwrap();
        c.batch_execute(
            "ALTER TABLE ledger_records ENABLE TRIGGER ALL; ALTER TABLE ledger_checkpoints ENABLE TRIGGER ALL;",
        )
        .unwrap();
    }
}

/// Runs `sql` WITHOUT disabling the triggers (to show they refuse).
pub fn raw(db: &TestDb, sql: &str) -> Result<(), String> {
    if db.url.starts_with("sqlite://") {
        let path = db.url.trim_start_matches("sqlite://");
        let c = rusqlite::Connection::open(path).unwrap();
        c.execute_batch(sql).map_err(|e| e.to_string())
    } else {
        let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
        c.batch_execute(sql).map_err(|e| match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        })
    }
}
