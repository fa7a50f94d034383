//! The training read model: every training fact folded in ledger order, and the one answer
//! that matters at every GMP step: does this person hold this qualification at this instant?

use crate::curriculum::Curriculum;
use crate::event::{Assessed, Attended, Certified, Enrolled, Refused, Suspended, TrainingEvent};
use cellops_domain::{Timestamp, UserId};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Most refusals kept in memory for the refusal list (the ledger keeps them all).
pub const REFUSALS_KEPT_MAX: usize = 10_000;

/// An imported curriculum version.
#[derive(Debug, Clone, Serialize)]
pub struct CurriculumEntry {
    pub seq: u64,
    pub curriculum: Curriculum,
    pub content_hash: String,
    pub imported_by: UserId,
    pub imported_at: Timestamp,
    /// Who approved it (e-signature with meaning "Approved", not by the importer), and when.
    pub approved: Option<(UserId, Timestamp)>,
}

/// An assessment result with its trainer sign-off.
#[derive(Debug, Clone, Serialize)]
pub struct AssessmentEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub event: Assessed,
    /// The assessor's e-signature (who, when), once given.
    pub signed: Option<(UserId, Timestamp)>,
}

impl AssessmentEntry {
    /// Whether the result counts: passed, and e-signed by its assessor when the kind needs it.
    pub fn counts(&self) -> bool {
        self.event.passed && (self.signed.is_some() || !self.event.result.kind().needs_signature())
    }
}

/// One change to a person's hold on a qualification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Granted {
        seq: u64,
        at: Timestamp,
        expires_at: Timestamp,
        certificate: String,
    },
    Suspended {
        seq: u64,
        at: Timestamp,
        reason: String,
        cause: Option<crate::event::AssessmentRef>,
    },
    Reinstated {
        seq: u64,
        at: Timestamp,
        reason: String,
    },
}

impl Change {
    fn at(&self) -> Timestamp {
        match self {
            Change::Granted { at, .. }
            | Change::Suspended { at, .. }
            | Change::Reinstated { at, .. } => *at,
        }
    }
}

/// Everything recorded about one person's training.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Person {
    pub enrolments: Vec<(u64, Enrolled)>,
    pub attendance: Vec<(u64, Attended)>,
    pub assessments: Vec<AssessmentEntry>,
    /// Certificate codes, oldest first.
    pub certificates: Vec<String>,
    /// Per qualification, its changes in ledger order.
    pub qualifications: BTreeMap<String, Vec<Change>>,
}

impl Person {
    /// The latest enrolment in `course`.
    pub fn enrolment(&self, course: &str) -> Option<&(u64, Enrolled)> {
        self.enrolments
            .iter()
            .rev()
            .find(|(_, e)| e.course == course)
    }
}

/// An issued certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub event: Certified,
}

/// A person's hold on a qualification at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum QualificationStatus {
    /// Held: granted, not expired, not suspended.
    Qualified {
        since: Timestamp,
        expires_at: Timestamp,
        certificate: String,
    },
    /// Never granted before that instant.
    NeverGranted,
    /// Granted, but the latest grant expired.
    Expired {
        expired_at: Timestamp,
        certificate: String,
    },
    /// Granted and in date, but suspended.
    Suspended {
        since: Timestamp,
        reason: String,
        expires_at: Timestamp,
    },
}

impl QualificationStatus {
    /// Whether the person may perform steps needing the qualification.
    pub fn is_qualified(&self) -> bool {
        matches!(self, QualificationStatus::Qualified { .. })
    }

    /// A sentence for a refusal: names the qualification, and the expiry date when expired.
    pub fn refusal_message(&self, user: &UserId, qualification: &str, at: Timestamp) -> String {
        match self {
            QualificationStatus::Qualified { .. } => {
                format!("{user} holds qualification {qualification} at {at}")
            }
            QualificationStatus::NeverGranted => format!(
                "{user} does not hold qualification {qualification} (never granted before {at}): complete the course that grants it"
            ),
            QualificationStatus::Expired { expired_at, .. } => format!(
                "{user}'s qualification {qualification} expired on {expired_at}: requalify before performing this step"
            ),
            QualificationStatus::Suspended { since, reason, .. } => format!(
                "{user}'s qualification {qualification} is suspended since {since} ({reason}): it must be reinstated first"
            ),
        }
    }
}

