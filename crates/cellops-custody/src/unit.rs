//! A unit (container) and its status.

use cellops_domain::{SiteId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ids::{LocationId, SubjectId, UnitCode};

/// Where a unit stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// On site, usable.
    Available,
    /// Packed and handed to the courier; must be received before use.
    InTransit,
    /// Used up by a split, pool or formulation.
    Consumed,
    /// Infused into a patient.
    Infused,
    /// Past its expiry.
    Expired,
    /// Destroyed (discarded).
    Destroyed,
}

impl UnitStatus {
    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitStatus::Available => "available",
            UnitStatus::InTransit => "in transit",
            UnitStatus::Consumed => "used up (split, pooled or formulated)",
            UnitStatus::Infused => "already infused",
            UnitStatus::Expired => "expired",
            UnitStatus::Destroyed => "destroyed",
        }
    }

    /// True when no further custody operation can ever apply (consumed, infused, expired,
    /// destroyed).
    pub fn is_final(self) -> bool {
        !matches!(self, UnitStatus::Available | UnitStatus::InTransit)
    }
}

impl fmt::Display for UnitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container as rebuilt from the ledger. Read-only: change it by deciding and applying events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub(crate) code: UnitCode,
    pub(crate) parents: Vec<UnitCode>,
    pub(crate) status: UnitStatus,
    pub(crate) expires_at: Timestamp,
    pub(crate) site: SiteId,
    pub(crate) location: LocationId,
    pub(crate) custodian: UserId,
    pub(crate) patient: Option<SubjectId>,
}

impl Unit {
    /// DIN + product code (with division).
    pub fn code(&self) -> UnitCode {
        self.code
    }
    /// The units it was made from (empty for a collected unit).
    pub fn parents(&self) -> &[UnitCode] {
        &self.parents
    }
    /// Its status.
    pub fn status(&self) -> UnitStatus {
        self.status
    }
    /// When it expires (UTC).
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
    /// The site recorded as holding it (the destination while in transit is not known yet).
    pub fn site(&self) -> &SiteId {
        &self.site
    }
    /// The last recorded location.
    pub fn location(&self) -> &LocationId {
        &self.location
    }
    /// The person who holds custody.
    pub fn custodian(&self) -> &UserId {
        &self.custodian
    }
    /// The pseudonymous patient the cells belong to (autologous), or none (donor material).
    pub fn patient(&self) -> Option<&SubjectId> {
        self.patient.as_ref()
    }
    /// True when `at` is at or after the expiry.
    pub fn is_expired_at(&self, at: Timestamp) -> bool {
        at >= self.expires_at
    }
}
