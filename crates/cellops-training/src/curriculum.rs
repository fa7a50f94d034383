//! Curricula as data: courses, modules, assessments, prerequisites and the qualifications
//! each course grants, with validity and requalification rules.
//!
//! A curriculum is a TOML file with a version. Importing records it in the ledger; it is used
//! only after an e-signature with the meaning "Approved" (see `crate::state`).

use crate::error::TrainingError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The shipped clinical-culturist curriculum (basic and advanced levels, plus the courses of
/// the hospital, QC, QA and logistics staff the demo network needs).
pub const CLINICAL_CULTURIST_TOML: &str = include_str!("../config/clinical-culturist.toml");

/// Longest validity of a qualification (ten years).
pub const VALIDITY_DAYS_MAX: u32 = 3_650;
/// Most courses in one curriculum.
pub const COURSES_MAX: usize = 200;
/// Longest curriculum TOML accepted, in bytes.
pub const CURRICULUM_BYTES_MAX: usize = 512 * 1024;

/// A level of a course.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The clinical-culturist basic course.
    Basic,
    /// The clinical-culturist advanced course.
    Advanced,
    /// A course for another role (hospital, QC, QA, logistics).
    Role,
}

/// How a module is taught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// A lecture (classroom or e-learning).
    Lecture,
    /// A practical session at the bench, isolator or device.
    Practical,
}

/// How an assessment is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentKind {
    /// A written test with a pass mark in percent.
    Written,
    /// A practical assessment, judged and e-signed by a trainer.
    Practical,
    /// An aseptic-process simulation (media fill): pass when enough units were filled and
    /// none grew; e-signed by a trainer.
    MediaFill,
}

impl AssessmentKind {
    /// Whether the result needs the assessor's e-signature before it counts.
    pub fn needs_signature(self) -> bool {
        matches!(self, AssessmentKind::Practical | AssessmentKind::MediaFill)
    }
}

/// A qualification a course grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualificationDef {
    /// Id used by recipes and the site matrix, e.g. `cpc-aseptic-processing`.
    pub id: String,
    pub name_en: String,
    #[serde(default)]
    pub name_ja: Option<String>,
    /// How long a grant is valid.
    pub validity_days: u32,
    /// The assessments of the granting course that renew it (requalification); passing them
    /// again after a grant is enough, without repeating the modules.
    pub requalify_with: Vec<String>,
}

/// A taught part of a course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    pub id: String,
    pub kind: ModuleKind,
    pub title: String,
    pub hours: f64,
}

/// An assessment of a course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assessment {
    pub id: String,
    pub kind: AssessmentKind,
    pub title: String,
    /// Written tests: the pass mark in percent (1–100).
    #[serde(default)]
    pub pass_mark_percent: Option<u32>,
    /// Media fills: the fewest units that must be filled for the run to count.
    #[serde(default)]
    pub units_min: Option<u32>,
}

/// A course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Course {
    pub id: String,
    pub level: Level,
    pub title_en: String,
    #[serde(default)]
    pub title_ja: Option<String>,
    /// Courses the trainee must have been certified for before enrolling.
    #[serde(default)]
    pub prerequisites: Vec<String>,
    /// Qualifications the certificate grants.
    #[serde(default)]
    pub grants: Vec<String>,
    pub modules: Vec<Module>,
    pub assessments: Vec<Assessment>,
}

impl Course {
    /// The assessment `id`.
    pub fn assessment(&self, id: &str) -> Option<&Assessment> {
        self.assessments.iter().find(|a| a.id == id)
    }

    /// The module `id`.
    pub fn module(&self, id: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.id == id)
    }
}

/// A curriculum: a versioned set of courses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curriculum {
    pub format_version: u32,
    pub id: String,
    pub version: String,
    pub title_en: String,
    #[serde(default)]
    pub title_ja: Option<String>,
    #[serde(default)]
    pub description: String,
    pub qualifications: Vec<QualificationDef>,
    pub courses: Vec<Course>,
}

