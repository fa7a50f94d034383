//! Training and qualification over HTTP: curricula, training records, certificates with a
//! public verification code, suspension and reinstatement, the training matrix, the auditor's
//! questions, and [`require_qualified`], the check every GMP step calls.
//!
//! The decisions are `cellops-training`'s; this module checks who may ask, records the
//! decided events, and serves the read model ([`TrainingModel`]).

use super::parse_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery, idempotency_key};
use crate::openapi::RouteDoc;
use crate::projection::Projection;
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cellops_domain::events::EventType;
use cellops_domain::{Role, SiteId, Timestamp, UserId};
use cellops_ledger::{Backend, NewRecord, Record};
use cellops_training::decide::{self, Outcome};
use cellops_training::event::{RefusalReason, Refused};
use cellops_training::report;
use cellops_training::{
    BedsideChecker, QualificationMatrix, TrainingError, TrainingEvent, TrainingState, certificate,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub use cellops_training::is_qualified;

/// The ledger event types of this module.
pub const EVENT_TYPES: &[EventType] = cellops_training::TRAINING_EVENT_TYPES;

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "post",
        "/api/training/curricula",
        "Import a curriculum version (TOML); it is used once QA e-signs its record as Approved",
        true,
        &["site", "toml"],
    ),
    (
        "get",
        "/api/training/curricula",
        "Imported curricula with their approval",
        true,
        &[],
    ),
    (
        "get",
        "/api/training/curricula/{id}",
        "One curriculum: every imported version, courses and qualifications",
        true,
        &[],
    ),
    (
        "post",
        "/api/training/enrolments",
        "Enrol a trainee in a course (prerequisites checked)",
        true,
        &["site", "trainee", "curriculum", "course"],
    ),
    (
        "post",
        "/api/training/attendance",
        "Record that a trainee attended a module",
        true,
        &["site", "trainee", "course", "module"],
    ),
    (
        "post",
        "/api/training/assessments",
        "Record an assessment result (written score, practical judgement, media fill units); a failed media fill suspends",
        true,
        &[
            "site",
            "trainee",
            "course",
            "assessment",
            "score_percent",
            "passed",
            "units_filled",
            "units_contaminated",
            "note",
        ],
    ),
    (
        "post",
        "/api/training/certificates",
        "Issue the certificate of a course (or a requalification) with a verification code",
        true,
        &["site", "trainee", "course"],
    ),
    (
        "get",
        "/api/training/certificates/{code}/verify",
        "Check a certificate code against the ledger (no login needed)",
        false,
        &[],
    ),
    (
        "get",
        "/api/training/certificates/{code}/pdf",
        "The certificate as PDF",
        true,
        &[],
    ),
    (
        "post",
        "/api/training/suspensions",
        "Suspend a person's qualification",
        true,
        &["site", "user", "qualification", "reason"],
    ),
    (
        "post",
        "/api/training/reinstatements",
        "Reinstate a suspended qualification",
        true,
        &["site", "user", "qualification", "reason"],
    ),
    (
        "get",
        "/api/training/people/{id}",
        "A person's training record and qualifications",
        true,
        &[],
    ),
    (
        "get",
        "/api/training/check",
        "Is this person qualified for this action at this site now (or at=)? Records nothing",
        true,
        &[],
    ),
    (
        "get",
        "/api/training/matrix",
        "Training matrix of a site: people x qualifications with expiry (format=json or csv)",
        true,
        &[],
    ),
    (
        "get",
        "/api/training/expiring",
        "Qualifications at a site expiring within days=N",
        true,
        &[],
    ),
    (
        "get",
        "/api/training/qualified",
        "Who was qualified for an action (or qualification:<id>) at a site at an instant",
        true,
        &[],
    ),
    (
        "get",
        "/api/training/batch-check",
        "Was every step of a stream (e.g. batch/B) done by a person qualified at the time",
        true,
        &[],
    ),
    (
        "post",
        "/api/training/staffing",
        "Staffing check of a plan: who at the site will be qualified for each planned step (action at an instant)",
        true,
        &["site", "steps"],
    ),
    (
        "get",
        "/api/training/refusals",
        "Recent qualification refusals at a site",
        true,
        &[],
    ),
    (
        "get",
        "/api/training/qualification-matrix",
        "The site's qualification matrix (action -> qualification)",
        true,
        &[],
    ),
];

/// The training read model: the training state and the site qualification matrix.
pub struct TrainingModel {
    pub state: TrainingState,
    pub matrix: QualificationMatrix,
}

impl TrainingModel {
    pub fn new(matrix: QualificationMatrix) -> TrainingModel {
        TrainingModel {
            state: TrainingState::default(),
            matrix,
        }
    }

    /// The bedside checkers' qualification check for `cellops_custody::decide_bedside`.
    pub fn bedside(&self) -> BedsideChecker<'_> {
        BedsideChecker {
            state: &self.state,
            matrix: &self.matrix,
        }
    }
}

impl Projection for TrainingModel {
    fn apply(&mut self, record: &Record) {
        if record.event_type == "esig.signed" {
            let signs_seq = record
                .payload_json()
                .get("signs_seq")
                .and_then(Value::as_u64);
            if let (Some(seq), Some(sig)) = (signs_seq, &record.signature) {
                self.state
                    .apply_signature(seq, &sig.signer, &sig.meaning, sig.signed_at);
            }
            return;
        }
        match TrainingEvent::from_record(&record.event_type, &record.payload) {
            None => {}
            Some(Ok(event)) => self.state.apply(record.seq, &event),
            Some(Err(e)) => {
                tracing::error!(seq = record.seq, error = %e, "unreadable training record")
            }
        }
    }
}

