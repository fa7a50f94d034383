//! The training model as the qualification check of the batch engine (`cellops-process`)
//! and of the bedside verification (`cellops-custody`).

use crate::matrix::QualificationMatrix;
use crate::state::{TrainingState, is_qualified};
use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_process::engine::{PersonId, QualificationCheck};
use time::OffsetDateTime;

/// `at` as a ledger timestamp; `None` outside the representable range (never qualified).
fn timestamp(at: OffsetDateTime) -> Option<Timestamp> {
    let unix_us = i64::try_from(at.unix_timestamp_nanos() / 1_000).ok()?;
    Timestamp::from_unix_us(unix_us).ok()
}

impl QualificationCheck for TrainingState {
    fn is_qualified(&self, person: &PersonId, qualification: &str, at: OffsetDateTime) -> bool {
        match (UserId::parse(person.as_str()), timestamp(at)) {
            (Ok(user), Some(at)) => is_qualified(self, &user, qualification, at),
            _ => false,
        }
    }
}

impl QualificationCheck for &TrainingState {
    fn is_qualified(&self, person: &PersonId, qualification: &str, at: OffsetDateTime) -> bool {
        QualificationCheck::is_qualified(*self, person, qualification, at)
    }
}

/// The bedside checkers' qualification: whatever the site's matrix requires for
/// [`BedsideChecker::ACTION`]. An unconfigured site qualifies nobody.
#[derive(Debug, Clone, Copy)]
pub struct BedsideChecker<'a> {
    pub state: &'a TrainingState,
    pub matrix: &'a QualificationMatrix,
}

impl BedsideChecker<'_> {
    /// The matrix action of a bedside identity check.
    pub const ACTION: &'static str = "bedside.verify";
}

impl cellops_custody::BedsideQualification for BedsideChecker<'_> {
    fn is_qualified(&self, user: &UserId, site: &SiteId, at: Timestamp) -> bool {
        match self.matrix.requirement(site, Self::ACTION) {
            Ok(q) => is_qualified(self.state, user, &q, at),
            Err(_) => false,
        }
    }
}
