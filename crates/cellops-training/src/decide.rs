//! Pure decisions: each takes the read model and a command, and returns the events to
//! record or why the command is refused. Nothing is recorded on refusal.

use crate::DAY_US;
use crate::curriculum::{AssessmentKind, Course, Curriculum};
use crate::error::TrainingError;
use crate::event::{
    Assessed, AssessmentRef, AssessmentResult, Attended, Certified, CurriculumImported, Enrolled,
    Grant, Reinstated, Suspended, TrainingEvent,
};
use crate::state::{Change, CurriculumEntry, QualificationStatus, TrainingState};
use cellops_domain::{SiteId, Timestamp, UserId};

/// Longest free-text reason or note, in characters.
pub const REASON_CHARS_MAX: usize = 2_000;

fn check_reason(field: &str, text: &str) -> Result<String, TrainingError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(TrainingError::invalid(
            field,
            "a reason is required: say why",
        ));
    }
    if t.chars().count() > REASON_CHARS_MAX {
        return Err(TrainingError::invalid(
            field,
            format!("at most {REASON_CHARS_MAX} characters"),
        ));
    }
    Ok(t.to_string())
}

/// Imports curriculum `text` (TOML). The same version twice is refused (a changed
/// curriculum needs a new version).
pub fn decide_import(
    state: &TrainingState,
    text: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<TrainingEvent, TrainingError> {
    let curriculum = Curriculum::from_toml(text)?;
    let content_hash = curriculum.content_hash();
    if let Some(existing) = state.curriculum(&curriculum.id, &curriculum.version) {
        let rule = if existing.content_hash == content_hash {
            format!(
                "curriculum {} version {} is already imported (record {}); nothing was changed",
                curriculum.id, curriculum.version, existing.seq
            )
        } else {
            format!(
                "curriculum {} version {} is already imported with different content (record {}): give the changed curriculum a new version",
                curriculum.id, curriculum.version, existing.seq
            )
        };
        return Err(TrainingError::conflict(rule));
    }
    Ok(TrainingEvent::CurriculumImported(Box::new(
        CurriculumImported {
            curriculum,
            content_hash,
            by: by.clone(),
            at,
        },
    )))
}

fn approved<'s>(
    state: &'s TrainingState,
    curriculum: &str,
) -> Result<&'s CurriculumEntry, TrainingError> {
    if state.curricula().all(|c| c.curriculum.id != curriculum) {
        return Err(TrainingError::not_found(
            "curriculum",
            curriculum,
            "; import it first (cellops training import FILE)",
        ));
    }
    state.approved_curriculum(curriculum).ok_or_else(|| {
        TrainingError::conflict(format!(
            "curriculum {curriculum} has no approved version: QA must e-sign its import record with the meaning \"Approved\" (someone other than the importer)"
        ))
    })
}

fn course<'c>(curriculum: &'c Curriculum, id: &str) -> Result<&'c Course, TrainingError> {
    curriculum.course(id).ok_or_else(|| {
        TrainingError::not_found(
            "course",
            id,
            &format!(
                "; curriculum {} version {} has no such course",
                curriculum.id, curriculum.version
            ),
        )
    })
}

fn not_self(
    field: &str,
    actor: &UserId,
    trainee: &UserId,
    what: &str,
) -> Result<(), TrainingError> {
    if actor == trainee {
        Err(TrainingError::invalid(
            field,
            format!(
                "{actor} cannot {what} for themself: a trainer other than the trainee must do it"
            ),
        ))
    } else {
        Ok(())
    }
}

/// Whether `person` holds a certificate for `course` (of any version of `curriculum`).
fn certified_for(state: &TrainingState, person: &UserId, curriculum: &str, course: &str) -> bool {
    state.person(person).is_some_and(|p| {
        p.certificates.iter().any(|code| {
            state
                .certificate(code)
                .is_some_and(|c| c.event.curriculum == curriculum && c.event.course == course)
        })
    })
}