impl From<TrainingError> for ApiError {
    fn from(e: TrainingError) -> ApiError {
        match &e {
            TrainingError::Invalid { field, rule } => ApiError::bad_request(field, rule.clone()),
            TrainingError::NotFound { .. } => ApiError::not_found(e.to_string()),
            TrainingError::Conflict { .. } => ApiError::conflict(e.to_string()),
            TrainingError::NotConfigured { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, e.reason_code(), e.to_string())
            }
        }
    }
}

/// The ledger record of a training event, as `actor`.
pub fn record_of(event: &TrainingEvent, actor: &str, site: &SiteId) -> NewRecord {
    NewRecord::new(
        &event.stream(),
        event.type_name(),
        1,
        event.payload(),
        actor,
        site.as_str(),
    )
}

fn refusal_error(refused: &Refused) -> ApiError {
    let code = match refused.reason {
        RefusalReason::NotConfigured => "qualification_not_configured",
        _ => "not_qualified",
    };
    ApiError::new(StatusCode::FORBIDDEN, code, refused.message.clone())
}

/// Refuses (403) unless `user` holds, at `at`, the qualification `action` requires at
/// `site`. `action` is a key of the site's qualification matrix (`custody.handoff`,
/// `qc.result.sterility`, `release.sign`, …) or `qualification:<id>` for a recipe
/// qualification. A refusal is recorded (`qualification.refused`: who, action, site, the
/// missing or expired qualification) and its message names the qualification and, when
/// expired, its expiry date. Actions the matrix does not name are refused, never allowed.
pub async fn require_qualified<B: Backend>(
    state: &AppState<B>,
    user: &UserId,
    site: &SiteId,
    action: &str,
    at: Timestamp,
) -> ApiResult<()> {
    state.sync().await?;
    let checked = state.read_model(|m: &mut TrainingModel| {
        cellops_training::check_action(&m.state, &m.matrix, user, site, action, at)
    });
    match checked {
        Ok(_) => Ok(()),
        Err(refused) => Err(record_refusal(state, &refused).await),
    }
}

/// Records a refusal decided by [`cellops_training::check_action`] (`qualification.refused`
/// on `training/<user>`, as the refused user) and returns the 403 to answer with. When the
/// record cannot be appended, that error is returned instead: a refusal is never answered
/// unrecorded.
pub async fn record_refusal<B: Backend>(state: &AppState<B>, refused: &Refused) -> ApiError {
    let event = TrainingEvent::Refused(refused.clone());
    match state
        .append(
            vec![record_of(&event, refused.user.as_str(), &refused.site)],
            None,
        )
        .await
    {
        Ok(_) => refusal_error(refused),
        Err(e) => e,
    }
}

fn caller_id(caller: &Caller) -> ApiResult<UserId> {
    UserId::parse(&caller.user.id).map_err(ApiError::internal)
}

fn parse_user(field: &str, text: &str) -> ApiResult<UserId> {
    UserId::parse(text).map_err(|e| ApiError::bad_request(field, e.to_string()))
}

fn parse_at(text: Option<&str>, now: Timestamp) -> ApiResult<Timestamp> {
    match text {
        None => Ok(now),
        Some(t) => Timestamp::parse(t).map_err(|e| ApiError::bad_request("at", e.to_string())),
    }
}

/// Requires that `user` exists (training records are about accounts).
fn require_user<B: Backend>(state: &AppState<B>, field: &str, user: &UserId) -> ApiResult<()> {
    if state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(user.as_str())
        .is_some()
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            field,
            format!("user {user} does not exist: training records are kept for existing accounts"),
        ))
    }
}

/// Records `events` as the caller and returns the first record's view.
async fn record_events<B: Backend>(
    state: &AppState<B>,
    events: &[TrainingEvent],
    caller: &Caller,
    site: &SiteId,
    headers: &HeaderMap,
) -> ApiResult<Value> {
    let records = events
        .iter()
        .map(|e| record_of(e, &caller.user.id, site))
        .collect();
    let out = state.append(records, idempotency_key(headers)).await?;
    let records: Vec<Value> = out
        .records
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "stream": r.stream,
                "event_type": r.event_type,
                "hash": hex::encode(r.hash),
                "payload": r.payload_json(),
            })
        })
        .collect();
    Ok(json!({ "records": records, "replayed": out.replayed }))
}

const TRAINING_STAFF: &[Role] = &[Role::Trainer];
const RECORD_READERS: &[Role] = &[
    Role::Trainer,
    Role::SiteAdmin,
    Role::Auditor,
    Role::QaReviewer,
    Role::QaReleaser,
];

#[derive(Deserialize)]
pub struct ImportBody {
    pub site: String,
    pub toml: String,
}

