//! Ledger endpoints: records by stream, single records with their signatures, proofs,
//! the latest signed checkpoint, corrections, notes and e-signatures.

use super::auth::{SYSTEM_SITE, check_password};
use super::parse_site;
use crate::accounts::{SignedPayload, may_sign};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery, idempotency_key};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use cellops_domain::{Role, SiteId, Stream};
use cellops_ledger::{Backend, NewRecord, PendingSignature, Record};
use serde::Deserialize;
use serde_json::{Value, json};

/// Records returned by one page of `/api/ledger/records`.
pub const PAGE_RECORDS_MAX: usize = 1000;
const PAGE_RECORDS_DEFAULT: usize = 100;
/// Later records of a stream searched for signatures of one record.
const SIGNATURE_SCAN_RECORDS_MAX: usize = 5_000;

/// A record as the API shows it: the payload as JSON, hashes in hex, signature manifest.
pub fn record_view(r: &Record) -> Value {
    json!({
        "seq": r.seq,
        "stream": r.stream,
        "type": r.event_type,
        "version": r.event_version,
        "payload": r.payload_json(),
        "actor": r.actor,
        "site": r.site,
        "recorded_at": r.recorded_at,
        "reason": r.reason,
        "corrects": r.corrects,
        "signature": r.signature,
        "prev_hash": hex::encode(r.prev_hash),
        "hash": hex::encode(r.hash),
    })
}

/// Which sites' records a caller may read; `system` (accounts) for admins and auditors.
fn readable(caller: &Caller, site: &str) -> bool {
    if site == SYSTEM_SITE {
        return caller
            .user
            .roles
            .iter()
            .any(|(r, _)| matches!(r, Role::SiteAdmin | Role::Auditor));
    }
    caller.user.roles.iter().any(|(_, s)| s.as_str() == site)
}

#[derive(Deserialize)]
pub struct RecordsQuery {
    pub stream: Option<String>,
    #[serde(default)]
    pub after: u64,
    pub limit: Option<usize>,
}

pub async fn list_records<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<RecordsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(PAGE_RECORDS_DEFAULT);
    if limit == 0 || limit > PAGE_RECORDS_MAX {
        return Err(ApiError::bad_request(
            "limit",
            format!("must be 1 to {PAGE_RECORDS_MAX}"),
        ));
    }
    if let Some(s) = &q.stream {
        Stream::parse(s).map_err(|e| ApiError::bad_request("stream", e.to_string()))?;
    }
    let stream = q.stream.clone();
    let after = q.after;
    let records = state
        .blocking(move |s| {
            Ok(s.ledger.read(|b| match &stream {
                Some(stream) => b.stream_records(stream, after, limit),
                None => b.records(after + 1, limit),
            })?)
        })
        .await?;
    let next_after = records.last().map(|r| r.seq);
    let visible: Vec<Value> = records
        .iter()
        .filter(|r| readable(&caller, &r.site))
        .map(record_view)
        .collect();
    Ok(Json(
        json!({ "records": visible, "next_after": next_after }),
    ))
}

pub async fn get_record<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(seq): Path<u64>,
) -> ApiResult<Json<Value>> {
    let (record, signatures) = state
        .blocking(move |s| {
            let record = s.ledger.record(seq)?;
            let later = s
                .ledger
                .read(|b| b.stream_records(&record.stream, seq, SIGNATURE_SCAN_RECORDS_MAX))?;
            let signatures: Vec<Value> = later
                .iter()
                .filter(|r| r.event_type == "esig.signed")
                .filter(|r| {
                    serde_json::from_str::<SignedPayload>(&r.payload).is_ok_and(|p| {
                        p.signs_seq == seq && p.signs_hash == hex::encode(record.hash)
                    })
                })
                .map(|r| json!({ "seq": r.seq, "signature": r.signature }))
                .collect();
            Ok((record, signatures))
        })
        .await?;
    if !readable(&caller, &record.site) {
        return Err(ApiError::forbidden(format!(
            "record {seq} belongs to site {} where you have no role",
            record.site
        )));
    }
    let mut view = record_view(&record);
    view["signatures"] = Value::Array(signatures);
    Ok(Json(view))
}