/// The training read model.
#[derive(Debug, Clone, Default)]
pub struct TrainingState {
    curricula: BTreeMap<(String, String), CurriculumEntry>,
    curriculum_seqs: BTreeMap<u64, (String, String)>,
    people: BTreeMap<UserId, Person>,
    assessment_seqs: BTreeMap<u64, (UserId, usize)>,
    certificates: BTreeMap<String, CertificateEntry>,
    refusals: VecDeque<(u64, Refused)>,
    refusals_total: u64,
}

/// Signature meaning that approves a curriculum.
pub const APPROVAL_MEANING: &str = "Approved";

impl TrainingState {
    /// Applies the training event recorded at `seq`.
    pub fn apply(&mut self, seq: u64, event: &TrainingEvent) {
        match event {
            TrainingEvent::CurriculumImported(e) => {
                let key = (e.curriculum.id.clone(), e.curriculum.version.clone());
                self.curriculum_seqs.insert(seq, key.clone());
                self.curricula
                    .entry(key)
                    .or_insert_with(|| CurriculumEntry {
                        seq,
                        curriculum: e.curriculum.clone(),
                        content_hash: e.content_hash.clone(),
                        imported_by: e.by.clone(),
                        imported_at: e.at,
                        approved: None,
                    });
            }
            TrainingEvent::Enrolled(e) => self
                .person_mut(&e.trainee)
                .enrolments
                .push((seq, e.clone())),
            TrainingEvent::Attended(e) => self
                .person_mut(&e.trainee)
                .attendance
                .push((seq, e.clone())),
            TrainingEvent::Assessed(e) => {
                let person = self.person_mut(&e.trainee);
                person.assessments.push(AssessmentEntry {
                    seq,
                    event: e.clone(),
                    signed: None,
                });
                let index = person.assessments.len() - 1;
                self.assessment_seqs.insert(seq, (e.trainee.clone(), index));
            }
            TrainingEvent::Certified(e) => {
                let person = self.person_mut(&e.trainee);
                person.certificates.push(e.code.clone());
                for g in &e.grants {
                    person
                        .qualifications
                        .entry(g.qualification.clone())
                        .or_default()
                        .push(Change::Granted {
                            seq,
                            at: e.at,
                            expires_at: g.expires_at,
                            certificate: e.code.clone(),
                        });
                }
                self.certificates.insert(
                    e.code.clone(),
                    CertificateEntry {
                        seq,
                        event: e.clone(),
                    },
                );
            }
            TrainingEvent::Suspended(e) => {
                self.change(&e.person, &e.qualification, suspended(seq, e))
            }
            TrainingEvent::Reinstated(e) => self.change(
                &e.person,
                &e.qualification,
                Change::Reinstated {
                    seq,
                    at: e.at,
                    reason: e.reason.clone(),
                },
            ),
            TrainingEvent::Refused(e) => {
                self.refusals_total += 1;
                if self.refusals.len() == REFUSALS_KEPT_MAX {
                    self.refusals.pop_front();
                }
                self.refusals.push_back((seq, e.clone()));
            }
        }
    }

    /// Applies an e-signature (`esig.signed` over record `signs_seq`): the assessor's
    /// sign-off of an assessment, or the approval of a curriculum by someone other than the
    /// importer with meaning "Approved".
    pub fn apply_signature(&mut self, signs_seq: u64, signer: &str, meaning: &str, at: Timestamp) {
        if let Some((trainee, index)) = self.assessment_seqs.get(&signs_seq)
            && let Some(person) = self.people.get_mut(trainee)
            && let Some(entry) = person.assessments.get_mut(*index)
            && entry.event.assessor.as_str() == signer
            && entry.signed.is_none()
        {
            entry.signed = Some((entry.event.assessor.clone(), at));
        }
        if meaning == APPROVAL_MEANING
            && let Some(key) = self.curriculum_seqs.get(&signs_seq)
            && let Some(entry) = self.curricula.get_mut(key)
            && entry.imported_by.as_str() != signer
            && entry.approved.is_none()
            && let Ok(user) = UserId::parse(signer)
        {
            entry.approved = Some((user, at));
        }
    }