pub async fn import_curriculum<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<ImportBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Trainer, Role::SiteAdmin], &site)?;
    state.sync().await?;
    let by = caller_id(&caller)?;
    let event = state.read_model(|m: &mut TrainingModel| {
        decide::decide_import(&m.state, &body.toml, &by, state.clock.now())
    })?;
    let hash = match &event {
        TrainingEvent::CurriculumImported(e) => e.content_hash.clone(),
        _ => unreachable!("decide_import returns an import"),
    };
    let mut out = record_events(&state, &[event], &caller, &site, &headers).await?;
    out["content_hash"] = json!(hash);
    out["next"] =
        json!("QA approves it: POST /api/signatures with this seq and meaning \"Approved\"");
    Ok(Json(out))
}

fn curriculum_view(e: &cellops_training::state::CurriculumEntry, full: bool) -> Value {
    let mut v = json!({
        "id": e.curriculum.id,
        "version": e.curriculum.version,
        "title_en": e.curriculum.title_en,
        "title_ja": e.curriculum.title_ja,
        "seq": e.seq,
        "content_hash": e.content_hash,
        "imported_by": e.imported_by,
        "imported_at": e.imported_at,
        "approved": e.approved.as_ref().map(|(by, at)| json!({"by": by, "at": at})),
    });
    if full {
        v["curriculum"] = serde_json::to_value(&e.curriculum).expect("curricula serialize");
    }
    v
}

pub async fn list_curricula<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let list: Vec<Value> = state.read_model(|m: &mut TrainingModel| {
        m.state
            .curricula()
            .map(|e| curriculum_view(e, false))
            .collect()
    });
    Ok(Json(json!({ "curricula": list })))
}

pub async fn show_curriculum<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let versions: Vec<Value> = state.read_model(|m: &mut TrainingModel| {
        m.state
            .curricula()
            .filter(|e| e.curriculum.id == id)
            .map(|e| curriculum_view(e, true))
            .collect()
    });
    if versions.is_empty() {
        return Err(ApiError::not_found(format!(
            "curriculum {id:?} was never imported"
        )));
    }
    Ok(Json(json!({ "id": id, "versions": versions })))
}

#[derive(Deserialize)]
pub struct EnrolBody {
    pub site: String,
    pub trainee: String,
    pub curriculum: String,
    pub course: String,
}

pub async fn enrol<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<EnrolBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(TRAINING_STAFF, &site)?;
    let trainee = parse_user("trainee", &body.trainee)?;
    state.sync().await?;
    require_user(&state, "trainee", &trainee)?;
    let by = caller_id(&caller)?;
    let event = state.read_model(|m: &mut TrainingModel| {
        decide::decide_enrol(
            &m.state,
            &trainee,
            &body.curriculum,
            &body.course,
            &site,
            &by,
            state.clock.now(),
        )
    })?;
    Ok(Json(
        record_events(&state, &[event], &caller, &site, &headers).await?,
    ))
}

#[derive(Deserialize)]
pub struct AttendBody {
    pub site: String,
    pub trainee: String,
    pub course: String,
    pub module: String,
}

pub async fn attend<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<AttendBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(TRAINING_STAFF, &site)?;
    let trainee = parse_user("trainee", &body.trainee)?;
    state.sync().await?;
    let by = caller_id(&caller)?;
    let event = state.read_model(|m: &mut TrainingModel| {
        decide::decide_attend(
            &m.state,
            &trainee,
            &body.course,
            &body.module,
            &site,
            &by,
            state.clock.now(),
        )
    })?;
    Ok(Json(
        record_events(&state, &[event], &caller, &site, &headers).await?,
    ))
}

#[derive(Deserialize)]
pub struct AssessBody {
    pub site: String,
    pub trainee: String,
    pub course: String,
    pub assessment: String,
    /// Written tests.
    pub score_percent: Option<u32>,
    /// Practical assessments.
    pub passed: Option<bool>,
    /// Media fills.
    pub units_filled: Option<u32>,
    pub units_contaminated: Option<u32>,
    pub note: Option<String>,
}

fn outcome(body: &AssessBody) -> ApiResult<Outcome> {
    match (
        body.score_percent,
        body.passed,
        body.units_filled,
        body.units_contaminated,
    ) {
        (Some(s), None, None, None) => Ok(Outcome::Score(s)),
        (None, Some(p), None, None) => Ok(Outcome::Judged(p)),
        (None, None, Some(filled), Some(contaminated)) => Ok(Outcome::MediaFill {
            filled,
            contaminated,
        }),
        _ => Err(ApiError::bad_request(
            "result",
            "give exactly one result: score_percent (written test), passed (practical), or units_filled with units_contaminated (media fill)",
        )),
    }
}

/// Records an assessment result by the calling trainer. Practicals and media fills count
/// once the trainer e-signs the record (POST /api/signatures).
pub async fn assess<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<AssessBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(TRAINING_STAFF, &site)?;
    let trainee = parse_user("trainee", &body.trainee)?;
    let outcome = outcome(&body)?;
    state.sync().await?;
    let by = caller_id(&caller)?;
    let events = state.read_model(|m: &mut TrainingModel| {
        decide::decide_assess(
            &m.state,
            &trainee,
            &body.course,
            &body.assessment,
            outcome,
            body.note.as_deref(),
            &site,
            &by,
            state.clock.now(),
        )
    })?;
    Ok(Json(
        record_events(&state, &events, &caller, &site, &headers).await?,
    ))
}

#[derive(Deserialize)]
pub struct CertifyBody {
    pub site: String,
    pub trainee: String,
    pub course: String,
}

