//! The facts this crate records: each is one ledger record (type name + JSON payload).

use crate::curriculum::{AssessmentKind, Curriculum};
use cellops_domain::events::EventType;
use cellops_domain::{SiteId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// The event types of training and qualification, for the ledger's catalogue.
pub const TRAINING_EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "training.curriculum_imported",
        version: 1,
        description: "a curriculum version was imported (used once e-signed as Approved)",
    },
    EventType {
        name: "training.enrolled",
        version: 1,
        description: "a trainee was enrolled in a course",
    },
    EventType {
        name: "training.attended",
        version: 1,
        description: "a trainee attended a module of a course",
    },
    EventType {
        name: "training.assessed",
        version: 1,
        description: "an assessment result (written test, practical, media fill) was recorded by its assessor",
    },
    EventType {
        name: "training.certified",
        version: 1,
        description: "a certificate was issued, granting qualifications until their expiry",
    },
    EventType {
        name: "training.suspended",
        version: 1,
        description: "a qualification was suspended (e.g. after a failed media fill)",
    },
    EventType {
        name: "training.reinstated",
        version: 1,
        description: "a suspended qualification was reinstated",
    },
    EventType {
        name: "qualification.refused",
        version: 1,
        description: "a GMP step was refused because the performer lacked the qualification",
    },
];

/// A curriculum version was imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurriculumImported {
    pub curriculum: Curriculum,
    /// [`Curriculum::content_hash`]: what an approval signs.
    pub content_hash: String,
    pub by: UserId,
    pub at: Timestamp,
}

/// A trainee was enrolled in a course of an approved curriculum version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    pub trainee: UserId,
    pub curriculum: String,
    pub version: String,
    pub course: String,
    pub site: SiteId,
    pub by: UserId,
    pub at: Timestamp,
}

/// A trainee attended a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attended {
    pub trainee: UserId,
    pub course: String,
    pub module: String,
    pub site: SiteId,
    /// The trainer who records the attendance.
    pub by: UserId,
    pub at: Timestamp,
}

/// The measured part of an assessment result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssessmentResult {
    /// A written test: the score in percent.
    Written {
        score_percent: u32,
        pass_mark_percent: u32,
    },
    /// A practical: the trainer's judgement.
    Practical { passed: bool },
    /// A media fill: units filled and units that grew.
    MediaFill {
        units_filled: u32,
        units_contaminated: u32,
        units_min: u32,
    },
}

impl AssessmentResult {
    /// Whether the result is a pass.
    pub fn passed(&self) -> bool {
        match *self {
            AssessmentResult::Written {
                score_percent,
                pass_mark_percent,
            } => score_percent >= pass_mark_percent,
            AssessmentResult::Practical { passed } => passed,
            AssessmentResult::MediaFill {
                units_filled,
                units_contaminated,
                units_min,
            } => units_filled >= units_min && units_contaminated == 0,
        }
    }

    /// The kind of assessment.
    pub fn kind(&self) -> AssessmentKind {
        match self {
            AssessmentResult::Written { .. } => AssessmentKind::Written,
            AssessmentResult::Practical { .. } => AssessmentKind::Practical,
            AssessmentResult::MediaFill { .. } => AssessmentKind::MediaFill,
        }
    }
}

/// An assessment result, recorded by its assessor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessed {
    pub trainee: UserId,
    pub curriculum: String,
    pub version: String,
    pub course: String,
    pub assessment: String,
    pub result: AssessmentResult,
    pub passed: bool,
    pub site: SiteId,
    /// The assessor (a trainer, never the trainee).
    pub assessor: UserId,
    #[serde(default)]
    pub note: Option<String>,
    pub at: Timestamp,
}

/// One qualification granted by a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub qualification: String,
    pub expires_at: Timestamp,
}

/// A certificate was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certified {
    /// The verification code printed on the certificate.
    pub code: String,
    pub trainee: UserId,
    pub curriculum: String,
    pub version: String,
    pub course: String,
    /// True when this renews earlier grants by the requalification assessments only.
    pub requalification: bool,
    pub grants: Vec<Grant>,
    /// Ledger seqs of the assessment results the certificate rests on.
    pub evidence: Vec<u64>,
    pub site: SiteId,
    pub by: UserId,
    pub at: Timestamp,
}

/// What caused a suspension, when it was a failed assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessmentRef {
    pub course: String,
    pub assessment: String,
}

/// A qualification was suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspended {
    pub person: UserId,
    pub qualification: String,
    pub reason: String,
    /// The failed assessment that caused it; reinstatement then needs a later pass of it.
    #[serde(default)]
    pub cause: Option<AssessmentRef>,
    pub site: SiteId,
    pub by: UserId,
    pub at: Timestamp,
}