pub async fn latest_checkpoint<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
) -> ApiResult<Json<Value>> {
    let cp = state
        .blocking(|s| Ok(s.ledger.latest_checkpoint()?))
        .await?;
    let key = state.ledger.verifier().to_vkey();
    Ok(Json(match cp {
        Some(c) => json!({
            "size": c.size,
            "root": hex::encode(c.root),
            "note": c.note,
            "created_at": c.created_at,
            "public_key": key,
        }),
        None => json!({ "size": 0, "note": null, "public_key": key }),
    }))
}

#[derive(Deserialize)]
pub struct InclusionQuery {
    pub seq: u64,
    pub tree_size: Option<u64>,
}

pub async fn inclusion_proof<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
    AppQuery(q): AppQuery<InclusionQuery>,
) -> ApiResult<Json<Value>> {
    let p = state
        .blocking(move |s| Ok(s.ledger.inclusion_proof(q.seq, q.tree_size)?))
        .await?;
    Ok(Json(json!({
        "seq": p.seq,
        "leaf_index": p.seq - 1,
        "tree_size": p.tree_size,
        "leaf_hash": hex::encode(p.leaf_hash),
        "root": hex::encode(p.root),
        "path": p.path.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    pub first: u64,
    pub second: u64,
}

pub async fn consistency_proof<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
    AppQuery(q): AppQuery<ConsistencyQuery>,
) -> ApiResult<Json<Value>> {
    let p = state
        .blocking(move |s| Ok(s.ledger.consistency_proof(q.first, q.second)?))
        .await?;
    Ok(Json(json!({
        "first": p.first,
        "second": p.second,
        "first_root": hex::encode(p.first_root),
        "second_root": hex::encode(p.second_root),
        "path": p.path.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

pub async fn event_types<B: Backend>(State(state): State<AppState<B>>) -> Json<Value> {
    let types: Vec<Value> = state
        .ledger
        .config()
        .catalog
        .iter()
        .map(|(t, v)| json!({ "type": t, "version": v }))
        .collect();
    Json(json!({ "event_types": types }))
}

#[derive(Deserialize)]
pub struct CorrectionBody {
    pub corrects: u64,
    pub reason: Option<String>,
    /// The corrected values.
    pub payload: Value,
}

pub async fn correct<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<CorrectionBody>,
) -> ApiResult<Json<Value>> {
    let reason = body
        .reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("reason", "a correction must say why the record was wrong")
        })?;
    let seq = body.corrects;
    let target = state.blocking(move |s| Ok(s.ledger.record(seq)?)).await?;
    let site = SiteId::parse(&target.site).map_err(ApiError::internal)?;
    caller.require(&Role::WRITERS, &site)?;
    let mut record = NewRecord::new(
        &target.stream,
        "record.corrected",
        1,
        json!({ "corrected_type": target.event_type, "values": body.payload }),
        &caller.user.id,
        &target.site,
    );
    record.corrects = Some(seq);
    record.reason = Some(reason);
    let out = state
        .append(vec![record], idempotency_key(&headers))
        .await?;
    Ok(Json(record_view(&out.records[0])))
}

#[derive(Deserialize)]
pub struct NoteBody {
    pub stream: String,
    pub site: String,
    pub text: String,
}

/// Longest note text, in characters.
pub const NOTE_CHARS_MAX: usize = 4_000;

pub async fn add_note<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<NoteBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&Role::WRITERS, &site)?;
    if body.text.trim().is_empty() || body.text.chars().count() > NOTE_CHARS_MAX {
        return Err(ApiError::bad_request(
            "text",
            format!("write 1 to {NOTE_CHARS_MAX} characters"),
        ));
    }
    let record = NewRecord::new(
        &body.stream,
        "note.recorded",
        1,
        json!({ "text": body.text }),
        &caller.user.id,
        site.as_str(),
    );
    let out = state
        .append(vec![record], idempotency_key(&headers))
        .await?;
    Ok(Json(
        json!({ "record": record_view(&out.records[0]), "replayed": out.replayed }),
    ))
}

#[derive(Deserialize)]
pub struct SignBody {
    pub seq: u64,
    pub meaning: String,
    pub password: String,
    /// Required at the first signing of a session and with API tokens (§11.200(a)(1)).
    pub user_id: Option<String>,
}

/// E-signs record `seq` with a meaning (Part 11 §11.50, §11.70, §11.200).
pub async fn sign<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<SignBody>,
) -> ApiResult<Json<Value>> {
    let record = esign(&state, &caller, &body, idempotency_key(&headers)).await?;
    Ok(Json(record_view(&record)))
}

/// What a signer enters to sign: the meaning, the password again, and the user id at the
/// first signature of a session.
pub struct SignatureInput<'a> {
    pub meaning: &'a str,
    pub password: &'a str,
    pub user_id: Option<&'a str>,
}

/// Checks that the caller may sign `what` at `site` with this meaning (Part 11 §11.50,
/// §11.100, §11.200: the policy acknowledged, signing as themselves, the user id again at the
/// first signature of a session, the password re-entered, the meaning allowed for their
/// roles there) and returns the signature to attach to the record being appended. Failures
/// are recorded (`esig.failed`) and count towards lockout. Use this to sign a record in the
/// same append that makes it (e.g. a manual step with its operator's signature).
pub async fn authorize_signature<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    input: &SignatureInput<'_>,
    site: &SiteId,
    what: &str,
) -> ApiResult<PendingSignature> {
    let first_in_session = match &caller.session_hash {
        None => true,
        Some(h) => !state
            .accounts
            .lock()
            .expect("accounts lock")
            .session(h)
            .is_some_and(|s| s.signed_once),
    };
    match input.user_id {
        Some(id) if id != caller.user.id => {
            return Err(ApiError::forbidden(
                "you can only sign as yourself: user_id must be your own",
            )
            .field("user_id"));
        }
        None if first_in_session => {
            return Err(ApiError::bad_request(
                "user_id",
                "the first signature of a session needs your user id and password",
            ));
        }
        _ => {}
    }
    if !caller.user.esig_policy_acknowledged {
        return Err(ApiError::forbidden(
            "acknowledge the e-signature policy first (POST /api/auth/esig-policy)",
        ));
    }
    if let Err(why) = may_sign(&caller.user, input.meaning, site) {
        let mut p = crate::accounts::UserPayload::new(&caller.user.id);
        p.failure = Some(format!("not allowed to sign {what}: {why}"));
        state
            .append(
                vec![super::auth::user_event("esig.failed", &p, &caller.user.id)],
                None,
            )
            .await?;
        return Err(ApiError::forbidden(why).field("meaning"));
    }
    check_password(
        state,
        &caller.user.id,
        input.password,
        "esig.failed",
        json!(format!("signing {what} as {}", input.meaning)),
    )
    .await?;
    Ok(PendingSignature {
        signer: caller.user.id.clone(),
        signer_name: caller.user.full_name.clone(),
        meaning: input.meaning.to_string(),
        signed_at: state.clock.now(),
        authentication: if first_in_session {
            "user_id+password"
        } else {
            "password"
        }
        .to_string(),
    })
}