pub async fn certify<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<CertifyBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(TRAINING_STAFF, &site)?;
    let trainee = parse_user("trainee", &body.trainee)?;
    state.sync().await?;
    let by = caller_id(&caller)?;
    let code = certificate::format_code(state.with_rng(rand::RngCore::next_u64));
    let event = state.read_model(|m: &mut TrainingModel| {
        decide::decide_certify(
            &m.state,
            &trainee,
            &body.course,
            &code,
            &site,
            &by,
            state.clock.now(),
        )
    })?;
    let mut out = record_events(&state, &[event], &caller, &site, &headers).await?;
    let code = out["records"][0]["payload"]["code"].clone();
    out["code"] = code;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct QualificationBody {
    pub site: String,
    pub user: String,
    pub qualification: String,
    pub reason: String,
}

pub async fn suspend<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<QualificationBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Trainer, Role::QaReviewer, Role::SiteAdmin], &site)?;
    let user = parse_user("user", &body.user)?;
    state.sync().await?;
    let by = caller_id(&caller)?;
    let event = state.read_model(|m: &mut TrainingModel| {
        decide::decide_suspend(
            &m.state,
            &user,
            &body.qualification,
            &body.reason,
            &site,
            &by,
            state.clock.now(),
        )
    })?;
    Ok(Json(
        record_events(&state, &[event], &caller, &site, &headers).await?,
    ))
}

pub async fn reinstate<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<QualificationBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Trainer, Role::QaReviewer], &site)?;
    let user = parse_user("user", &body.user)?;
    state.sync().await?;
    let by = caller_id(&caller)?;
    let event = state.read_model(|m: &mut TrainingModel| {
        decide::decide_reinstate(
            &m.state,
            &user,
            &body.qualification,
            &body.reason,
            &site,
            &by,
            state.clock.now(),
        )
    })?;
    Ok(Json(
        record_events(&state, &[event], &caller, &site, &headers).await?,
    ))
}

/// Public check of a certificate code: what the ledger says about it, and nothing else
/// (holder's printed name and id, course, qualifications with their status now, the record).
pub async fn verify_certificate<B: Backend>(
    State(state): State<AppState<B>>,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let code = certificate::parse_code(&code)?;
    state.sync().await?;
    let now = state.clock.now();
    let found = state.read_model(|m: &mut TrainingModel| {
        let c = m.state.certificate(&code)?;
        let e = &c.event;
        let course_title = m
            .state
            .curriculum(&e.curriculum, &e.version)
            .and_then(|cu| {
                cu.curriculum
                    .course(&e.course)
                    .map(|co| co.title_en.clone())
            });
        let grants: Vec<Value> = e
            .grants
            .iter()
            .map(|g| {
                let status = m.state.status(&e.trainee, &g.qualification, now);
                json!({
                    "qualification": g.qualification,
                    "expires_at": g.expires_at,
                    "status_now": status,
                })
            })
            .collect();
        Some((c.seq, e.clone(), course_title, grants))
    });
    let Some((seq, e, course_title, grants)) = found else {
        return Err(ApiError::not_found(format!(
            "certificate code {code} does not exist in the ledger: check the code as printed; a certificate that is not found is not valid"
        )));
    };
    let record = state.blocking(move |s| Ok(s.ledger.record(seq)?)).await?;
    let holder_name = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(e.trainee.as_str())
        .map(|u| u.full_name.clone());
    Ok(Json(json!({
        "valid": true,
        "code": code,
        "holder": e.trainee,
        "holder_name": holder_name,
        "curriculum": e.curriculum,
        "version": e.version,
        "course": e.course,
        "course_title": course_title,
        "requalification": e.requalification,
        "issued_at": e.at,
        "issued_by": e.by,
        "site": e.site,
        "grants": grants,
        "ledger": { "seq": record.seq, "hash": hex::encode(record.hash), "stream": record.stream },
        "checked_at": now,
    })))
}

pub async fn certificate_pdf<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    let code = certificate::parse_code(&code)?;
    state.sync().await?;
    let found = state.read_model(|m: &mut TrainingModel| {
        let c = m.state.certificate(&code)?;
        let e = c.event.clone();
        let curriculum = m
            .state
            .curriculum(&e.curriculum, &e.version)?
            .curriculum
            .clone();
        Some((c.seq, e, curriculum))
    });
    let Some((seq, e, curriculum)) = found else {
        return Err(ApiError::not_found(format!(
            "certificate code {code} does not exist"
        )));
    };
    if caller.user.id != e.trainee.as_str() {
        caller.require(RECORD_READERS, &e.site)?;
    }
    let record = state.blocking(move |s| Ok(s.ledger.record(seq)?)).await?;
    let holder_name = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(e.trainee.as_str())
        .map(|u| u.full_name.clone())
        .unwrap_or_else(|| e.trainee.to_string());
    let view = certificate::CertificateView {
        code: code.clone(),
        holder_name,
        holder_id: e.trainee.to_string(),
        curriculum_title: curriculum.title_en.clone(),
        curriculum_version: e.version.clone(),
        course_title: curriculum
            .course(&e.course)
            .map(|c| c.title_en.clone())
            .unwrap_or_else(|| e.course.clone()),
        requalification: e.requalification,
        grants: e
            .grants
            .iter()
            .map(|g| {
                let name = curriculum
                    .qualification(&g.qualification)
                    .map(|q| q.name_en.clone())
                    .unwrap_or_else(|| g.qualification.clone());
                (name, g.qualification.clone(), g.expires_at)
            })
            .collect(),
        issued_at: e.at,
        issued_by: e.by.to_string(),
        site: e.site.to_string(),
        ledger_seq: record.seq,
        ledger_hash: hex::encode(record.hash),
    };
    let pdf = certificate::render_pdf(&view);
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

