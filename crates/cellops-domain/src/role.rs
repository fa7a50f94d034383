//! Roles a user holds, each per site (PRODUCT.md).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role, granted to a user at one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Physician,
    Nurse,
    Collector,
    /// Clinical culturist (臨床培養士).
    Operator,
    QcAnalyst,
    QaReviewer,
    QaReleaser,
    Logistics,
    Trainer,
    SiteAdmin,
    /// Read-only, everything at the site including the ledger.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 11] = [
        Role::Physician,
        Role::Nurse,
        Role::Collector,
        Role::Operator,
        Role::QcAnalyst,
        Role::QaReviewer,
        Role::QaReleaser,
        Role::Logistics,
        Role::Trainer,
        Role::SiteAdmin,
        Role::Auditor,
    ];

    /// Every role that may add records at its site: all but the read-only auditor.
    pub const WRITERS: [Role; 10] = [
        Role::Physician,
        Role::Nurse,
        Role::Collector,
        Role::Operator,
        Role::QcAnalyst,
        Role::QaReviewer,
        Role::QaReleaser,
        Role::Logistics,
        Role::Trainer,
        Role::SiteAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Physician => "physician",
            Role::Nurse => "nurse",
            Role::Collector => "collector",
            Role::Operator => "operator",
            Role::QcAnalyst => "qc_analyst",
            Role::QaReviewer => "qa_reviewer",
            Role::QaReleaser => "qa_releaser",
            Role::Logistics => "logistics",
            Role::Trainer => "trainer",
            Role::SiteAdmin => "site_admin",
            Role::Auditor => "auditor",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "role {0:?} is unknown: use one of physician, nurse, collector, operator, qc_analyst, qa_reviewer, qa_releaser, logistics, trainer, site_admin, auditor"
)]
pub struct RoleError(pub String);

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Role, RoleError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RoleError(s.to_string()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