/// Enrols `trainee` in `course` of the newest approved version of `curriculum`.
pub fn decide_enrol(
    state: &TrainingState,
    trainee: &UserId,
    curriculum: &str,
    course_id: &str,
    site: &SiteId,
    by: &UserId,
    at: Timestamp,
) -> Result<TrainingEvent, TrainingError> {
    let entry = approved(state, curriculum)?;
    let course = course(&entry.curriculum, course_id)?;
    let missing: Vec<&str> = course
        .prerequisites
        .iter()
        .filter(|p| !certified_for(state, trainee, curriculum, p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(TrainingError::invalid(
            "course",
            format!(
                "{trainee} lacks the prerequisite course certificate(s) {} for {course_id}: complete them first",
                missing.join(", ")
            ),
        ));
    }
    Ok(TrainingEvent::Enrolled(Enrolled {
        trainee: trainee.clone(),
        curriculum: curriculum.to_string(),
        version: entry.curriculum.version.clone(),
        course: course_id.to_string(),
        site: site.clone(),
        by: by.clone(),
        at,
    }))
}

/// The enrolment of `trainee` in `course` and its curriculum version.
fn enrolment<'s>(
    state: &'s TrainingState,
    trainee: &UserId,
    course_id: &str,
) -> Result<(u64, &'s crate::event::Enrolled, &'s Course), TrainingError> {
    let (seq, e) = state
        .person(trainee)
        .and_then(|p| p.enrolment(course_id))
        .ok_or_else(|| {
            TrainingError::invalid(
                "course",
                format!("{trainee} is not enrolled in course {course_id}: enrol them first"),
            )
        })?;
    let entry = state
        .curriculum(&e.curriculum, &e.version)
        .expect("an enrolment names an imported curriculum");
    let course = course(&entry.curriculum, course_id)?;
    Ok((*seq, e, course))
}

/// Records that `trainee` attended `module` of `course`.
pub fn decide_attend(
    state: &TrainingState,
    trainee: &UserId,
    course_id: &str,
    module: &str,
    site: &SiteId,
    by: &UserId,
    at: Timestamp,
) -> Result<TrainingEvent, TrainingError> {
    not_self("trainee", by, trainee, "record attendance")?;
    let (_, _, course) = enrolment(state, trainee, course_id)?;
    if course.module(module).is_none() {
        return Err(TrainingError::not_found(
            "module",
            module,
            &format!("; course {course_id} has no such module"),
        ));
    }
    Ok(TrainingEvent::Attended(Attended {
        trainee: trainee.clone(),
        course: course_id.to_string(),
        module: module.to_string(),
        site: site.clone(),
        by: by.clone(),
        at,
    }))
}

/// What the assessor measured or judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written test score, 0–100.
    Score(u32),
    /// Practical: passed or not.
    Judged(bool),
    /// Media fill: units filled and contaminated.
    MediaFill { filled: u32, contaminated: u32 },
}

