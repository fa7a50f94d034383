//! Reports and the auditor's questions, answered from the read model.
//!
//! - [`training_matrix`]: people × qualifications with expiry, per site (JSON and CSV).
//! - [`expiring`]: qualifications that expire within N days.
//! - [`qualified_at`]: who was qualified for a step (its qualification) at an instant.
//! - [`check_steps`]: was every step of a batch done by a person qualified at the time.

use crate::DAY_US;
use crate::enforce::check_action;
use crate::matrix::QualificationMatrix;
use crate::state::{QualificationStatus, TrainingState};
use cellops_domain::{SiteId, Timestamp, UserId};
use serde::Serialize;

/// A qualification expiring within this many days shows as `expiring` (amber in the UI).
pub const EXPIRING_SOON_DAYS: i64 = 30;

/// One cell of the training matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Held, more than [`EXPIRING_SOON_DAYS`] left (green).
    Qualified,
    /// Held, expiring within [`EXPIRING_SOON_DAYS`] (amber).
    Expiring,
    /// Expired (red).
    Expired,
    /// Suspended (red).
    Suspended,
    /// Never held (grey).
    None,
}

impl CellStatus {
    fn as_str(self) -> &'static str {
        match self {
            CellStatus::Qualified => "qualified",
            CellStatus::Expiring => "expiring",
            CellStatus::Expired => "expired",
            CellStatus::Suspended => "suspended",
            CellStatus::None => "none",
        }
    }
}

/// A person's hold on one qualification, as the matrix shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub qualification: String,
    pub status: CellStatus,
    pub expires_at: Option<Timestamp>,
}

/// One person's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub user: UserId,
    pub name: String,
    pub cells: Vec<Cell>,
}

/// The training matrix of a site at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixReport {
    pub site: SiteId,
    pub at: Timestamp,
    pub qualifications: Vec<String>,
    pub rows: Vec<Row>,
}

fn cell(state: &TrainingState, user: &UserId, qualification: &str, at: Timestamp) -> Cell {
    let (status, expires_at) = match state.status(user, qualification, at) {
        QualificationStatus::Qualified { expires_at, .. } => {
            let soon = expires_at.unix_us() - at.unix_us() <= EXPIRING_SOON_DAYS * DAY_US;
            let s = if soon {
                CellStatus::Expiring
            } else {
                CellStatus::Qualified
            };
            (s, Some(expires_at))
        }
        QualificationStatus::Expired { expired_at, .. } => (CellStatus::Expired, Some(expired_at)),
        QualificationStatus::Suspended { expires_at, .. } => {
            (CellStatus::Suspended, Some(expires_at))
        }
        QualificationStatus::NeverGranted => (CellStatus::None, None),
    };
    Cell {
        qualification: qualification.to_string(),
        status,
        expires_at,
    }
}

/// People × qualifications at `site` at `at`. `people` are those with a role at the site
/// (id, printed name); `qualifications` are the ones the site's matrix requires.
pub fn training_matrix(
    state: &TrainingState,
    site: &SiteId,
    people: &[(UserId, String)],
    qualifications: &[String],
    at: Timestamp,
) -> MatrixReport {
    let rows = people
        .iter()
        .map(|(user, name)| Row {
            user: user.clone(),
            name: name.clone(),
            cells: qualifications
                .iter()
                .map(|q| cell(state, user, q, at))
                .collect(),
        })
        .collect();
    MatrixReport {
        site: site.clone(),
        at,
        qualifications: qualifications.to_vec(),
        rows,
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl MatrixReport {
    /// The report as CSV: `user,name` then, per qualification, its status and expiry.
    pub fn to_csv(&self) -> String {
        let mut header = vec!["user".to_string(), "name".to_string()];
        for q in &self.qualifications {
            header.push(q.clone());
            header.push(format!("{q} expires_at"));
        }
        let mut out = header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(",");
        out.push('\n');
        for row in &self.rows {
            let mut fields = vec![csv_field(row.user.as_str()), csv_field(&row.name)];
            for c in &row.cells {
                fields.push(c.status.as_str().to_string());
                fields.push(c.expires_at.map(|t| t.to_string()).unwrap_or_default());
            }
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }
}

/// A qualification that expires soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiring {
    pub user: UserId,
    pub name: String,
    pub qualification: String,
    pub expires_at: Timestamp,
    pub days_left: i64,
}

/// Qualifications held at `at` that expire within `within_days`, soonest first.
pub fn expiring(
    state: &TrainingState,
    people: &[(UserId, String)],
    qualifications: &[String],
    at: Timestamp,
    within_days: u32,
) -> Vec<Expiring> {
    let horizon = at.unix_us().saturating_add(i64::from(within_days) * DAY_US);
    let mut out: Vec<Expiring> = people
        .iter()
        .flat_map(|(user, name)| {
            qualifications
                .iter()
                .filter_map(move |q| match state.status(user, q, at) {
                    QualificationStatus::Qualified { expires_at, .. }
                        if expires_at.unix_us() <= horizon =>
                    {
                        Some(Expiring {
                            user: user.clone(),
                            name: name.clone(),
                            qualification: q.clone(),
                            expires_at,
                            days_left: (expires_at.unix_us() - at.unix_us()) / DAY_US,
                        })
                    }
                    _ => None,
                })
        })
        .collect();
    out.sort_by(|a, b| (a.expires_at, &a.user).cmp(&(b.expires_at, &b.user)));
    out
}

/// A person qualified at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QualifiedPerson {
    pub user: UserId,
    pub since: Timestamp,
    pub expires_at: Timestamp,
    pub certificate: String,
}

/// Everyone who held `qualification` at `at`.
pub fn qualified_at(
    state: &TrainingState,
    qualification: &str,
    at: Timestamp,
) -> Vec<QualifiedPerson> {
    state
        .people()
        .filter_map(|(user, _)| match state.status(user, qualification, at) {
            QualificationStatus::Qualified {
                since,
                expires_at,
                certificate,
            } => Some(QualifiedPerson {
                user: user.clone(),
                since,
                expires_at,
                certificate,
            }),
            _ => None,
        })
        .collect()
}

/// A step some record says was performed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PerformedStep {
    pub seq: u64,
    pub event_type: String,
    pub performer: Option<UserId>,
    /// The matrix action, or `qualification:<id>` for a recipe qualification.
    pub action: String,
    pub site: SiteId,
    pub at: Timestamp,
}

