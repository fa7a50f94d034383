//! Integration tests of cellops-process, one binary (STYLE.md: one link step).

mod diff;
mod engine;
mod four_eyes;
mod hash;
mod shipped;
mod validation;