pub async fn person<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = parse_user("id", &id)?;
    let own = caller.user.id == user.as_str();
    let readable: Vec<SiteId> = caller
        .user
        .roles
        .iter()
        .filter(|(r, _)| RECORD_READERS.contains(r))
        .map(|(_, s)| s.clone())
        .collect();
    if !own && readable.is_empty() {
        return Err(ApiError::forbidden(format!(
            "{} may read only their own training record (other people's need one of the roles trainer, site_admin, auditor, qa_reviewer, qa_releaser)",
            caller.user.id
        )));
    }
    state.sync().await?;
    let now = state.clock.now();
    let view = state.read_model(|m: &mut TrainingModel| {
        let p = m.state.person(&user)?;
        let visible = |site: &SiteId| own || readable.contains(site);
        let qualifications: Vec<Value> = p
            .qualifications
            .keys()
            .map(|q| json!({ "qualification": q, "now": m.state.status(&user, q, now) }))
            .collect();
        let certificates: Vec<Value> = p
            .certificates
            .iter()
            .filter_map(|c| m.state.certificate(c))
            .filter(|c| visible(&c.event.site))
            .map(|c| serde_json::to_value(c).expect("serializes"))
            .collect();
        Some(json!({
            "user": user,
            "qualifications": qualifications,
            "enrolments": p.enrolments.iter().filter(|(_, e)| visible(&e.site)).map(|(seq, e)| json!({"seq": seq, "record": e})).collect::<Vec<_>>(),
            "attendance": p.attendance.iter().filter(|(_, e)| visible(&e.site)).map(|(seq, e)| json!({"seq": seq, "record": e})).collect::<Vec<_>>(),
            "assessments": p.assessments.iter().filter(|a| visible(&a.event.site)).collect::<Vec<_>>(),
            "certificates": certificates,
            "changes": p.qualifications,
        }))
    });
    Ok(Json(view.unwrap_or_else(|| json!({ "user": user, "qualifications": [], "enrolments": [], "attendance": [], "assessments": [], "certificates": [], "changes": {} }))))
}

#[derive(Deserialize)]
pub struct CheckQuery {
    pub site: String,
    pub user: String,
    pub action: String,
    pub at: Option<String>,
}

pub async fn check<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<CheckQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    let user = parse_user("user", &q.user)?;
    let at = parse_at(q.at.as_deref(), state.clock.now())?;
    state.sync().await?;
    let answer = state.read_model(|m: &mut TrainingModel| {
        match cellops_training::check_action(&m.state, &m.matrix, &user, &site, &q.action, at) {
            Ok(qualification) => json!({
                "qualified": true,
                "qualification": qualification,
                "status": m.state.status(&user, &qualification, at),
            }),
            Err(r) => json!({
                "qualified": false,
                "qualification": r.qualification,
                "reason": r.reason,
                "message": r.message,
                "expired_at": r.expired_at,
            }),
        }
    });
    let mut answer = answer;
    answer["user"] = json!(user);
    answer["action"] = json!(q.action);
    answer["site"] = json!(site);
    answer["at"] = json!(at);
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub struct SiteQuery {
    pub site: String,
    pub at: Option<String>,
    pub format: Option<String>,
    pub days: Option<u32>,
}

/// People with any role at `site` (id, printed name), and the qualifications that matter
/// there: those the site's matrix requires and those any of these people ever held (the
/// recipe qualifications of a CPC's operators are not matrix actions).
pub(crate) fn site_people_and_qualifications<B: Backend>(
    state: &AppState<B>,
    site: &SiteId,
) -> (Vec<(UserId, String)>, Vec<String>) {
    let people: Vec<(UserId, String)> = state
        .accounts
        .lock()
        .expect("accounts lock")
        .users()
        .filter(|u| u.active && u.has_any_role_at(site))
        .filter_map(|u| Some((UserId::parse(&u.id).ok()?, u.full_name.clone())))
        .collect();
    let qualifications = state.read_model(|m: &mut TrainingModel| {
        let mut all = m.matrix.qualifications_at(site);
        for (user, _) in &people {
            if let Some(p) = m.state.person(user) {
                all.extend(p.qualifications.keys().cloned());
            }
        }
        all.into_iter().collect()
    });
    (people, qualifications)
}

/// The training matrix of `site` at `at` (people with a role there × the qualifications
/// that matter there). Call after bringing the read models up to date.
pub fn matrix_report<B: Backend>(
    state: &AppState<B>,
    site: &SiteId,
    at: Timestamp,
) -> report::MatrixReport {
    let (people, qualifications) = site_people_and_qualifications(state, site);
    state.read_model(|m: &mut TrainingModel| {
        report::training_matrix(&m.state, site, &people, &qualifications, at)
    })
}

