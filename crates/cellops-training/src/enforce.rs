//! The check at every GMP step: the site matrix names the qualification an action needs,
//! the read model says whether the performer holds it at that instant.

use crate::event::{RefusalReason, Refused};
use crate::matrix::QualificationMatrix;
use crate::state::{QualificationStatus, TrainingState};
use cellops_domain::{SiteId, Timestamp, UserId};

/// The qualification `user` used for `action` at `site` at `at`, or the refusal to record.
pub fn check_action(
    state: &TrainingState,
    matrix: &QualificationMatrix,
    user: &UserId,
    site: &SiteId,
    action: &str,
    at: Timestamp,
) -> Result<String, Box<Refused>> {
    let refused = |qualification: Option<String>, reason, expired_at, message: String| {
        Box::new(Refused {
            user: user.clone(),
            action: action.to_string(),
            site: site.clone(),
            qualification,
            reason,
            expired_at,
            message,
            at,
            context: None,
        })
    };
    let qualification = matrix
        .requirement(site, action)
        .map_err(|e| refused(None, RefusalReason::NotConfigured, None, e.to_string()))?;
    let status = state.status(user, &qualification, at);
    let message = format!(
        "{action} at {site} refused: {}",
        status.refusal_message(user, &qualification, at)
    );
    match status {
        QualificationStatus::Qualified { .. } => Ok(qualification),
        QualificationStatus::NeverGranted => Err(refused(
            Some(qualification),
            RefusalReason::NeverGranted,
            None,
            message,
        )),
        QualificationStatus::Expired { expired_at, .. } => Err(refused(
            Some(qualification),
            RefusalReason::Expired,
            Some(expired_at),
            message,
        )),
        QualificationStatus::Suspended { .. } => Err(refused(
            Some(qualification),
            RefusalReason::Suspended,
            None,
            message,
        )),
    }
}