    fn person_mut(&mut self, id: &UserId) -> &mut Person {
        self.people.entry(id.clone()).or_default()
    }

    fn change(&mut self, person: &UserId, qualification: &str, change: Change) {
        self.person_mut(person)
            .qualifications
            .entry(qualification.to_string())
            .or_default()
            .push(change);
    }

    /// `person`'s hold on `qualification` at `at`, from the changes recorded up to `at`.
    pub fn status(
        &self,
        person: &UserId,
        qualification: &str,
        at: Timestamp,
    ) -> QualificationStatus {
        let changes = self
            .people
            .get(person)
            .and_then(|p| p.qualifications.get(qualification));
        status_of(changes.map(Vec::as_slice).unwrap_or(&[]), at)
    }

    /// Everything recorded about `person`.
    pub fn person(&self, person: &UserId) -> Option<&Person> {
        self.people.get(person)
    }

    /// Every person with a training record.
    pub fn people(&self) -> impl Iterator<Item = (&UserId, &Person)> {
        self.people.iter()
    }

    /// The curriculum version `(id, version)`.
    pub fn curriculum(&self, id: &str, version: &str) -> Option<&CurriculumEntry> {
        self.curricula.get(&(id.to_string(), version.to_string()))
    }

    /// The newest approved version of curriculum `id` (by import order).
    pub fn approved_curriculum(&self, id: &str) -> Option<&CurriculumEntry> {
        self.curricula
            .values()
            .filter(|c| c.curriculum.id == id && c.approved.is_some())
            .max_by_key(|c| c.seq)
    }

    /// Every imported curriculum version.
    pub fn curricula(&self) -> impl Iterator<Item = &CurriculumEntry> {
        self.curricula.values()
    }

    /// The certificate with verification code `code`.
    pub fn certificate(&self, code: &str) -> Option<&CertificateEntry> {
        self.certificates.get(code)
    }

    /// The assessment result recorded at `seq`.
    pub fn assessment(&self, seq: u64) -> Option<&AssessmentEntry> {
        let (trainee, index) = self.assessment_seqs.get(&seq)?;
        self.people.get(trainee)?.assessments.get(*index)
    }

    /// The most recent refusals (newest last) and how many there were in all.
    pub fn refusals(&self) -> (impl Iterator<Item = &(u64, Refused)>, u64) {
        (self.refusals.iter(), self.refusals_total)
    }
}

fn suspended(seq: u64, e: &Suspended) -> Change {
    Change::Suspended {
        seq,
        at: e.at,
        reason: e.reason.clone(),
        cause: e.cause.clone(),
    }
}

/// The status that `changes` (in ledger order) give at `at`.
pub fn status_of(changes: &[Change], at: Timestamp) -> QualificationStatus {
    let mut grant: Option<(Timestamp, Timestamp, &str)> = None;
    let mut suspension: Option<(Timestamp, &str)> = None;
    for c in changes.iter().filter(|c| c.at() <= at) {
        match c {
            Change::Granted {
                at,
                expires_at,
                certificate,
                ..
            } => {
                grant = Some((*at, *expires_at, certificate));
                suspension = None;
            }
            Change::Suspended { at, reason, .. } => suspension = Some((*at, reason)),
            Change::Reinstated { .. } => suspension = None,
        }
    }
    match (grant, suspension) {
        (None, _) => QualificationStatus::NeverGranted,
        (Some((_, expires_at, certificate)), _) if at >= expires_at => {
            QualificationStatus::Expired {
                expired_at: expires_at,
                certificate: certificate.to_string(),
            }
        }
        (Some((_, expires_at, _)), Some((since, reason))) => QualificationStatus::Suspended {
            since,
            reason: reason.to_string(),
            expires_at,
        },
        (Some((since, expires_at, certificate)), None) => QualificationStatus::Qualified {
            since,
            expires_at,
            certificate: certificate.to_string(),
        },
    }
}

/// Whether `person` holds `qualification` at `at`: the pure check used by every GMP step
/// (the batch engine's `QualificationCheck`, custody's `BedsideQualification`).
pub fn is_qualified(
    model: &TrainingState,
    person: &UserId,
    qualification: &str,
    at: Timestamp,
) -> bool {
    model.status(person, qualification, at).is_qualified()
}