pub async fn matrix<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<SiteQuery>,
) -> ApiResult<Response> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    let at = parse_at(q.at.as_deref(), state.clock.now())?;
    state.sync().await?;
    let report = matrix_report(&state, &site, at);
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(serde_json::to_value(&report).expect("serializes")).into_response()),
        "csv" => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"training-matrix-{site}.csv\""),
                ),
            ],
            report.to_csv(),
        )
            .into_response()),
        other => Err(ApiError::bad_request(
            "format",
            format!("{other:?} is not a format: use json or csv"),
        )),
    }
}

/// Most days ahead the expiring report looks.
pub const EXPIRING_DAYS_MAX: u32 = 3_650;

pub async fn expiring<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<SiteQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    let days = q.days.unwrap_or(30);
    if days > EXPIRING_DAYS_MAX {
        return Err(ApiError::bad_request(
            "days",
            format!("at most {EXPIRING_DAYS_MAX}"),
        ));
    }
    let at = parse_at(q.at.as_deref(), state.clock.now())?;
    state.sync().await?;
    let (people, qualifications) = site_people_and_qualifications(&state, &site);
    let list = state.read_model(|m: &mut TrainingModel| {
        report::expiring(&m.state, &people, &qualifications, at, days)
    });
    Ok(Json(
        json!({ "site": site, "at": at, "days": days, "expiring": list }),
    ))
}

#[derive(Deserialize)]
pub struct QualifiedQuery {
    pub site: String,
    pub action: String,
    pub at: Option<String>,
}

/// "Who was qualified for step S on date D": the qualification the site's matrix requires
/// for the action, and everyone who held it at that instant.
pub async fn qualified<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<QualifiedQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    let at = parse_at(q.at.as_deref(), state.clock.now())?;
    state.sync().await?;
    let (qualification, people) = state.read_model(|m: &mut TrainingModel| {
        let qualification = m.matrix.requirement(&site, &q.action)?;
        let people = report::qualified_at(&m.state, &qualification, at);
        Ok::<_, TrainingError>((qualification, people))
    })?;
    Ok(Json(json!({
        "site": site,
        "action": q.action,
        "qualification": qualification,
        "at": at,
        "qualified": people,
    })))
}

#[derive(Deserialize)]
pub struct StaffingBody {
    pub site: String,
    pub steps: Vec<PlannedStep>,
}

#[derive(Deserialize)]
pub struct PlannedStep {
    /// The plan's name for the step (returned as given).
    pub step: String,
    /// Matrix action or `qualification:<id>`.
    pub action: String,
    pub at: Timestamp,
}

/// Most planned steps one staffing check takes.
pub const STAFFING_STEPS_MAX: usize = 1_000;

/// Staffing check against a plan: for each planned step (action at an instant), the people
/// with a role at the site who will hold the qualification then (expiry and suspensions as
/// recorded now). A step nobody can do is `staffed: false`.
pub async fn staffing<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppJson(body): AppJson<StaffingBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require_site(&site)?;
    if body.steps.len() > STAFFING_STEPS_MAX {
        return Err(ApiError::bad_request(
            "steps",
            format!("at most {STAFFING_STEPS_MAX} steps per check"),
        ));
    }
    state.sync().await?;
    let (people, _) = site_people_and_qualifications(&state, &site);
    let steps = state.read_model(|m: &mut TrainingModel| {
        body.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let qualification = m
                    .matrix
                    .requirement(&site, &step.action)
                    .map_err(|e| ApiError::from(e).field(&format!("steps[{i}].action")))?;
                let available: Vec<&UserId> = people
                    .iter()
                    .map(|(u, _)| u)
                    .filter(|u| is_qualified(&m.state, u, &qualification, step.at))
                    .collect();
                Ok(json!({
                    "step": step.step,
                    "action": step.action,
                    "at": step.at,
                    "qualification": qualification,
                    "staffed": !available.is_empty(),
                    "qualified_people": available,
                }))
            })
            .collect::<ApiResult<Vec<Value>>>()
    })?;
    let all_staffed = steps.iter().all(|s| s["staffed"] == true);
    Ok(Json(
        json!({ "site": site, "all_staffed": all_staffed, "steps": steps }),
    ))
}

#[derive(Deserialize)]
pub struct BatchQuery {
    pub site: String,
    pub stream: String,
}

/// Most records of one stream the batch check reads.
pub const BATCH_RECORDS_MAX: usize = 50_000;

/// "Was every step of batch B done by a qualified person": every record of the stream (at
/// the caller's site) that names a `qualification` or an `action` is checked against the
/// training record at the time it says it was done, for the performer it names.
pub async fn batch_check<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<BatchQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require(
        &[
            Role::Auditor,
            Role::QaReviewer,
            Role::QaReleaser,
            Role::SiteAdmin,
        ],
        &site,
    )?;
    let stream = cellops_domain::Stream::parse(&q.stream)
        .map_err(|e| ApiError::bad_request("stream", e.to_string()))?;
    state.sync().await?;
    let records = state
        .blocking(move |s| {
            Ok(s.ledger
                .read(|b| b.stream_records(stream.as_str(), 0, BATCH_RECORDS_MAX))?)
        })
        .await?;
    let records_read = records.len();
    let steps: Vec<report::PerformedStep> = records
        .iter()
        .filter(|r| r.site == site.as_str())
        .filter_map(|r| {
            report::step_of(
                r.seq,
                &r.event_type,
                &r.payload_json(),
                &site,
                r.recorded_at,
            )
        })
        .collect();
    let answer =
        state.read_model(|m: &mut TrainingModel| report::check_steps(&m.state, &m.matrix, steps));
    Ok(Json(json!({
        "site": site,
        "stream": q.stream,
        "records_read": records_read,
        "all_qualified": answer.all_qualified,
        "steps": answer.steps,
    })))
}

