//! Leases in PostgreSQL: one row per device in `device_leases`, shared by every
//! controller process on the database. The rule of [`crate::lease::decide`] runs as one
//! `INSERT ... ON CONFLICT DO UPDATE ... WHERE` statement: PostgreSQL locks the row and
//! re-checks the condition against the newest version, so two processes racing for a lease
//! cannot both win.

use postgres::{Client, NoTls, Row};
use time::{Duration, OffsetDateTime};

use crate::lease::{Lease, LeaseDecision, LeaseError, LeaseStore, validate};

/// Advisory lock key that serializes creating the table ("lease" in ASCII).
const SCHEMA_LOCK_KEY: i64 = 0x6c_6561_7365;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS device_leases (
    device TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at_unix_ms BIGINT NOT NULL,
    ttl_ms BIGINT NOT NULL,
    -- Whether the last write renewed the holder's live lease (same epoch).
    renewed BOOLEAN NOT NULL DEFAULT FALSE
)";

/// Takes the lease when there is none, renews the caller's live lease (same epoch), takes
/// a lapsed one (epoch + 1); returns nothing when another holder's lease is live.
const ACQUIRE: &str = "
INSERT INTO device_leases AS l (device, holder, epoch, expires_at_unix_ms, ttl_ms)
VALUES ($1, $2, 1, $4, $5)
ON CONFLICT (device) DO UPDATE SET
    holder = EXCLUDED.holder,
    epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at_unix_ms > $3
                 THEN l.epoch ELSE l.epoch + 1 END,
    expires_at_unix_ms = EXCLUDED.expires_at_unix_ms,
    ttl_ms = EXCLUDED.ttl_ms,
    renewed = (l.holder = EXCLUDED.holder AND l.expires_at_unix_ms > $3)
WHERE l.expires_at_unix_ms <= $3 OR l.holder = EXCLUDED.holder
RETURNING epoch, renewed";

/// The lease row before the statement, to tell a renewal from a take-over.
const CURRENT: &str =
    "SELECT device, holder, epoch, expires_at_unix_ms, ttl_ms FROM device_leases WHERE device = $1";

/// Leases on a PostgreSQL database.
pub struct PgLeaseStore {
    client: Client,
}

impl std::fmt::Debug for PgLeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgLeaseStore")
    }
}

fn unavailable(e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Unavailable(e.to_string())
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_unix_ms(ms: i64) -> Result<OffsetDateTime, LeaseError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| unavailable(format!("stored expires_at_unix_ms {ms} is invalid: {e}")))
}

fn lease_from_row(row: &Row) -> Result<Lease, LeaseError> {
    let epoch: i64 = row.get(2);
    Ok(Lease {
        device: row.get(0),
        holder: row.get(1),
        epoch: u64::try_from(epoch)
            .map_err(|_| unavailable(format!("stored epoch {epoch} is negative")))?,
        expires_at: from_unix_ms(row.get(3))?,
        ttl: Duration::milliseconds(row.get(4)),
    })
}

impl PgLeaseStore {
    /// Connects to `url` (`postgres://...`) and creates the lease table if it is missing.
    pub fn connect(url: &str) -> Result<PgLeaseStore, LeaseError> {
        let mut client = Client::connect(url, NoTls).map_err(unavailable)?;
        let mut tx = client.transaction().map_err(unavailable)?;
        // Two processes creating the table at once would collide on the catalog.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
            .map_err(unavailable)?;
        tx.batch_execute(SCHEMA).map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(PgLeaseStore { client })
    }
}

impl LeaseStore for PgLeaseStore {
    fn acquire(
        &mut self,
        device: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LeaseDecision, LeaseError> {
        validate(device, holder, ttl)?;
        let expires_at = now + ttl;
        let ttl_ms = ttl.whole_milliseconds() as i64;
        let rows = self
            .client
            .query(
                ACQUIRE,
                &[
                    &device,
                    &holder,
                    &unix_ms(now),
                    &unix_ms(expires_at),
                    &ttl_ms,
                ],
            )
            .map_err(unavailable)?;
        let Some(row) = rows.first() else {
            let current = self.current(device)?.ok_or_else(|| {
                unavailable("the lease row vanished; no lease row is ever deleted")
            })?;
            return Ok(LeaseDecision::HeldBy(current));
        };
        let epoch: i64 = row.get(0);
        let renewed: bool = row.get(1);
        let lease = Lease {
            device: device.to_string(),
            holder: holder.to_string(),
            epoch: u64::try_from(epoch).map_err(|_| unavailable("negative epoch"))?,
            expires_at: from_unix_ms(unix_ms(expires_at))?,
            ttl,
        };
        Ok(if renewed {
            LeaseDecision::Renewed(lease)
        } else {
            LeaseDecision::Acquired(lease)
        })
    }

    fn release(&mut self, lease: &Lease) -> Result<(), LeaseError> {
        self.client
            .execute(
                "UPDATE device_leases SET expires_at_unix_ms = 0
                 WHERE device = $1 AND holder = $2 AND epoch = $3",
                &[&lease.device, &lease.holder, &(lease.epoch as i64)],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    fn current(&mut self, device: &str) -> Result<Option<Lease>, LeaseError> {
        let rows = self
            .client
            .query(CURRENT, &[&device])
            .map_err(unavailable)?;
        rows.first().map(lease_from_row).transpose()
    }
}
