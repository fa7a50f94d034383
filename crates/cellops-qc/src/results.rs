//! The QC results of one batch as recorded: results are never overwritten (a correction is a
//! new result that supersedes an earlier one, with a reason), and an out-of-specification
//! result opens an investigation that QA concludes as a confirmed OOS or an invalidated
//! result (laboratory error; a retest is then needed).

use crate::evaluate::{MeasuredValue, Verdict};
use cellops_domain::Timestamp;
use serde::{Deserialize, Serialize};

/// Most results kept for one batch (results, corrections and retests together).
pub const BATCH_RESULTS_MAX: usize = 2_000;

/// One recorded result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// Ledger seq of the record: the result's identity.
    pub seq: u64,
    pub test: String,
    /// The sample unit (DIN + product code) the result was measured on, if registered.
    pub sample: Option<String>,
    pub value: MeasuredValue,
    pub verdict: Verdict,
    pub method: String,
    pub instrument: String,
    /// User id of the analyst.
    pub analyst: String,
    pub recorded_at: Timestamp,
    /// The result this one corrects, with the reason.
    pub corrects: Option<u64>,
    pub reason: Option<String>,
    /// Set when a later correction replaced this result.
    pub superseded_by: Option<u64>,
}

/// State of an OOS investigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationState {
    Open,
    /// The result stands: the batch is out of specification for this test.
    ConfirmedOos,
    /// Laboratory error: the result is invalid and a retest is needed.
    Invalidated,
}

/// An OOS investigation, opened automatically by a failing result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    /// `OOS-<seq of the result>`.
    pub id: String,
    pub result_seq: u64,
    pub test: String,
    pub state: InvestigationState,
    pub opened_at: Timestamp,
    pub conclusion: Option<String>,
    pub concluded_by: Option<String>,
}

/// The id of the investigation a failing result opens.
pub fn investigation_id(result_seq: u64) -> String {
    format!("OOS-{result_seq}")
}

/// Every result and investigation of one batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchResults {
    results: Vec<ResultRecord>,
    investigations: Vec<Investigation>,
}

impl BatchResults {
    /// Adds a result; a correction marks the result it corrects as superseded.
    /// Results beyond [`BATCH_RESULTS_MAX`] are ignored (the server refuses them first).
    pub fn record(&mut self, result: ResultRecord) {
        if self.results.len() >= BATCH_RESULTS_MAX {
            return;
        }
        if let Some(old) = result.corrects
            && let Some(r) = self.results.iter_mut().find(|r| r.seq == old)
        {
            r.superseded_by = Some(result.seq);
        }
        self.results.push(result);
    }

    /// Opens an investigation (for a failing result).
    pub fn open_investigation(&mut self, investigation: Investigation) {
        if self.investigation(&investigation.id).is_none() {
            self.investigations.push(investigation);
        }
    }

    /// Concludes an open investigation; unknown or concluded ones are left alone.
    pub fn conclude(&mut self, id: &str, state: InvestigationState, text: &str, by: &str) {
        if let Some(i) = self.investigations.iter_mut().find(|i| i.id == id)
            && i.state == InvestigationState::Open
        {
            i.state = state;
            i.conclusion = Some(text.to_string());
            i.concluded_by = Some(by.to_string());
        }
    }

    pub fn results(&self) -> &[ResultRecord] {
        &self.results
    }

    pub fn result(&self, seq: u64) -> Option<&ResultRecord> {
        self.results.iter().find(|r| r.seq == seq)
    }

    pub fn investigations(&self) -> &[Investigation] {
        &self.investigations
    }

    pub fn investigation(&self, id: &str) -> Option<&Investigation> {
        self.investigations.iter().find(|i| i.id == id)
    }

    /// True when an investigation concluded that result `seq` is invalid.
    pub fn is_invalidated(&self, seq: u64) -> bool {
        self.investigations
            .iter()
            .any(|i| i.result_seq == seq && i.state == InvestigationState::Invalidated)
    }

    /// The result that counts for `test`: the latest one neither superseded by a
    /// correction nor invalidated by an investigation.
    pub fn current(&self, test: &str) -> Option<&ResultRecord> {
        self.results
            .iter()
            .rev()
            .find(|r| r.test == test && r.superseded_by.is_none() && !self.is_invalidated(r.seq))
    }

    /// Whether `analyst` entered any result of this batch (separation of duties).
    pub fn entered_by(&self, analyst: &str) -> bool {
        self.results.iter().any(|r| r.analyst == analyst)
    }
}
