//! Integration tests of cellops-process, one binary (STYLE.md: one link step).

mod hash;
mod shipped;
mod validation;