/// Payload keys naming who performed a step, in order of preference.
pub const PERFORMER_KEYS: [&str; 4] = ["performer", "performed_by", "by", "operator"];

/// The step a record describes, when its payload names a `qualification` or an `action`
/// (records without either are not GMP steps with a declared requirement). The performer
/// is read from [`PERFORMER_KEYS`]; the time from `at`, else `recorded_at`.
pub fn step_of(
    seq: u64,
    event_type: &str,
    payload: &serde_json::Value,
    site: &SiteId,
    recorded_at: Timestamp,
) -> Option<PerformedStep> {
    let text = |key: &str| payload.get(key).and_then(|v| v.as_str());
    let action = match (text("qualification"), text("action")) {
        (Some(q), _) => format!("{}{q}", crate::QUALIFICATION_PREFIX),
        (None, Some(a)) => a.to_string(),
        (None, None) => return None,
    };
    let performer = PERFORMER_KEYS
        .iter()
        .find_map(|k| text(k))
        .and_then(|p| UserId::parse(p).ok());
    let at = text("at")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(recorded_at);
    Some(PerformedStep {
        seq,
        event_type: event_type.to_string(),
        performer,
        action,
        site: site.clone(),
        at,
    })
}

/// The answer for one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepCheck {
    #[serde(flatten)]
    pub step: PerformedStep,
    pub qualification: Option<String>,
    pub qualified: bool,
    /// Why not, when not.
    pub problem: Option<String>,
}

/// The answer for a batch: every step with its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchCheck {
    /// True when there is at least one step and every one was done by a qualified person.
    pub all_qualified: bool,
    pub steps: Vec<StepCheck>,
}

/// Was every step done by a person qualified for it at the time?
pub fn check_steps(
    state: &TrainingState,
    matrix: &QualificationMatrix,
    steps: Vec<PerformedStep>,
) -> BatchCheck {
    let steps: Vec<StepCheck> = steps
        .into_iter()
        .map(|step| {
            let Some(performer) = step.performer.clone() else {
                return StepCheck {
                    step,
                    qualification: None,
                    qualified: false,
                    problem: Some(format!(
                        "the record names no performer (one of {})",
                        PERFORMER_KEYS.join(", ")
                    )),
                };
            };
            match check_action(state, matrix, &performer, &step.site, &step.action, step.at) {
                Ok(q) => StepCheck {
                    step,
                    qualification: Some(q),
                    qualified: true,
                    problem: None,
                },
                Err(refused) => StepCheck {
                    step,
                    qualification: refused.qualification.clone(),
                    qualified: false,
                    problem: Some(refused.message.clone()),
                },
            }
        })
        .collect();
    BatchCheck {
        all_qualified: !steps.is_empty() && steps.iter().all(|s| s.qualified),
        steps,
    }
}

/// Whether `user` holds `qualification` over the whole period `from..=to`, as recorded
/// now: checked at `from`, at `to`, and at every recorded grant, expiry, suspension and
/// reinstatement in between (a lapse inside the period is a gap). `Err` is the first
/// instant it is not held, with the status then.
pub fn held_throughout(
    state: &TrainingState,
    user: &UserId,
    qualification: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<(), (Timestamp, QualificationStatus)> {
    let mut instants = vec![from, to];
    if let Some(changes) = state
        .person(user)
        .and_then(|p| p.qualifications.get(qualification))
    {
        for change in changes {
            match change {
                crate::state::Change::Granted { at, expires_at, .. } => {
                    instants.extend([*at, *expires_at]);
                }
                crate::state::Change::Suspended { at, .. }
                | crate::state::Change::Reinstated { at, .. } => instants.push(*at),
            }
        }
    }
    instants.retain(|t| *t >= from && *t <= to);
    instants.sort();
    instants.dedup();
    for at in instants {
        let status = state.status(user, qualification, at);
        if !status.is_qualified() {
            return Err((at, status));
        }
    }
    Ok(())
}
