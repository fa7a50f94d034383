//! The QC and release read model ([`QcModel`]), rebuilt from the ledger: batches registered
//! for QC, samples, results (never overwritten), OOS investigations, release-at-risk
//! requests with the physician's acknowledgement, release decisions with their "Released"
//! signature, alerts and notifications. The batch record and the cold chain are not folded
//! here: release readiness asks their own read models (`BatchModel::release_blockers`,
//! `ColdModel::excursion_facts`) and takes their answers as inputs
//! ([`QcModel::readiness`]).

use crate::accounts::SignedPayload;
use crate::projection::Projection;
use cellops_domain::Timestamp;
use cellops_ledger::Record;
use cellops_qc::coa::{Certificate, CertificateHeader, CertificateRelease};
use cellops_qc::results::investigation_id;
use cellops_qc::{
    AtRiskRequest, BatchResults, ExcursionFact, Investigation, InvestigationState, LabelFacts,
    MeasuredValue, ProcessFacts, QcError, Readiness, ReleaseInputs, ReleaseKind, ReleaseStatus,
    ResultRecord, SpecCatalog, Verdict, release_readiness,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Payload of `qc.batch.registered`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisteredPayload {
    pub batch: String,
    pub product: String,
    pub spec_version: String,
    pub recipe_version: String,
    /// Final product units of the batch (DIN + product code).
    pub units: Vec<String>,
}

/// Payload of `qc.sample.registered`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SamplePayload {
    pub batch: String,
    /// The sample's unit code (a child unit of `parent`).
    pub sample: String,
    pub parent: String,
    /// The planned sample it fulfils (`qc-<step>`).
    pub planned: String,
    pub tests: Vec<String>,
}

/// Payload of `qc.result.recorded` and `qc.result.corrected` (the correction's record
/// carries `corrects` and `reason` in the ledger's own fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultPayload {
    pub batch: String,
    pub spec: String,
    pub test: String,
    pub sample: Option<String>,
    pub value: MeasuredValue,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub method: String,
    pub instrument: String,
}

/// Payload of `qc.investigation.opened`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvestigationOpenedPayload {
    pub batch: String,
    pub investigation: String,
    pub result_seq: u64,
    pub test: String,
    pub reason: String,
}

/// Payload of `qc.investigation.concluded`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvestigationConcludedPayload {
    pub batch: String,
    pub investigation: String,
    pub conclusion: InvestigationState,
    pub summary: String,
}

/// Payload of `qc.at_risk.requested`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AtRiskPayload {
    pub batch: String,
    pub pending_tests: Vec<String>,
    pub clinical_justification: String,
    /// The treating physician's user id.
    pub physician: String,
}

/// Payload of `qc.at_risk.acknowledged` (e-signed by the physician as Reviewed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcknowledgedPayload {
    pub batch: String,
    pub request_seq: u64,
    pub statement: String,
}

/// Payload of `qc.release.decided` (e-signed by QA as Released).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionPayload {
    pub batch: String,
    pub spec: String,
    #[serde(flatten)]
    pub kind: ReleaseKind,
    pub at_risk_request: Option<u64>,
    /// Seqs of the results the decision rests on.
    pub results: Vec<u64>,
    /// Exceptions QA saw (corrections, invalidated results, assessed excursions).
    pub exceptions: Vec<String>,
}

/// Payload of `qc.alert.raised`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertPayload {
    pub batch: String,
    pub test: String,
    pub result_seq: u64,
    pub decision_seq: u64,
    pub message: String,
}

/// Payload of `qc.notification.recorded`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationPayload {
    pub batch: String,
    pub alert_result_seq: u64,
    /// Recipient user id.
    pub to: String,
    /// Why this person: `treating_physician` or `qa_releaser`.
    pub role: String,
    pub channel: String,
    pub message: String,
}

/// A signature as the read model keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    pub seq: u64,
    pub signer: String,
    pub signer_name: String,
    pub signed_at: Timestamp,
    pub meaning: String,
}

/// A sample as registered.
#[derive(Debug, Clone, Serialize)]
pub struct SampleView {
    pub seq: u64,
    pub code: String,
    pub parent: String,
    pub planned: String,
    pub tests: Vec<String>,
}