#[derive(Deserialize)]
pub struct RefusalQuery {
    pub site: String,
}

pub async fn refusals<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<RefusalQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require(RECORD_READERS, &site)?;
    state.sync().await?;
    let (list, total) = state.read_model(|m: &mut TrainingModel| {
        let (iter, total) = m.state.refusals();
        let list: Vec<Value> = iter
            .filter(|(_, r)| r.site == site)
            .map(|(seq, r)| json!({ "seq": seq, "refusal": r }))
            .collect();
        (list, total)
    });
    Ok(Json(
        json!({ "site": site, "refusals": list, "refusals_total_all_sites": total }),
    ))
}

pub async fn qualification_matrix<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<RefusalQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    let actions = state.read_model(|m: &mut TrainingModel| m.matrix.actions_at(&site));
    Ok(Json(json!({
        "site": site,
        "actions": actions,
        "recipe_qualifications": "actions \"qualification:<id>\" require <id> itself",
    })))
}

/// The routes of this module.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route(
            "/api/training/curricula",
            post(import_curriculum::<B>).get(list_curricula::<B>),
        )
        .route("/api/training/curricula/{id}", get(show_curriculum::<B>))
        .route("/api/training/enrolments", post(enrol::<B>))
        .route("/api/training/attendance", post(attend::<B>))
        .route("/api/training/assessments", post(assess::<B>))
        .route("/api/training/certificates", post(certify::<B>))
        .route(
            "/api/training/certificates/{code}/verify",
            get(verify_certificate::<B>),
        )
        .route(
            "/api/training/certificates/{code}/pdf",
            get(certificate_pdf::<B>),
        )
        .route("/api/training/suspensions", post(suspend::<B>))
        .route("/api/training/reinstatements", post(reinstate::<B>))
        .route("/api/training/people/{id}", get(person::<B>))
        .route("/api/training/check", get(check::<B>))
        .route("/api/training/matrix", get(matrix::<B>))
        .route("/api/training/expiring", get(expiring::<B>))
        .route("/api/training/qualified", get(qualified::<B>))
        .route("/api/training/batch-check", get(batch_check::<B>))
        .route("/api/training/staffing", post(staffing::<B>))
        .route("/api/training/refusals", get(refusals::<B>))
        .route(
            "/api/training/qualification-matrix",
            get(qualification_matrix::<B>),
        )
}

/// Plays the demo's training history (`cellops_training::demo::DEMO_TRAINEES`) into the
/// ledger through the same decisions as the API: the clinical-culturist curriculum imported
/// by the demo trainer and approved (e-signed) by QA, then each demo person's enrolments,
/// attendance, assessments (practicals and media fills e-signed by the trainer) and
/// certificates, dated in the past so that expiry dates vary. `op-suzuki` fails the aseptic
/// media fill and so lacks `cpc-aseptic-processing`.
///
/// Blocking (call it from a blocking thread, after the demo users exist). Returns how many
/// records it appended; 0 when the demo curriculum is already in the ledger.
pub fn seed_demo_training<B: Backend>(
    ledger: &cellops_ledger::Ledger<B>,
    rng: &mut impl rand::RngCore,
    now: Timestamp,
) -> Result<usize, crate::provision::ProvisionError> {
    seed_training(ledger, rng, now, cellops_training::demo::DEMO_TRAINEES)
}

/// Like [`seed_demo_training`] for other trainees (test set-ups): the clinical-culturist
/// curriculum imported and approved, then each trainee's courses, unless the curriculum is
/// already in the ledger. Returns the records appended.
pub fn seed_training<B: Backend>(
    ledger: &cellops_ledger::Ledger<B>,
    rng: &mut impl rand::RngCore,
    now: Timestamp,
    trainees: &[cellops_training::demo::DemoTrainee],
) -> Result<usize, crate::provision::ProvisionError> {
    use cellops_training::demo;
    let curriculum = cellops_training::Curriculum::clinical_culturist();
    let stream = format!("curriculum/{}", curriculum.id);
    if !ledger.read(|b| b.stream_records(&stream, 0, 1))?.is_empty() {
        return Ok(0);
    }
    let site = SiteId::parse(demo::DEMO_SITE).expect("demo site id");
    let trainer = UserId::parse(demo::DEMO_TRAINER).expect("demo trainer id");
    let approver = UserId::parse(demo::DEMO_APPROVER).expect("demo approver id");
    let mut seeder = Seeder {
        ledger,
        state: TrainingState::default(),
        site,
        appended: 0,
    };
    let days_ago = |d: i64| now.plus_us(-d * cellops_training::DAY_US);
    let at = days_ago(demo::DEMO_CURRICULUM_DAYS_AGO);
    let import = seeder.decided(decide::decide_import(
        &seeder.state,
        cellops_training::curriculum::CLINICAL_CULTURIST_TOML,
        &trainer,
        at,
    ))?;
    let imported = seeder.append(vec![import], &trainer)?;
    seeder.sign(
        &imported[0],
        &approver,
        "Approved",
        at.plus_us(3_600_000_000),
    )?;
    for person in trainees {
        let trainee = UserId::parse(person.user).expect("demo user id");
        let mut at = days_ago(person.days_ago);
        let failing = person.failed_media_fill.iter().map(|c| (*c, false));
        let passing = person.courses.iter().map(|c| (*c, true));
        for (course_id, pass) in passing.chain(failing) {
            at = at.plus_us(cellops_training::DAY_US);
            seeder.take_course(&curriculum, &trainee, &trainer, course_id, pass, at, rng)?;
        }
    }
    Ok(seeder.appended)
}

