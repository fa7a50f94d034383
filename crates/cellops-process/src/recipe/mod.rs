//! Recipes: the TOML format (see `docs/recipes.md`), validation that reports every problem
//! with its position, the canonical content hash that QA approves, and `diff` for change control.

pub mod diff;
pub mod hash;
pub mod model;
mod parse;
pub mod problem;
mod reader;
mod validate;

pub use parse::{
    BATCH_DAYS_MAX, FORMAT_VERSION, PHASE_STEPS_MAX, RECIPE_MATERIALS_MAX, RECIPE_PHASES_MAX,
    STEP_DURATION_HOURS_MAX, STEP_LIMITS_MAX, STEP_MATERIALS_MAX,
};
pub use reader::{ID_CHARS_MAX, TEXT_CHARS_MAX};

use model::{Phase, Recipe, Step};
use parse::{Draft, DraftPhase, Drafted};
use problem::{Problem, ProblemKind, RecipeErrors};
use reader::{Reader, Tbl};

/// Largest recipe file accepted, in bytes.
pub const RECIPE_BYTES_MAX: usize = 1024 * 1024;

impl Recipe {
    /// Parses and validates a recipe. `file` is only used in error messages.
    ///
    /// On failure the error lists every problem found (syntax errors stop the reading, since
    /// nothing after them can be trusted; all other problems are collected in one pass).
    pub fn parse(file: &str, text: &str) -> Result<Recipe, RecipeErrors> {
        let errors = |problems: Vec<Problem>| RecipeErrors {
            file: file.to_string(),
            problems,
        };
        let mut reader = Reader::new(text);
        if text.len() > RECIPE_BYTES_MAX {
            reader.report_at(
                "",
                0,
                ProblemKind::TooLarge {
                    bytes: text.len(),
                    max: RECIPE_BYTES_MAX,
                },
            );
            return Err(errors(reader.into_problems()));
        }
        let document = match toml_edit::ImDocument::parse(text) {
            Ok(document) => document,
            Err(error) => {
                let offset = error.span().map_or(0, |s| s.start);
                let message = error.message().trim().to_string();
                reader.report_at("", offset, ProblemKind::Syntax { message });
                return Err(errors(reader.into_problems()));
            }
        };
        let root = Tbl {
            table: document.as_table(),
            offset: 0,
        };
        let draft = parse::read_draft(&mut reader, root);
        validate::check(&mut reader, &draft);
        if reader.has_problems() {
            return Err(errors(reader.into_problems()));
        }
        finish(draft).ok_or_else(|| {
            reader.report_at("", 0, ProblemKind::Incomplete);
            errors(reader.into_problems())
        })
    }
}

fn finish(draft: Draft) -> Option<Recipe> {
    fn all<T>(items: Vec<Drafted<T>>) -> Option<Vec<T>> {
        items.into_iter().map(|d| d.value).collect()
    }
    let phases = draft
        .phases
        .into_iter()
        .map(finish_phase)
        .collect::<Option<Vec<Phase>>>()?;
    Some(Recipe {
        product: draft.product?,
        product_name: draft.product_name?,
        version: draft.version?,
        description: draft.description,
        qualifications: all(draft.qualifications)?,
        materials: all(draft.materials)?,
        phases,
    })
}

fn finish_phase(phase: DraftPhase) -> Option<Phase> {
    let steps = phase
        .steps
        .into_iter()
        .map(|s| {
            Some(Step {
                id: s.id?,
                name: s.name?,
                kind: s.kind?,
            })
        })
        .collect::<Option<Vec<Step>>>()?;
    if steps.is_empty() {
        return None;
    }
    Some(Phase {
        id: phase.id?,
        name: phase.name?,
        steps,
    })
}