/// A release decision and its signature.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub seq: u64,
    #[serde(skip)]
    pub hash: String,
    pub kind: ReleaseKind,
    pub at_risk_request: Option<u64>,
    pub signature: Option<Signed>,
}

/// A recorded alert or notification.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub seq: u64,
    pub site: String,
    pub recorded_at: Timestamp,
    pub test: String,
    pub result_seq: u64,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    pub seq: u64,
    pub site: String,
    pub recorded_at: Timestamp,
    pub to: String,
    pub role: String,
    pub channel: String,
    pub message: String,
}

/// Everything QC knows about one batch.
#[derive(Debug, Clone, Serialize)]
pub struct QcBatch {
    pub batch: String,
    pub site: String,
    pub product: String,
    pub spec_version: String,
    pub recipe_version: String,
    pub units: Vec<String>,
    pub registered_seq: u64,
    pub results: BatchResults,
    pub samples: Vec<SampleView>,
    pub at_risk_requests: Vec<AtRiskRequest>,
    pub decisions: Vec<Decision>,
    pub alerts: Vec<AlertView>,
    pub notifications: Vec<NotificationView>,
}

impl QcBatch {
    /// The signed release decision, if any (the latest).
    pub fn signed_decision(&self) -> Option<&Decision> {
        self.decisions.iter().rev().find(|d| d.signature.is_some())
    }

    pub fn at_risk_request(&self, seq: u64) -> Option<&AtRiskRequest> {
        self.at_risk_requests.iter().find(|r| r.seq == seq)
    }
}

/// What a signature on a record means to this model.
#[derive(Debug, Clone)]
enum Signable {
    Decision {
        batch: String,
        hash: String,
    },
    Acknowledgement {
        batch: String,
        request_seq: u64,
        physician: String,
        hash: String,
    },
}

/// Most batches the model keeps (a limit on memory; older ones are kept, new ones refused
/// by the register endpoint first).
pub const QC_BATCHES_MAX: usize = 100_000;

/// The QC and release read model.
pub struct QcModel {
    specs: SpecCatalog,
    batches: BTreeMap<String, QcBatch>,
    result_batch: BTreeMap<u64, String>,
    investigation_batch: BTreeMap<String, String>,
    signable: BTreeMap<u64, Signable>,
    unit_batch: BTreeMap<String, String>,
}

impl QcModel {
    pub fn new(specs: SpecCatalog) -> QcModel {
        QcModel {
            specs,
            batches: BTreeMap::new(),
            result_batch: BTreeMap::new(),
            investigation_batch: BTreeMap::new(),
            signable: BTreeMap::new(),
            unit_batch: BTreeMap::new(),
        }
    }

    pub fn specs(&self) -> &SpecCatalog {
        &self.specs
    }

    pub fn batch(&self, batch: &str) -> Option<&QcBatch> {
        self.batches.get(batch)
    }

    /// Every batch registered for QC, in batch id order.
    pub fn batches(&self) -> impl Iterator<Item = &QcBatch> {
        self.batches.values()
    }

    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// The batch a result belongs to.
    pub fn batch_of_result(&self, seq: u64) -> Option<&str> {
        self.result_batch.get(&seq).map(String::as_str)
    }

    /// The batch an investigation belongs to.
    pub fn batch_of_investigation(&self, id: &str) -> Option<&str> {
        self.investigation_batch.get(id).map(String::as_str)
    }

    /// The batch a final product unit (DIN + product code, as registered) belongs to.
    pub fn batch_of_unit(&self, unit: &str) -> Option<&str> {
        self.unit_batch.get(unit).map(String::as_str)
    }

    /// Release readiness of `batch` from its results and investigations (this model), the
    /// batch record's blockers `process` (from `BatchModel::release_blockers`), the
    /// excursions its units went through (from `ColdModel::excursion_facts`) and the label
    /// reconciliation `labels` (from the labels read model). `None` when the batch is not
    /// registered for QC.
    pub fn readiness(
        &self,
        batch: &str,
        labels: LabelFacts,
        process: &ProcessFacts,
        excursions: &[ExcursionFact],
    ) -> Option<Result<Readiness, QcError>> {
        let b = self.batches.get(batch)?;
        let spec = match self.specs.get(&b.product, &b.spec_version) {
            Ok(spec) => spec,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(release_readiness(&ReleaseInputs {
            spec,
            results: &b.results,
            process,
            labels,
            excursions,
        })))
    }

