//! Device leases: at most one controller commands a device at a time.
//!
//! A lease names the device, its holder (one controller instance), a fencing `epoch` and
//! when it expires. A holder renews it well before it expires; anyone may take an expired
//! lease, and taking it raises the epoch, so a controller that was paused past its expiry
//! sees a new epoch (or another holder) and knows it lost control in between.
//!
//! [`decide`] is the rule, pure; [`LeaseStore`] keeps leases where every controller
//! process sees them (`PgLeaseStore` on PostgreSQL applies the same rule in one atomic
//! statement; [`MemoryLeaseStore`] for one process and for tests).
//!
//! Time comes from each caller's clock: processes sharing a lease table must have clocks
//! that agree to well within [`LEASE_TTL_MIN`] (NTP), and a holder stops commanding at
//! [`Lease::usable_until`], a safety margin before expiry.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

/// Shortest lease a controller may ask for.
pub const LEASE_TTL_MIN: Duration = Duration::seconds(2);
/// Longest lease (a dead controller blocks its device at most this long).
pub const LEASE_TTL_MAX: Duration = Duration::minutes(10);
/// Longest device id or holder name, bytes.
pub const LEASE_NAME_BYTES_MAX: usize = 200;

/// A lease on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Device id.
    pub device: String,
    /// Controller instance holding it.
    pub holder: String,
    /// Fencing token: rises by one each time the lease changes hands or lapses.
    pub epoch: u64,
    /// When it expires unless renewed.
    pub expires_at: OffsetDateTime,
    /// How long it was granted for.
    pub ttl: Duration,
}

impl Lease {
    /// The holder commands the device only before this instant: one third of the lease
    /// before expiry, so clock skew and a slow last command cannot overlap a successor.
    pub fn usable_until(&self) -> OffsetDateTime {
        self.expires_at - self.ttl / 3
    }

    /// When the holder should renew: halfway through the lease.
    pub fn renew_at(&self) -> OffsetDateTime {
        self.expires_at - self.ttl / 2
    }
}

/// What [`decide`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// The caller now holds the lease (new epoch).
    Acquired(Lease),
    /// The caller already held it; it is extended (same epoch).
    Renewed(Lease),
    /// Someone else holds it.
    HeldBy(Lease),
}

/// A lease could not be taken or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The request itself is invalid.
    #[error("lease request invalid: {0}")]
    Invalid(String),
    /// The lease store did not answer; the caller cannot prove it holds any lease.
    #[error(
        "lease store unavailable: {0} (fix: check the database; controllers stop commanding until it answers)"
    )]
    Unavailable(String),
}

/// Checks names and ttl.
pub fn validate(device: &str, holder: &str, ttl: Duration) -> Result<(), LeaseError> {
    for (field, value) in [("device", device), ("holder", holder)] {
        if value.is_empty() || value.len() > LEASE_NAME_BYTES_MAX {
            return Err(LeaseError::Invalid(format!(
                "{field} must be 1..={LEASE_NAME_BYTES_MAX} bytes, got {}",
                value.len()
            )));
        }
    }
    if ttl < LEASE_TTL_MIN || ttl > LEASE_TTL_MAX {
        return Err(LeaseError::Invalid(format!(
            "ttl {ttl} must be within {LEASE_TTL_MIN}..={LEASE_TTL_MAX}"
        )));
    }
    Ok(())
}

/// The lease rule: `holder` gets (or keeps) the lease on `device` unless another holder's
/// lease is still unexpired at `now`. A lapsed lease, even the caller's own, comes back
/// with a new epoch.
pub fn decide(
    current: Option<&Lease>,
    device: &str,
    holder: &str,
    now: OffsetDateTime,
    ttl: Duration,
) -> LeaseDecision {
    let granted = |epoch: u64| Lease {
        device: device.to_string(),
        holder: holder.to_string(),
        epoch,
        expires_at: now + ttl,
        ttl,
    };
    match current {
        None => LeaseDecision::Acquired(granted(1)),
        Some(l) if l.expires_at > now && l.holder == holder => {
            LeaseDecision::Renewed(granted(l.epoch))
        }
        Some(l) if l.expires_at > now => LeaseDecision::HeldBy(l.clone()),
        Some(l) => LeaseDecision::Acquired(granted(l.epoch + 1)),
    }
}

