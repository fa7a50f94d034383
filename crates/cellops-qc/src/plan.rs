//! The sample plan of a batch, generated from its recipe and specification: one QC sample
//! per recipe step named as a sample point, in recipe order, listing the tests it feeds and
//! the volume to draw; plus the recipe's own in-process sampling steps for reference.

use crate::error::QcError;
use crate::spec::{ReleaseTiming, Specification};
use cellops_process::Recipe;
use cellops_process::recipe::model::{StepKind, StepPosition};
use serde::Serialize;

/// One release sample to draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedSample {
    /// Identifier within the batch's plan: `qc-<step id>`.
    pub id: String,
    /// The recipe step after which the sample is drawn.
    pub step: String,
    /// The step's name.
    pub step_name: String,
    /// Where the step is in the recipe.
    pub position: StepPosition,
    /// Test ids this sample feeds, in specification order.
    pub tests: Vec<String>,
    /// Total volume to draw, in mL (sum of the tests' volumes).
    pub volume_ml: f64,
    /// True when one of its tests may follow release (e.g. 14-day sterility).
    pub has_may_follow: bool,
}

/// An in-process control sample of the recipe (checked by the batch engine, not QC release).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InProcessSample {
    pub step: String,
    pub step_name: String,
    pub position: StepPosition,
    /// Parameter names with their units in the name (e.g. `viability_percent`).
    pub parameters: Vec<String>,
}

/// The sample plan of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplePlan {
    /// `product@version` of the specification.
    pub spec: String,
    pub recipe_product: String,
    pub recipe_version: String,
    /// Release samples in recipe order.
    pub release_samples: Vec<PlannedSample>,
    /// In-process samples in recipe order.
    pub in_process: Vec<InProcessSample>,
}

impl SamplePlan {
    /// The planned sample with `id`.
    pub fn sample(&self, id: &str) -> Option<&PlannedSample> {
        self.release_samples.iter().find(|s| s.id == id)
    }
}

/// Generates the plan. Refuses a recipe of another product, a recipe version the
/// specification does not list, and a sample point the recipe does not have.
pub fn sample_plan(spec: &Specification, recipe: &Recipe) -> Result<SamplePlan, QcError> {
    if spec.product() != recipe.product() {
        return Err(QcError::PlanProductMismatch {
            spec: spec.key(),
            spec_product: spec.product().to_string(),
            recipe_product: recipe.product().to_string(),
        });
    }
    let recipe_version = recipe.version().to_string();
    if !spec.recipe_versions().contains(&recipe_version) {
        return Err(QcError::PlanRecipeVersion {
            spec: spec.key(),
            recipe_version,
            allowed: spec.recipe_versions().join(", "),
        });
    }
    let mut samples: Vec<PlannedSample> = Vec::new();
    for test in spec.tests() {
        let position =
            recipe
                .position_of(&test.sample_point)
                .ok_or_else(|| QcError::PlanSamplePoint {
                    test: test.id.clone(),
                    step: test.sample_point.clone(),
                    recipe: format!("{}@{}", recipe.product(), recipe_version),
                })?;
        let may_follow = test.release == ReleaseTiming::MayFollow;
        match samples.iter_mut().find(|s| s.step == test.sample_point) {
            Some(s) => {
                s.tests.push(test.id.clone());
                s.volume_ml += test.sample_volume_ml;
                s.has_may_follow |= may_follow;
            }
            None => {
                let step_name = recipe
                    .step_at(position)
                    .map(|s| s.name.clone())
                    // Cannot fail: `position` came from `position_of` on the same recipe.
                    .expect("position_of returns a position inside the recipe");
                samples.push(PlannedSample {
                    id: format!("qc-{}", test.sample_point),
                    step: test.sample_point.clone(),
                    step_name,
                    position,
                    tests: vec![test.id.clone()],
                    volume_ml: test.sample_volume_ml,
                    has_may_follow: may_follow,
                });
            }
        }
    }
    samples.sort_by_key(|s| s.position);
    let in_process = recipe
        .steps()
        .filter_map(|(position, step)| match &step.kind {
            StepKind::Sampling(s) => Some(InProcessSample {
                step: step.id.clone(),
                step_name: step.name.clone(),
                position,
                parameters: s.limits.keys().cloned().collect(),
            }),
            _ => None,
        })
        .collect();
    Ok(SamplePlan {
        spec: spec.key(),
        recipe_product: recipe.product().to_string(),
        recipe_version,
        release_samples: samples,
        in_process,
    })
}