fn check_id(field: &str, id: &str) -> Result<(), TrainingError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(TrainingError::invalid(
            field,
            format!("{id:?} is not a valid id: use 1–64 lowercase letters, digits, '-' and '_'"),
        ))
    }
}

fn check_text(field: &str, text: &str) -> Result<(), TrainingError> {
    if text.trim().is_empty() {
        Err(TrainingError::invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

fn unique<'a>(field: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), TrainingError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(TrainingError::invalid(
                field,
                format!("{id:?} appears twice: ids must be unique"),
            ));
        }
    }
    Ok(())
}

impl Curriculum {
    /// Parses and validates a curriculum TOML file.
    pub fn from_toml(text: &str) -> Result<Curriculum, TrainingError> {
        if text.len() > CURRICULUM_BYTES_MAX {
            return Err(TrainingError::invalid(
                "curriculum",
                format!(
                    "{} bytes is more than the {CURRICULUM_BYTES_MAX} allowed",
                    text.len()
                ),
            ));
        }
        let c: Curriculum = toml::from_str(text)
            .map_err(|e| TrainingError::invalid("curriculum", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// The shipped clinical-culturist curriculum.
    pub fn clinical_culturist() -> Curriculum {
        Curriculum::from_toml(CLINICAL_CULTURIST_TOML).expect("the shipped curriculum is valid")
    }

    /// SHA-256 (hex) of the curriculum's canonical JSON form: what an approval signs.
    pub fn content_hash(&self) -> String {
        let json = serde_json::to_string(self).expect("curricula serialize");
        hex::encode(Sha256::digest(json.as_bytes()))
    }

    /// The course `id`.
    pub fn course(&self, id: &str) -> Option<&Course> {
        self.courses.iter().find(|c| c.id == id)
    }

    /// The qualification `id`.
    pub fn qualification(&self, id: &str) -> Option<&QualificationDef> {
        self.qualifications.iter().find(|q| q.id == id)
    }

    /// The course granting qualification `id`.
    pub fn granting_course(&self, id: &str) -> Option<&Course> {
        self.courses
            .iter()
            .find(|c| c.grants.iter().any(|g| g == id))
    }

    fn validate(&self) -> Result<(), TrainingError> {
        if self.format_version != 1 {
            return Err(TrainingError::invalid(
                "format_version",
                format!(
                    "format_version {} is not supported: this build reads 1",
                    self.format_version
                ),
            ));
        }
        check_id("id", &self.id)?;
        let version_ok = {
            let parts: Vec<&str> = self.version.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit()))
        };
        if !version_ok {
            return Err(TrainingError::invalid(
                "version",
                format!("{:?} is not MAJOR.MINOR.PATCH (e.g. 1.0.0)", self.version),
            ));
        }
        check_text("title_en", &self.title_en)?;
        if self.courses.is_empty() || self.courses.len() > COURSES_MAX {
            return Err(TrainingError::invalid(
                "courses",
                format!("a curriculum has 1–{COURSES_MAX} courses"),
            ));
        }
        unique(
            "qualifications",
            self.qualifications.iter().map(|q| q.id.as_str()),
        )?;
        unique("courses", self.courses.iter().map(|c| c.id.as_str()))?;
        for (i, c) in self.courses.iter().enumerate() {
            self.validate_course(i, c)?;
        }
        for (i, q) in self.qualifications.iter().enumerate() {
            self.validate_qualification(i, q)?;
        }
        self.check_prerequisite_cycles()
    }

    fn validate_course(&self, i: usize, c: &Course) -> Result<(), TrainingError> {
        let at = format!("courses[{i}]");
        check_id(&format!("{at}.id"), &c.id)?;
        check_text(&format!("{at}.title_en"), &c.title_en)?;
        for p in &c.prerequisites {
            if self.course(p).is_none() {
                return Err(TrainingError::invalid(
                    format!("{at}.prerequisites"),
                    format!(
                        "course {p:?} is not in this curriculum: add it or remove the prerequisite"
                    ),
                ));
            }
        }
        for g in &c.grants {
            if self.qualification(g).is_none() {
                return Err(TrainingError::invalid(
                    format!("{at}.grants"),
                    format!(
                        "qualification {g:?} is not declared: add a [[qualifications]] entry with id = {g:?}"
                    ),
                ));
            }
        }
        if c.modules.is_empty() {
            return Err(TrainingError::invalid(
                format!("{at}.modules"),
                "a course has at least one module",
            ));
        }
        if c.assessments.is_empty() {
            return Err(TrainingError::invalid(
                format!("{at}.assessments"),
                "a course has at least one assessment",
            ));
        }
        unique(
            &format!("{at}.modules"),
            c.modules.iter().map(|m| m.id.as_str()),
        )?;
        unique(
            &format!("{at}.assessments"),
            c.assessments.iter().map(|a| a.id.as_str()),
        )?;
        for (j, m) in c.modules.iter().enumerate() {
            check_id(&format!("{at}.modules[{j}].id"), &m.id)?;
            check_text(&format!("{at}.modules[{j}].title"), &m.title)?;
            if !(m.hours.is_finite() && m.hours > 0.0 && m.hours <= 1_000.0) {
                return Err(TrainingError::invalid(
                    format!("{at}.modules[{j}].hours"),
                    "hours must be more than 0 and at most 1000",
                ));
            }
        }
        for (j, a) in c.assessments.iter().enumerate() {
            let f = format!("{at}.assessments[{j}]");
            check_id(&format!("{f}.id"), &a.id)?;
            check_text(&format!("{f}.title"), &a.title)?;
            match (a.kind, a.pass_mark_percent, a.units_min) {
                (AssessmentKind::Written, Some(1..=100), None) => {}
                (AssessmentKind::Written, _, None) => {
                    return Err(TrainingError::invalid(
                        format!("{f}.pass_mark_percent"),
                        "a written test needs pass_mark_percent between 1 and 100",
                    ));
                }
                (AssessmentKind::MediaFill, None, Some(1..)) => {}
                (AssessmentKind::MediaFill, None, _) => {
                    return Err(TrainingError::invalid(
                        format!("{f}.units_min"),
                        "a media fill needs units_min of at least 1",
                    ));
                }
                (AssessmentKind::Practical, None, None) => {}
                (kind, _, _) => {
                    return Err(TrainingError::invalid(
                        f,
                        format!(
                            "a {kind:?} assessment takes pass_mark_percent only when written and units_min only when a media fill"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_qualification(&self, i: usize, q: &QualificationDef) -> Result<(), TrainingError> {
        let at = format!("qualifications[{i}]");
        check_id(&format!("{at}.id"), &q.id)?;
        check_text(&format!("{at}.name_en"), &q.name_en)?;
        if !(1..=VALIDITY_DAYS_MAX).contains(&q.validity_days) {
            return Err(TrainingError::invalid(
                format!("{at}.validity_days"),
                format!("validity_days must be 1–{VALIDITY_DAYS_MAX}"),
            ));
        }
        let granting: Vec<&Course> = self
            .courses
            .iter()
            .filter(|c| c.grants.contains(&q.id))
            .collect();
        let course = match granting.as_slice() {
            [one] => *one,
            [] => {
                return Err(TrainingError::invalid(
                    at,
                    format!(
                        "qualification {:?} is granted by no course: add it to one course's grants",
                        q.id
                    ),
                ));
            }
            _ => {
                return Err(TrainingError::invalid(
                    at,
                    format!(
                        "qualification {:?} is granted by more than one course: exactly one course grants it",
                        q.id
                    ),
                ));
            }
        };
        if q.requalify_with.is_empty() {
            return Err(TrainingError::invalid(
                format!("{at}.requalify_with"),
                "name the assessments that renew this qualification",
            ));
        }
        for a in &q.requalify_with {
            if course.assessment(a).is_none() {
                return Err(TrainingError::invalid(
                    format!("{at}.requalify_with"),
                    format!(
                        "assessment {a:?} is not an assessment of course {:?}",
                        course.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a cycle in the prerequisites, naming it (`a -> b -> a`).
    fn check_prerequisite_cycles(&self) -> Result<(), TrainingError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let edges: BTreeMap<&str, &[String]> = self
            .courses
            .iter()
            .map(|c| (c.id.as_str(), c.prerequisites.as_slice()))
            .collect();
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        for start in edges.keys() {
            if marks.contains_key(start) {
                continue;
            }
            // Iterative depth-first search; `path` is the open chain.
            let mut path: Vec<(&str, usize)> = vec![(start, 0)];
            marks.insert(start, Mark::Open);
            while let Some((node, next)) = path.last_mut() {
                let prereqs = edges[*node];
                if *next == prereqs.len() {
                    marks.insert(node, Mark::Done);
                    path.pop();
                    continue;
                }
                let child = prereqs[*next].as_str();
                *next += 1;
                match marks.get(child) {
                    Some(Mark::Done) => {}
                    Some(Mark::Open) => {
                        let from = path.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let mut cycle: Vec<&str> = path[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(child);
                        return Err(TrainingError::invalid(
                            "courses.prerequisites",
                            format!(
                                "the prerequisites form a cycle: {}; remove one of these prerequisites",
                                cycle.join(" -> ")
                            ),
                        ));
                    }
                    None => {
                        marks.insert(child, Mark::Open);
                        path.push((child, 0));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_curriculum_is_valid_and_grants_every_recipe_qualification() {
        let c = Curriculum::clinical_culturist();
        for q in [
            "cpc-aseptic-processing",
            "cpc-cryopreservation",
            "cpc-device-operation",
            "cpc-genome-editing",
            "cpc-ipc-sampling",
            "cpc-receipt",
            "cpc-viral-vector-handling",
        ] {
            assert!(c.granting_course(q).is_some(), "{q}");
        }
        assert!(c.courses.iter().any(|c| c.level == Level::Basic));
        assert!(c.courses.iter().any(|c| c.level == Level::Advanced));
        assert_eq!(c.content_hash().len(), 64);
    }

    #[test]
    fn the_shipped_matrix_names_only_qualifications_the_curriculum_grants() {
        let c = Curriculum::clinical_culturist();
        let m = crate::QualificationMatrix::demo();
        for site in ["cpc-kyoto", "hosp-kyoto", "qc-kyoto"] {
            let site = cellops_domain::SiteId::parse(site).unwrap();
            for q in m.qualifications_at(&site) {
                assert!(
                    c.granting_course(&q).is_some(),
                    "{q} is granted by a course"
                );
            }
        }
    }

    fn with_prerequisites(a: &str, b: &str) -> String {
        CLINICAL_CULTURIST_TOML
            .replacen(
                "prerequisites = [] # gmp",
                &format!("prerequisites = [{a}] # gmp"),
                1,
            )
            .replace("XX", b)
    }

    #[test]
    fn a_prerequisite_cycle_is_named() {
        let text = with_prerequisites("\"basic-aseptic-technique\"", "");
        let e = Curriculum::from_toml(&text).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("cycle"), "{s}");
        assert!(
            s.contains(
                "basic-gmp-documentation -> basic-aseptic-technique -> basic-gmp-documentation"
            ) || s.contains(
                "basic-aseptic-technique -> basic-gmp-documentation -> basic-aseptic-technique"
            ),
            "{s}"
        );
    }

    #[test]
    fn bad_curricula_name_the_field() {
        let e = Curriculum::from_toml(&with_prerequisites("\"no-such-course\"", "")).unwrap_err();
        assert!(e.to_string().contains("no-such-course"), "{e}");
        let e = Curriculum::from_toml(&CLINICAL_CULTURIST_TOML.replacen(
            "pass_mark_percent = 80",
            "pass_mark_percent = 0",
            1,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("pass_mark_percent"), "{e}");
        let e = Curriculum::from_toml(&CLINICAL_CULTURIST_TOML.replacen(
            "version = \"1.0.0\"",
            "version = \"one\"",
            1,
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("version"), "{e}");
        let e = Curriculum::from_toml(&CLINICAL_CULTURIST_TOML.replacen(
            "validity_days = 365",
            "validity_days = 0",
            1,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("validity_days"), "{e}");
    }
}