/// Records an assessment result. A failed media fill also suspends every qualification the
/// course grants that the trainee holds at `at`.
#[allow(clippy::too_many_arguments)]
pub fn decide_assess(
    state: &TrainingState,
    trainee: &UserId,
    course_id: &str,
    assessment_id: &str,
    outcome: Outcome,
    note: Option<&str>,
    site: &SiteId,
    assessor: &UserId,
    at: Timestamp,
) -> Result<Vec<TrainingEvent>, TrainingError> {
    not_self(
        "assessor",
        assessor,
        trainee,
        "assess or sign an assessment",
    )?;
    let (_, enrolled, course) = enrolment(state, trainee, course_id)?;
    let assessment = course.assessment(assessment_id).ok_or_else(|| {
        TrainingError::not_found(
            "assessment",
            assessment_id,
            &format!("; course {course_id} has no such assessment"),
        )
    })?;
    let result = match (assessment.kind, outcome) {
        (AssessmentKind::Written, Outcome::Score(score)) if score <= 100 => {
            AssessmentResult::Written {
                score_percent: score,
                pass_mark_percent: assessment.pass_mark_percent.unwrap_or(100),
            }
        }
        (AssessmentKind::Written, Outcome::Score(_)) => {
            return Err(TrainingError::invalid(
                "score_percent",
                "a score is 0–100 percent",
            ));
        }
        (AssessmentKind::Practical, Outcome::Judged(passed)) => {
            AssessmentResult::Practical { passed }
        }
        (
            AssessmentKind::MediaFill,
            Outcome::MediaFill {
                filled,
                contaminated,
            },
        ) => {
            if contaminated > filled {
                return Err(TrainingError::invalid(
                    "units_contaminated",
                    format!("{contaminated} contaminated units is more than the {filled} filled"),
                ));
            }
            AssessmentResult::MediaFill {
                units_filled: filled,
                units_contaminated: contaminated,
                units_min: assessment.units_min.unwrap_or(1),
            }
        }
        (kind, _) => {
            let needs = match kind {
                AssessmentKind::Written => "score_percent",
                AssessmentKind::Practical => "passed",
                AssessmentKind::MediaFill => "units_filled and units_contaminated",
            };
            return Err(TrainingError::invalid(
                "result",
                format!("assessment {assessment_id} is a {kind:?} assessment: give {needs}"),
            ));
        }
    };
    let note = note.map(|n| check_reason("note", n)).transpose()?;
    let passed = result.passed();
    let failed_media_fill = !passed && assessment.kind == AssessmentKind::MediaFill;
    let mut events = vec![TrainingEvent::Assessed(Assessed {
        trainee: trainee.clone(),
        curriculum: enrolled.curriculum.clone(),
        version: enrolled.version.clone(),
        course: course_id.to_string(),
        assessment: assessment_id.to_string(),
        result,
        passed,
        site: site.clone(),
        assessor: assessor.clone(),
        note,
        at,
    })];
    if failed_media_fill {
        for q in &course.grants {
            if state.status(trainee, q, at).is_qualified() {
                events.push(TrainingEvent::Suspended(Suspended {
                    person: trainee.clone(),
                    qualification: q.clone(),
                    reason: format!("failed media fill {assessment_id} of course {course_id}"),
                    cause: Some(AssessmentRef {
                        course: course_id.to_string(),
                        assessment: assessment_id.to_string(),
                    }),
                    site: site.clone(),
                    by: assessor.clone(),
                    at,
                }));
            }
        }
    }
    Ok(events)
}

/// Issues the certificate of `course` with verification code `code`.
///
/// First certification: every module attended and every assessment's latest result since
/// the enrolment passed (practicals and media fills e-signed by their assessor).
/// Requalification (the trainee already holds a certificate for the course): the granted
/// qualifications' `requalify_with` assessments passed since the latest enrolment.
pub fn decide_certify(
    state: &TrainingState,
    trainee: &UserId,
    course_id: &str,
    code: &str,
    site: &SiteId,
    by: &UserId,
    at: Timestamp,
) -> Result<TrainingEvent, TrainingError> {
    not_self("trainee", by, trainee, "issue a certificate")?;
    if state.certificate(code).is_some() {
        return Err(TrainingError::conflict(format!(
            "certificate code {code} is already used: draw another"
        )));
    }
    let (enrolled_seq, enrolled, course) = enrolment(state, trainee, course_id)?;
    let entry = state
        .curriculum(&enrolled.curriculum, &enrolled.version)
        .expect("an enrolment names an imported curriculum");
    let person = state
        .person(trainee)
        .expect("an enrolled trainee has a record");
    let requalification = certified_for(state, trainee, &enrolled.curriculum, course_id);
    let since_enrolment = |seq: u64| seq > enrolled_seq;
    let required: Vec<&str> = if requalification {
        let mut ids: Vec<&str> = course
            .grants
            .iter()
            .filter_map(|g| entry.curriculum.qualification(g))
            .flat_map(|q| q.requalify_with.iter().map(String::as_str))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    } else {
        let missing: Vec<&str> = course
            .modules
            .iter()
            .filter(|m| {
                !person.attendance.iter().any(|(seq, a)| {
                    since_enrolment(*seq) && a.course == course_id && a.module == m.id
                })
            })
            .map(|m| m.id.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(TrainingError::invalid(
                "course",
                format!(
                    "{trainee} has not attended module(s) {} of {course_id} since enrolling",
                    missing.join(", ")
                ),
            ));
        }
        course.assessments.iter().map(|a| a.id.as_str()).collect()
    };
    let mut evidence = Vec::new();
    let mut missing = Vec::new();
    for id in required {
        let latest = person.assessments.iter().rev().find(|a| {
            since_enrolment(a.seq) && a.event.course == course_id && a.event.assessment == id
        });
        match latest {
            Some(a) if a.counts() => evidence.push(a.seq),
            Some(a) if a.event.passed => missing.push(format!(
                "{id} (passed in record {} but not yet e-signed by its assessor {})",
                a.seq, a.event.assessor
            )),
            Some(a) => missing.push(format!("{id} (failed in record {})", a.seq)),
            None => missing.push(format!("{id} (no result since enrolling)")),
        }
    }
    if !missing.is_empty() {
        return Err(TrainingError::invalid(
            "course",
            format!(
                "{trainee} cannot be certified for {course_id} yet: {}",
                missing.join("; ")
            ),
        ));
    }
    let grants = course
        .grants
        .iter()
        .map(|g| {
            let def = entry
                .curriculum
                .qualification(g)
                .expect("validated: grants are declared");
            Grant {
                qualification: g.clone(),
                expires_at: at.plus_us(i64::from(def.validity_days) * DAY_US),
            }
        })
        .collect();
    Ok(TrainingEvent::Certified(Certified {
        code: code.to_string(),
        trainee: trainee.clone(),
        curriculum: enrolled.curriculum.clone(),
        version: enrolled.version.clone(),
        course: course_id.to_string(),
        requalification,
        grants,
        evidence,
        site: site.clone(),
        by: by.clone(),
        at,
    }))
}