    /// The certificate of analysis of `batch`, built only from the record. `name_of` gives
    /// a user's printed name (from the accounts read model); `ledger_seq` is the last record
    /// the certificate reflects. `None` when the batch is not registered for QC.
    pub fn certificate(
        &self,
        batch: &str,
        name_of: &dyn Fn(&str) -> Option<String>,
        ledger_seq: u64,
        generated_at: Timestamp,
    ) -> Option<Result<Certificate, QcError>> {
        let b = self.batches.get(batch)?;
        let spec = match self.specs.get(&b.product, &b.spec_version) {
            Ok(spec) => spec,
            Err(e) => return Some(Err(e)),
        };
        let status = self.release_status(batch);
        let release = b.signed_decision().and_then(|d| {
            let sig = d.signature.as_ref()?;
            let request = d.at_risk_request.and_then(|s| b.at_risk_request(s));
            let printed = |id: &str| match name_of(id) {
                Some(name) => format!("{name} ({id})"),
                None => id.to_string(),
            };
            Some(CertificateRelease {
                status: match (&d.kind, &status) {
                    (_, ReleaseStatus::FailedAfterRelease { failed_tests, .. }) => format!(
                        "FAILED AFTER RELEASE ({}): do not use",
                        failed_tests.join(", ")
                    ),
                    (ReleaseKind::Released, _) => "Released".to_string(),
                    (ReleaseKind::ReleasedAtRisk { .. }, _) => "Released at risk".to_string(),
                },
                signer: sig.signer.clone(),
                signer_name: sig.signer_name.clone(),
                signed_at: sig.signed_at,
                meaning: sig.meaning.clone(),
                pending_tests: match &d.kind {
                    ReleaseKind::ReleasedAtRisk { pending_tests } => pending_tests.clone(),
                    ReleaseKind::Released => vec![],
                },
                justification: request.map(|q| q.clinical_justification.clone()),
                acknowledged_by: request
                    .and_then(|q| q.acknowledged.as_ref())
                    .map(|(who, at)| format!("{} at {at} (UTC)", printed(who))),
            })
        });
        Some(Ok(Certificate::build(
            spec,
            &b.results,
            CertificateHeader {
                batch: batch.to_string(),
                site: b.site.clone(),
                recipe_version: b.recipe_version.clone(),
                units: b.units.clone(),
                ledger_seq,
                generated_at,
            },
            release,
        )))
    }

    /// Is batch `batch` released (or released at risk) now? Pure query on the read model.
    pub fn release_status(&self, batch: &str) -> ReleaseStatus {
        let Some(b) = self.batches.get(batch) else {
            return ReleaseStatus::NotReleased;
        };
        let Some(d) = b.signed_decision() else {
            return ReleaseStatus::NotReleased;
        };
        // Cannot fail: `signed_decision` returns only decisions with a signature.
        let sig = d
            .signature
            .as_ref()
            .expect("signed decision has a signature");
        let mut tests: Vec<&str> = b
            .results
            .results()
            .iter()
            .map(|r| r.test.as_str())
            .collect();
        tests.sort_unstable();
        tests.dedup();
        let failed: Vec<String> = tests
            .into_iter()
            .filter(|t| b.results.current(t).is_some_and(|r| !r.verdict.is_pass()))
            .map(str::to_string)
            .collect();
        if !failed.is_empty() {
            return ReleaseStatus::FailedAfterRelease {
                decision_seq: d.seq,
                failed_tests: failed,
                alert_seq: b.alerts.last().map(|a| a.seq),
            };
        }
        match &d.kind {
            ReleaseKind::Released => ReleaseStatus::Released {
                decision_seq: d.seq,
                signed_by: sig.signer.clone(),
                signed_at: sig.signed_at,
            },
            ReleaseKind::ReleasedAtRisk { pending_tests } => ReleaseStatus::ReleasedAtRisk {
                decision_seq: d.seq,
                signed_by: sig.signer.clone(),
                signed_at: sig.signed_at,
                pending_tests: pending_tests
                    .iter()
                    .filter(|t| b.results.current(t).is_none())
                    .cloned()
                    .collect(),
            },
        }
    }

