//! `--database URL` handling shared by every command that opens the store: the default is
//! the embedded SQLite file in the data directory. The backend is chosen here, once.

use std::path::PathBuf;

/// The data directory: `$CELLOPS_DATA_DIR`, else `$HOME/.local/share/cellops`, else
/// `./cellops-data`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CELLOPS_DATA_DIR") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/cellops"),
        None => PathBuf::from("cellops-data"),
    }
}

/// The database URL to use: the one given, else the embedded default.
pub fn url(given: Option<String>) -> String {
    given.unwrap_or_else(|| format!("sqlite://{}", data_dir().join("cellops.db").display()))
}

/// Refuses a SQLite URL whose file does not exist: reading commands (verify, export,
/// proof) must not create an empty database by mistake.
pub fn require_existing(url: &str) -> anyhow::Result<()> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let path = rest.split('?').next().unwrap_or(rest);
        // An empty path is the URL parser's to explain.
        if !path.is_empty() && !std::path::Path::new(path).exists() {
            anyhow::bail!(
                "no database at {path}: give --database sqlite://PATH of an existing ledger"
            );
        }
    }
    Ok(())
}

/// Calls `$body` with the backend type `$B` chosen from the URL scheme.
#[macro_export]
macro_rules! with_backend {
    ($url:expr, $B:ident => $body:expr) => {
        match cellops_ledger::BackendKind::of_url($url)? {
            cellops_ledger::BackendKind::Sqlite => {
                type $B = cellops_ledger::sqlite::Sqlite;
                $body
            }
            cellops_ledger::BackendKind::Postgres => {
                type $B = cellops_ledger::postgres::Postgres;
                $body
            }
        }
    };
}

/// The ledger configuration of this build.
pub fn ledger_config(
    checkpoint_every_records: u64,
    checkpoint_every_seconds: u64,
) -> cellops_ledger::LedgerConfig {
    let mut config = cellops_ledger::LedgerConfig::new(cellops_server::event_catalog());
    config.checkpoint_every_records = checkpoint_every_records;
    config.checkpoint_every_seconds = checkpoint_every_seconds;
    config
}