/// Suspends `person`'s `qualification` (it must be held and not already suspended).
pub fn decide_suspend(
    state: &TrainingState,
    person: &UserId,
    qualification: &str,
    reason: &str,
    site: &SiteId,
    by: &UserId,
    at: Timestamp,
) -> Result<TrainingEvent, TrainingError> {
    not_self("user", by, person, "suspend a qualification")?;
    let reason = check_reason("reason", reason)?;
    match state.status(person, qualification, at) {
        QualificationStatus::Qualified { .. } => Ok(TrainingEvent::Suspended(Suspended {
            person: person.clone(),
            qualification: qualification.to_string(),
            reason,
            cause: None,
            site: site.clone(),
            by: by.clone(),
            at,
        })),
        other => Err(TrainingError::conflict(format!(
            "cannot suspend: {}",
            other.refusal_message(person, qualification, at)
        ))),
    }
}

/// Reinstates `person`'s suspended `qualification`. A suspension caused by a failed
/// assessment needs a later passing (and signed) result of that assessment.
pub fn decide_reinstate(
    state: &TrainingState,
    person: &UserId,
    qualification: &str,
    reason: &str,
    site: &SiteId,
    by: &UserId,
    at: Timestamp,
) -> Result<TrainingEvent, TrainingError> {
    not_self("user", by, person, "reinstate a qualification")?;
    let reason = check_reason("reason", reason)?;
    if !matches!(
        state.status(person, qualification, at),
        QualificationStatus::Suspended { .. }
    ) {
        return Err(TrainingError::conflict(format!(
            "{person}'s qualification {qualification} is not suspended at {at}: nothing to reinstate"
        )));
    }
    let record = state
        .person(person)
        .expect("a suspended person has a record");
    let suspension = record.qualifications[qualification]
        .iter()
        .rev()
        .find_map(|c| match c {
            Change::Suspended { seq, cause, .. } => Some((*seq, cause.clone())),
            _ => None,
        })
        .expect("a suspended qualification has a suspension");
    let evidence = match suspension {
        (_, None) => None,
        (suspended_seq, Some(cause)) => {
            let pass = record.assessments.iter().rev().find(|a| {
                a.seq > suspended_seq
                    && a.event.course == cause.course
                    && a.event.assessment == cause.assessment
                    && a.counts()
            });
            match pass {
                Some(a) => Some(a.seq),
                None => {
                    return Err(TrainingError::invalid(
                        "user",
                        format!(
                            "{person}'s {qualification} was suspended after failing {} of {}: record a passing, e-signed {} first",
                            cause.assessment, cause.course, cause.assessment
                        ),
                    ));
                }
            }
        }
    };
    Ok(TrainingEvent::Reinstated(Reinstated {
        person: person.clone(),
        qualification: qualification.to_string(),
        reason,
        evidence,
        site: site.clone(),
        by: by.clone(),
        at,
    }))
}