/// Appends decided training events to the ledger and keeps a local read model in step.
struct Seeder<'l, B: Backend> {
    ledger: &'l cellops_ledger::Ledger<B>,
    state: TrainingState,
    site: SiteId,
    appended: usize,
}

impl<B: Backend> Seeder<'_, B> {
    fn decided<T>(
        &self,
        r: Result<T, TrainingError>,
    ) -> Result<T, crate::provision::ProvisionError> {
        r.map_err(|e| crate::provision::ProvisionError::Invalid {
            field: "demo training".to_string(),
            rule: e.to_string(),
        })
    }

    fn append(
        &mut self,
        events: Vec<TrainingEvent>,
        actor: &UserId,
    ) -> Result<Vec<Record>, crate::provision::ProvisionError> {
        let records = events
            .iter()
            .map(|e| record_of(e, actor.as_str(), &self.site))
            .collect();
        let out = self.ledger.append(cellops_ledger::AppendRequest {
            records,
            idempotency_key: None,
        })?;
        for (record, event) in out.records.iter().zip(&events) {
            self.state.apply(record.seq, event);
        }
        self.appended += out.records.len();
        Ok(out.records)
    }

    /// E-signs `target` as `signer` with `meaning` (the demo's signatures are recorded like
    /// `POST /api/signatures` records them).
    fn sign(
        &mut self,
        target: &Record,
        signer: &UserId,
        meaning: &str,
        at: Timestamp,
    ) -> Result<(), crate::provision::ProvisionError> {
        let payload = crate::accounts::SignedPayload {
            signs_seq: target.seq,
            signs_hash: hex::encode(target.hash),
            session_hash: None,
        };
        let name = crate::provision::DEMO_USERS
            .iter()
            .find(|(id, _, _)| *id == signer.as_str())
            .map(|(_, name, _)| name.to_string())
            .unwrap_or_else(|| signer.to_string());
        let mut record = NewRecord::new(
            &target.stream,
            "esig.signed",
            1,
            serde_json::to_value(&payload).expect("payload serializes"),
            signer.as_str(),
            &target.site,
        );
        record.signature = Some(cellops_ledger::PendingSignature {
            signer: signer.to_string(),
            signer_name: name,
            meaning: meaning.to_string(),
            signed_at: at,
            authentication: "user_id+password".to_string(),
        });
        self.ledger.append(cellops_ledger::AppendRequest {
            records: vec![record],
            idempotency_key: None,
        })?;
        self.state
            .apply_signature(target.seq, signer.as_str(), meaning, at);
        self.appended += 1;
        Ok(())
    }

    /// Enrolment, attendance, every assessment (signed where needed) and, when `pass`, the
    /// certificate; when not `pass`, the media fill fails and no certificate is issued.
    #[allow(clippy::too_many_arguments)]
    fn take_course(
        &mut self,
        curriculum: &cellops_training::Curriculum,
        trainee: &UserId,
        trainer: &UserId,
        course_id: &str,
        pass: bool,
        at: Timestamp,
        rng: &mut impl rand::RngCore,
    ) -> Result<(), crate::provision::ProvisionError> {
        let course = curriculum.course(course_id).expect("demo courses exist");
        let site = self.site.clone();
        let e = decide::decide_enrol(
            &self.state,
            trainee,
            &curriculum.id,
            course_id,
            &site,
            trainer,
            at,
        );
        let e = self.decided(e)?;
        self.append(vec![e], trainer)?;
        for m in &course.modules {
            let e =
                decide::decide_attend(&self.state, trainee, course_id, &m.id, &site, trainer, at);
            let e = self.decided(e)?;
            self.append(vec![e], trainer)?;
        }
        for a in &course.assessments {
            let outcome = match (pass, a.kind) {
                (false, cellops_training::AssessmentKind::MediaFill) => {
                    cellops_training::demo::failing_media_fill(a)
                }
                _ => cellops_training::demo::passing_outcome(a),
            };
            let events = decide::decide_assess(
                &self.state,
                trainee,
                course_id,
                &a.id,
                outcome,
                None,
                &site,
                trainer,
                at,
            );
            let events = self.decided(events)?;
            let records = self.append(events, trainer)?;
            if a.kind.needs_signature() {
                self.sign(&records[0], trainer, "Reviewed", at)?;
            }
        }
        if pass {
            let code = certificate::format_code(rng.next_u64());
            let e =
                decide::decide_certify(&self.state, trainee, course_id, &code, &site, trainer, at);
            let e = self.decided(e)?;
            self.append(vec![e], trainer)?;
        }
        Ok(())
    }
}
