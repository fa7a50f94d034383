//! `BatchModel`: recipes and batches rebuilt from the ledger.
//!
//! Recipes: `recipe.registered` on stream `recipe/<product>/<version>`; an `esig.signed`
//! record on that stream with meaning "Approved" over the registration record approves
//! exactly the registered content. Batches: the engine's events (`batch.<engine type>`,
//! payload = `BatchEvent` JSON) on stream `batch/<id>` replay through
//! `cellops_process::engine::apply`; the `culture.*` records add what the engine does not
//! know (site, starting unit, device, telemetry summaries, harvested units, review).

use std::collections::BTreeMap;

use cellops_ledger::Record;
use cellops_process::Recipe;
use cellops_process::engine::{
    self, BatchEvent, BatchState, Deviation, DeviationState, ReleaseBlocker,
};
use cellops_process::recipe::hash::{ApprovedVersion, ContentHash};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::accounts::SignedPayload;
use crate::projection::Projection;

/// Most records kept per batch stream for the batch record (a 25-day batch with daily
/// sampling and decisions has a few hundred).
pub const BATCH_RECORDS_MAX: usize = 20_000;

/// Ledger event type of an engine event.
pub fn engine_event_type(event: &BatchEvent) -> String {
    format!("batch.{}", event.type_name())
}

/// Stream of a batch.
pub fn batch_stream(batch: &str) -> String {
    format!("batch/{batch}")
}

/// Stream of a recipe version.
pub fn recipe_stream(product: &str, version: &str) -> String {
    format!("recipe/{product}/{version}")
}

/// Payload of `recipe.registered`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipeRegistered {
    pub product: String,
    pub version: String,
    pub content_hash: String,
    pub file: String,
    pub text: String,
}

/// Payload of `culture.batch_opened`: what the engine does not know about a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchOpened {
    pub batch: String,
    pub site: String,
    pub product: String,
    pub recipe_version: String,
    pub recipe_hash: String,
    /// Unit code of the starting material (apheresis, marrow), e.g. `A999026000001-S1234100`.
    pub starting_unit: String,
    /// Device id.
    pub device: String,
    /// Simulated device settings; `None` for a real device.
    pub simulation: Option<SimulationSettings>,
    /// What the harvest makes in custody; `None`: the harvest only names its units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harvest: Option<HarvestSettings>,
}

/// The harvested product in custody: same DIN as the in-process unit, this product code
/// (with division), expiring `shelf_life_hours` after the harvest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HarvestSettings {
    pub product_code: String,
    pub shelf_life_hours: u32,
}

/// How a simulated device was set up (so the run can be explained and repeated).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SimulationSettings {
    pub seed: u64,
    pub sample_period_s: u32,
}

/// QA's approval of a recipe version.
#[derive(Debug, Clone, Serialize)]
pub struct RecipeApproval {
    pub signer: String,
    pub signer_name: String,
    pub signed_at: String,
    pub signature_seq: u64,
}

/// A registered recipe version.
#[derive(Debug, Clone)]
pub struct RecipeEntry {
    pub recipe: Recipe,
    pub content_hash: ContentHash,
    pub site: String,
    pub registered_seq: u64,
    pub registered_hash: String,
    pub approval: Option<RecipeApproval>,
}

/// One batch.
#[derive(Debug, Clone)]
pub struct BatchEntry {
    pub opened: BatchOpened,
    pub state: BatchState,
    /// Every record of the batch stream, in order (bounded by `BATCH_RECORDS_MAX`).
    pub records: Vec<Record>,
    /// Seq of the latest `step_started` record per step id (what a step signature signs).
    pub step_started_seq: BTreeMap<String, u64>,
    /// Seq of the latest record per deviation id (what QA's closing signature signs).
    pub deviation_seq: BTreeMap<String, u64>,
    /// Harvested unit codes.
    pub harvested_units: Vec<String>,
    /// Latest twin prediction (payload of `culture.prediction_made`).
    pub prediction: Option<Value>,
    /// Seq of the `culture.record_reviewed` record and its signatures' meanings.
    pub review_seq: Option<u64>,
    pub review_signed: Option<String>,
}

impl BatchEntry {
    /// Deviations that block release and are not closed.
    pub fn open_deviations(&self) -> Vec<Deviation> {
        self.state
            .deviations()
            .filter(|d| d.blocks_release && d.state != DeviationState::Closed)
            .cloned()
            .collect()
    }
}

/// The read model.
#[derive(Debug, Default)]
pub struct BatchModel {
    recipes: BTreeMap<(String, String), RecipeEntry>,
    recipe_by_stream: BTreeMap<String, (String, String)>,
    batches: BTreeMap<String, BatchEntry>,
}

impl BatchModel {
    /// The recipe `product` `version`.
    pub fn recipe(&self, product: &str, version: &str) -> Option<&RecipeEntry> {
        self.recipes
            .get(&(product.to_string(), version.to_string()))
    }

    /// Every registered recipe version.
    pub fn recipes(&self) -> impl Iterator<Item = &RecipeEntry> {
        self.recipes.values()
    }

    /// Approved (product, version, hash) triples for the engine's approval check.
    pub fn approved_versions(&self) -> Vec<ApprovedVersion> {
        self.recipes
            .values()
            .filter(|r| r.approval.is_some())
            .map(|r| ApprovedVersion {
                product: r.recipe.product().to_string(),
                version: r.recipe.version().to_string(),
                content_hash: r.content_hash,
            })
            .collect()
    }