    /// Release status of the batch a final product unit belongs to; `None` when the unit
    /// is not registered as a product unit of any batch.
    pub fn release_status_of_unit(&self, unit: &str) -> Option<ReleaseStatus> {
        self.batch_of_unit(unit).map(|b| self.release_status(b))
    }

    fn apply_qc(&mut self, r: &Record) -> Result<(), serde_json::Error> {
        let kind = r.event_type.as_str();
        match kind {
            "qc.batch.registered" => {
                let p: RegisteredPayload = serde_json::from_str(&r.payload)?;
                if self.batches.contains_key(&p.batch) || self.batches.len() >= QC_BATCHES_MAX {
                    return Ok(());
                }
                for u in &p.units {
                    self.unit_batch.insert(u.clone(), p.batch.clone());
                }
                self.batches.insert(
                    p.batch.clone(),
                    QcBatch {
                        batch: p.batch,
                        site: r.site.clone(),
                        product: p.product,
                        spec_version: p.spec_version,
                        recipe_version: p.recipe_version,
                        units: p.units,
                        registered_seq: r.seq,
                        results: BatchResults::default(),
                        samples: Vec::new(),
                        at_risk_requests: Vec::new(),
                        decisions: Vec::new(),
                        alerts: Vec::new(),
                        notifications: Vec::new(),
                    },
                );
            }
            "qc.sample.registered" => {
                let p: SamplePayload = serde_json::from_str(&r.payload)?;
                if let Some(b) = self.batches.get_mut(&p.batch) {
                    b.samples.push(SampleView {
                        seq: r.seq,
                        code: p.sample,
                        parent: p.parent,
                        planned: p.planned,
                        tests: p.tests,
                    });
                }
            }
            "qc.result.recorded" | "qc.result.corrected" => {
                let p: ResultPayload = serde_json::from_str(&r.payload)?;
                let Some(b) = self.batches.get_mut(&p.batch) else {
                    return Ok(());
                };
                let failed = !p.verdict.is_pass();
                b.results.record(ResultRecord {
                    seq: r.seq,
                    test: p.test.clone(),
                    sample: p.sample,
                    value: p.value,
                    verdict: p.verdict,
                    method: p.method,
                    instrument: p.instrument,
                    analyst: r.actor.clone(),
                    recorded_at: r.recorded_at,
                    corrects: r.corrects,
                    reason: r.reason.clone(),
                    superseded_by: None,
                });
                self.result_batch.insert(r.seq, p.batch.clone());
                if failed {
                    // A failing result opens its investigation at once (the explicit
                    // `qc.investigation.opened` record follows it in the ledger).
                    let id = investigation_id(r.seq);
                    b.results.open_investigation(Investigation {
                        id: id.clone(),
                        result_seq: r.seq,
                        test: p.test,
                        state: InvestigationState::Open,
                        opened_at: r.recorded_at,
                        conclusion: None,
                        concluded_by: None,
                    });
                    self.investigation_batch.insert(id, p.batch);
                }
            }
            "qc.investigation.opened" => {
                let p: InvestigationOpenedPayload = serde_json::from_str(&r.payload)?;
                if let Some(b) = self.batches.get_mut(&p.batch) {
                    b.results.open_investigation(Investigation {
                        id: p.investigation.clone(),
                        result_seq: p.result_seq,
                        test: p.test,
                        state: InvestigationState::Open,
                        opened_at: r.recorded_at,
                        conclusion: None,
                        concluded_by: None,
                    });
                    self.investigation_batch.insert(p.investigation, p.batch);
                }
            }
            "qc.investigation.concluded" => {
                let p: InvestigationConcludedPayload = serde_json::from_str(&r.payload)?;
                if let Some(b) = self.batches.get_mut(&p.batch) {
                    b.results
                        .conclude(&p.investigation, p.conclusion, &p.summary, &r.actor);
                }
            }
            "qc.at_risk.requested" => {
                let p: AtRiskPayload = serde_json::from_str(&r.payload)?;
                if let Some(b) = self.batches.get_mut(&p.batch) {
                    b.at_risk_requests.push(AtRiskRequest {
                        seq: r.seq,
                        pending_tests: p.pending_tests,
                        clinical_justification: p.clinical_justification,
                        physician: p.physician,
                        acknowledged: None,
                    });
                }
            }
            "qc.at_risk.acknowledged" => {
                let p: AcknowledgedPayload = serde_json::from_str(&r.payload)?;
                let physician = self
                    .batches
                    .get(&p.batch)
                    .and_then(|b| b.at_risk_request(p.request_seq))
                    .map(|q| q.physician.clone());
                if let Some(physician) = physician {
                    self.signable.insert(
                        r.seq,
                        Signable::Acknowledgement {
                            batch: p.batch,
                            request_seq: p.request_seq,
                            physician,
                            hash: hex::encode(r.hash),
                        },
                    );
                }
            }
            "qc.release.decided" => {
                let p: DecisionPayload = serde_json::from_str(&r.payload)?;
                if let Some(b) = self.batches.get_mut(&p.batch) {
                    let hash = hex::encode(r.hash);
                    b.decisions.push(Decision {
                        seq: r.seq,
                        hash: hash.clone(),
                        kind: p.kind,
                        at_risk_request: p.at_risk_request,
                        signature: None,
                    });
                    self.signable.insert(
                        r.seq,
                        Signable::Decision {
                            batch: p.batch,
                            hash,
                        },
                    );
                }
            }
            "qc.alert.raised" => {
                let p: AlertPayload = serde_json::from_str(&r.payload)?;
                if let Some(b) = self.batches.get_mut(&p.batch) {
                    b.alerts.push(AlertView {
                        seq: r.seq,
                        site: r.site.clone(),
                        recorded_at: r.recorded_at,
                        test: p.test,
                        result_seq: p.result_seq,
                        message: p.message,
                    });
                }
            }
            "qc.notification.recorded" => {
                let p: NotificationPayload = serde_json::from_str(&r.payload)?;
                if let Some(b) = self.batches.get_mut(&p.batch) {
                    b.notifications.push(NotificationView {
                        seq: r.seq,
                        site: r.site.clone(),
                        recorded_at: r.recorded_at,
                        to: p.to,
                        role: p.role,
                        channel: p.channel,
                        message: p.message,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_signature(&mut self, r: &Record) {
        let (Ok(p), Some(sig)) = (
            serde_json::from_str::<SignedPayload>(&r.payload),
            &r.signature,
        ) else {
            return;
        };
        let signed = Signed {
            seq: r.seq,
            signer: sig.signer.clone(),
            signer_name: sig.signer_name.clone(),
            signed_at: sig.signed_at,
            meaning: sig.meaning.clone(),
        };
        match self.signable.get(&p.signs_seq).cloned() {
            Some(Signable::Decision { batch, hash })
                if hash == p.signs_hash && sig.meaning == "Released" =>
            {
                if let Some(d) = self
                    .batches
                    .get_mut(&batch)
                    .and_then(|b| b.decisions.iter_mut().find(|d| d.seq == p.signs_seq))
                    && d.signature.is_none()
                {
                    d.signature = Some(signed);
                }
            }
            Some(Signable::Acknowledgement {
                batch,
                request_seq,
                physician,
                hash,
            }) if hash == p.signs_hash && sig.meaning == "Reviewed" && sig.signer == physician => {
                if let Some(q) = self
                    .batches
                    .get_mut(&batch)
                    .and_then(|b| b.at_risk_requests.iter_mut().find(|q| q.seq == request_seq))
                    && q.acknowledged.is_none()
                {
                    q.acknowledged = Some((sig.signer.clone(), sig.signed_at));
                }
            }
            _ => {}
        }
    }
}

impl Projection for QcModel {
    fn apply(&mut self, record: &Record) {
        if record.event_type == "esig.signed" {
            self.apply_signature(record);
        } else if record.event_type.starts_with("qc.")
            && let Err(e) = self.apply_qc(record)
        {
            tracing::error!(seq = record.seq, error = %e, "unreadable QC record");
        }
    }
}