/// A suspended qualification was reinstated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reinstated {
    pub person: UserId,
    pub qualification: String,
    pub reason: String,
    /// The passing assessment result that allows it, when the suspension had a cause.
    #[serde(default)]
    pub evidence: Option<u64>,
    pub site: SiteId,
    pub by: UserId,
    pub at: Timestamp,
}

/// Why a step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The person never held the qualification (at that time).
    NeverGranted,
    /// The qualification had expired.
    Expired,
    /// The qualification was suspended.
    Suspended,
    /// The site's matrix does not name the action.
    NotConfigured,
}

/// A GMP step was refused for want of a qualification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub user: UserId,
    pub action: String,
    pub site: SiteId,
    /// The qualification required (none when the action is not configured).
    pub qualification: Option<String>,
    pub reason: RefusalReason,
    /// When the qualification expired (for `expired`).
    #[serde(default)]
    pub expired_at: Option<Timestamp>,
    pub message: String,
    pub at: Timestamp,
    /// What the refused action was on, when the caller says (e.g. `batch/b-1 step harvest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// Every training event.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainingEvent {
    CurriculumImported(Box<CurriculumImported>),
    Enrolled(Enrolled),
    Attended(Attended),
    Assessed(Assessed),
    Certified(Certified),
    Suspended(Suspended),
    Reinstated(Reinstated),
    Refused(Refused),
}

impl TrainingEvent {
    /// The ledger event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            TrainingEvent::CurriculumImported(_) => "training.curriculum_imported",
            TrainingEvent::Enrolled(_) => "training.enrolled",
            TrainingEvent::Attended(_) => "training.attended",
            TrainingEvent::Assessed(_) => "training.assessed",
            TrainingEvent::Certified(_) => "training.certified",
            TrainingEvent::Suspended(_) => "training.suspended",
            TrainingEvent::Reinstated(_) => "training.reinstated",
            TrainingEvent::Refused(_) => "qualification.refused",
        }
    }

    /// The ledger payload.
    pub fn payload(&self) -> serde_json::Value {
        let v = match self {
            TrainingEvent::CurriculumImported(e) => serde_json::to_value(e),
            TrainingEvent::Enrolled(e) => serde_json::to_value(e),
            TrainingEvent::Attended(e) => serde_json::to_value(e),
            TrainingEvent::Assessed(e) => serde_json::to_value(e),
            TrainingEvent::Certified(e) => serde_json::to_value(e),
            TrainingEvent::Suspended(e) => serde_json::to_value(e),
            TrainingEvent::Reinstated(e) => serde_json::to_value(e),
            TrainingEvent::Refused(e) => serde_json::to_value(e),
        };
        v.expect("training events serialize")
    }

    /// The ledger stream: `curriculum/<id>` for curricula, `training/<person>` otherwise.
    pub fn stream(&self) -> String {
        let person = match self {
            TrainingEvent::CurriculumImported(e) => {
                return format!("curriculum/{}", e.curriculum.id);
            }
            TrainingEvent::Enrolled(e) => &e.trainee,
            TrainingEvent::Attended(e) => &e.trainee,
            TrainingEvent::Assessed(e) => &e.trainee,
            TrainingEvent::Certified(e) => &e.trainee,
            TrainingEvent::Suspended(e) => &e.person,
            TrainingEvent::Reinstated(e) => &e.person,
            TrainingEvent::Refused(e) => &e.user,
        };
        format!("training/{person}")
    }

    /// Reads a ledger record's payload; `None` when `event_type` is not a training type.
    pub fn from_record(event_type: &str, payload: &str) -> Option<Result<TrainingEvent, String>> {
        fn read<T: serde::de::DeserializeOwned>(p: &str) -> Result<T, String> {
            serde_json::from_str(p).map_err(|e| e.to_string())
        }
        Some(match event_type {
            "training.curriculum_imported" => {
                read(payload).map(|e| TrainingEvent::CurriculumImported(Box::new(e)))
            }
            "training.enrolled" => read(payload).map(TrainingEvent::Enrolled),
            "training.attended" => read(payload).map(TrainingEvent::Attended),
            "training.assessed" => read(payload).map(TrainingEvent::Assessed),
            "training.certified" => read(payload).map(TrainingEvent::Certified),
            "training.suspended" => read(payload).map(TrainingEvent::Suspended),
            "training.reinstated" => read(payload).map(TrainingEvent::Reinstated),
            "qualification.refused" => read(payload).map(TrainingEvent::Refused),
            _ => return None,
        })
    }
}