    /// The newest approved version of `product` registered at `site`.
    pub fn latest_approved(&self, product: &str, site: &str) -> Option<&RecipeEntry> {
        self.recipes
            .values()
            .filter(|r| r.recipe.product() == product && r.site == site && r.approval.is_some())
            .max_by(|a, b| a.recipe.version().cmp(b.recipe.version()))
    }

    /// The batch `id`.
    pub fn batch(&self, id: &str) -> Option<&BatchEntry> {
        self.batches.get(id)
    }

    /// Every batch.
    pub fn batches(&self) -> impl Iterator<Item = &BatchEntry> {
        self.batches.values()
    }

    /// Open deviations of `batch` that block its release (`None`: no such batch). For QC
    /// release: a batch is releasable only when this is empty and the batch completed.
    pub fn open_deviations(&self, batch: &str) -> Option<Vec<Deviation>> {
        self.batches.get(batch).map(BatchEntry::open_deviations)
    }

    /// Everything that stands between `batch` and release (`None`: no such batch).
    pub fn release_blockers(&self, batch: &str) -> Option<Vec<ReleaseBlocker>> {
        self.batches
            .get(batch)
            .map(|b| engine::release_blockers(&b.state))
    }

    fn apply_recipe(&mut self, r: &Record) {
        if r.event_type == "recipe.registered" {
            let Ok(p) = serde_json::from_str::<RecipeRegistered>(&r.payload) else {
                tracing::error!(seq = r.seq, "unreadable recipe.registered record");
                return;
            };
            let Ok(recipe) = Recipe::parse(&p.file, &p.text) else {
                tracing::error!(seq = r.seq, "registered recipe no longer parses");
                return;
            };
            let key = (p.product.clone(), p.version.clone());
            self.recipe_by_stream.insert(r.stream.clone(), key.clone());
            let content_hash = recipe.content_hash();
            self.recipes.insert(
                key,
                RecipeEntry {
                    recipe,
                    content_hash,
                    site: r.site.clone(),
                    registered_seq: r.seq,
                    registered_hash: hex::encode(r.hash),
                    approval: None,
                },
            );
        } else if r.event_type == "esig.signed" {
            let Some(key) = self.recipe_by_stream.get(&r.stream) else {
                return;
            };
            let (Some(sig), Ok(p)) = (
                r.signature.as_ref(),
                serde_json::from_str::<SignedPayload>(&r.payload),
            ) else {
                return;
            };
            if let Some(entry) = self.recipes.get_mut(key)
                && sig.meaning == "Approved"
                && p.signs_seq == entry.registered_seq
                && p.signs_hash == entry.registered_hash
            {
                entry.approval = Some(RecipeApproval {
                    signer: sig.signer.clone(),
                    signer_name: sig.signer_name.clone(),
                    signed_at: sig.signed_at.to_string(),
                    signature_seq: r.seq,
                });
            }
        }
    }

    fn apply_batch(&mut self, r: &Record) {
        let Some(id) = r.stream.strip_prefix("batch/") else {
            return;
        };
        if r.event_type == "culture.batch_opened" {
            let Ok(opened) = serde_json::from_str::<BatchOpened>(&r.payload) else {
                tracing::error!(seq = r.seq, "unreadable culture.batch_opened record");
                return;
            };
            self.batches.insert(
                id.to_string(),
                BatchEntry {
                    opened,
                    state: BatchState::new(),
                    records: Vec::new(),
                    step_started_seq: BTreeMap::new(),
                    deviation_seq: BTreeMap::new(),
                    harvested_units: Vec::new(),
                    prediction: None,
                    review_seq: None,
                    review_signed: None,
                },
            );
        }
        let Some(entry) = self.batches.get_mut(id) else {
            return;
        };
        if entry.records.len() < BATCH_RECORDS_MAX {
            entry.records.push(r.clone());
        }
        if r.event_type.starts_with("batch.") {
            match BatchEvent::from_json(&r.payload_json()) {
                Ok(event) => {
                    match &event {
                        BatchEvent::StepStarted { step, .. } => {
                            entry.step_started_seq.insert(step.id.clone(), r.seq);
                        }
                        BatchEvent::DeviationOpened { deviation, .. }
                        | BatchEvent::DeviationInvestigationStarted { deviation, .. }
                        | BatchEvent::DeviationCapaDefined { deviation, .. }
                        | BatchEvent::DeviationClosed { deviation, .. } => {
                            entry
                                .deviation_seq
                                .insert(deviation.as_str().to_string(), r.seq);
                        }
                        _ => {}
                    }
                    let state = std::mem::take(&mut entry.state);
                    entry.state = engine::apply(state, &event);
                }
                Err(e) => tracing::error!(seq = r.seq, error = %e, "unreadable batch event"),
            }
            return;
        }
        match r.event_type.as_str() {
            "culture.units_harvested" => {
                if let Some(units) = r.payload_json()["units"].as_array() {
                    entry
                        .harvested_units
                        .extend(units.iter().filter_map(|u| u.as_str().map(String::from)));
                }
            }
            "culture.prediction_made" => entry.prediction = Some(r.payload_json()),
            "culture.record_reviewed" => entry.review_seq = Some(r.seq),
            "esig.signed" => {
                if let (Some(sig), Ok(p), Some(review)) = (
                    r.signature.as_ref(),
                    serde_json::from_str::<SignedPayload>(&r.payload),
                    entry.review_seq,
                ) && p.signs_seq == review
                {
                    entry.review_signed = Some(sig.meaning.clone());
                }
            }
            _ => {}
        }
    }
}

impl Projection for BatchModel {
    fn apply(&mut self, record: &Record) {
        if record.stream.starts_with("recipe/") {
            self.apply_recipe(record);
        } else if record.stream.starts_with("batch/") {
            self.apply_batch(record);
        }
    }
}