/// Where leases live. Every method is atomic with respect to other callers.
pub trait LeaseStore: Send {
    /// Takes or renews the lease on `device` for `holder` (see [`decide`]).
    fn acquire(
        &mut self,
        device: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LeaseDecision, LeaseError>;

    /// Gives the lease up (only if `lease` is still the current one); the next controller
    /// need not wait for it to expire.
    fn release(&mut self, lease: &Lease) -> Result<(), LeaseError>;

    /// The lease on `device` as stored (possibly expired).
    fn current(&mut self, device: &str) -> Result<Option<Lease>, LeaseError>;
}

/// Leases in memory: for one process (SQLite deployments) and tests.
#[derive(Debug, Default)]
pub struct MemoryLeaseStore {
    leases: BTreeMap<String, Lease>,
}

impl LeaseStore for MemoryLeaseStore {
    fn acquire(
        &mut self,
        device: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LeaseDecision, LeaseError> {
        validate(device, holder, ttl)?;
        let decision = decide(self.leases.get(device), device, holder, now, ttl);
        if let LeaseDecision::Acquired(l) | LeaseDecision::Renewed(l) = &decision {
            self.leases.insert(device.to_string(), l.clone());
        }
        Ok(decision)
    }

    fn release(&mut self, lease: &Lease) -> Result<(), LeaseError> {
        if let Some(current) = self.leases.get_mut(&lease.device)
            && current.holder == lease.holder
            && current.epoch == lease.epoch
        {
            // Expire it now; the epoch stays so the next holder gets a higher one.
            current.expires_at = OffsetDateTime::UNIX_EPOCH;
        }
        Ok(())
    }

    fn current(&mut self, device: &str) -> Result<Option<Lease>, LeaseError> {
        Ok(self.leases.get(device).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_700_000_000 + s)
    }

    #[test]
    fn a_live_lease_excludes_others_and_a_lapsed_one_changes_epoch() {
        let ttl = Duration::seconds(30);
        let mut store = MemoryLeaseStore::default();
        let a = store.acquire("bio-1", "a", t(0), ttl).unwrap();
        assert!(matches!(a, LeaseDecision::Acquired(ref l) if l.epoch == 1));
        let b = store.acquire("bio-1", "b", t(29), ttl).unwrap();
        assert!(matches!(b, LeaseDecision::HeldBy(ref l) if l.holder == "a"));
        let a2 = store.acquire("bio-1", "a", t(20), ttl).unwrap();
        assert!(
            matches!(a2, LeaseDecision::Renewed(ref l) if l.epoch == 1 && l.expires_at == t(50))
        );
        let b2 = store.acquire("bio-1", "b", t(50), ttl).unwrap();
        assert!(matches!(b2, LeaseDecision::Acquired(ref l) if l.epoch == 2 && l.holder == "b"));
        // `a` comes back after its lease lapsed: it must see that it lost control.
        let a3 = store.acquire("bio-1", "a", t(60), ttl).unwrap();
        assert!(matches!(a3, LeaseDecision::HeldBy(ref l) if l.holder == "b"));
    }

    #[test]
    fn an_own_lapsed_lease_comes_back_with_a_new_epoch() {
        let ttl = Duration::seconds(10);
        let mut store = MemoryLeaseStore::default();
        store.acquire("d", "a", t(0), ttl).unwrap();
        let again = store.acquire("d", "a", t(10), ttl).unwrap();
        assert!(matches!(again, LeaseDecision::Acquired(ref l) if l.epoch == 2));
    }

    #[test]
    fn release_lets_the_next_holder_in_at_once() {
        let ttl = Duration::seconds(10);
        let mut store = MemoryLeaseStore::default();
        let LeaseDecision::Acquired(l) = store.acquire("d", "a", t(0), ttl).unwrap() else {
            panic!("first acquire must succeed")
        };
        store.release(&l).unwrap();
        let b = store.acquire("d", "b", t(1), ttl).unwrap();
        assert!(matches!(b, LeaseDecision::Acquired(ref l) if l.epoch == 2));
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let e = validate("", "a", Duration::seconds(10)).unwrap_err();
        assert!(e.to_string().contains("device"));
        let e = validate("d", "a", Duration::seconds(1)).unwrap_err();
        assert!(e.to_string().contains("ttl"));
    }

    #[test]
    fn usable_until_is_before_renewal_deadline_and_expiry() {
        let l = Lease {
            device: "d".into(),
            holder: "a".into(),
            epoch: 1,
            expires_at: t(30),
            ttl: Duration::seconds(30),
        };
        assert!(l.renew_at() < l.usable_until());
        assert!(l.usable_until() < l.expires_at);
    }
}