/// Checks the signer (meaning allowed for their roles at the record's site, password
/// re-entered, user id at the first signature of a session) and appends the `esig.signed`
/// record over record `body.seq`. Feature modules that sign (recipe approval, batch steps,
/// deviation closure) call this rather than signing themselves.
pub async fn esign<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    body: &SignBody,
    idempotency_key: Option<String>,
) -> ApiResult<Record> {
    let seq = body.seq;
    let target = state.blocking(move |s| Ok(s.ledger.record(seq)?)).await?;
    let site = SiteId::parse(&target.site).map_err(|_| {
        ApiError::bad_request(
            "seq",
            format!("record {seq} belongs to no site and cannot be signed"),
        )
    })?;
    let signature = authorize_signature(
        state,
        caller,
        &SignatureInput {
            meaning: &body.meaning,
            password: &body.password,
            user_id: body.user_id.as_deref(),
        },
        &site,
        &format!("record {seq}"),
    )
    .await?;
    let payload = SignedPayload {
        signs_seq: seq,
        signs_hash: hex::encode(target.hash),
        session_hash: caller.session_hash.clone(),
    };
    let mut record = NewRecord::new(
        &target.stream,
        "esig.signed",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        &caller.user.id,
        &target.site,
    );
    record.signature = Some(signature);
    let out = state.append(vec![record], idempotency_key).await?;
    Ok(out.records[0].clone())
}
