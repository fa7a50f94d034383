//! cellops-process: recipes and the batch execution engine.
//!
//! - `recipe`: the TOML recipe format, validation that reports every problem with file, line,
//!   column and field path, the canonical content hash QA approves, and `diff` for change control.
//! - `engine`: the pure batch state machine (`decide` / `apply`) that follows an approved recipe.
//! - `shipped`: the recipes that ship with cellops.
//!
//! Architecture invariant: no IO, no clock, no randomness. Time, people and measured values
//! arrive inside commands; the qualification check is injected.

pub mod engine;
pub mod recipe;
pub mod shipped;
pub mod units;

pub use recipe::model::Recipe;
