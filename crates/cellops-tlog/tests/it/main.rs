//! Integration tests of cellops-tlog through its public API.

mod checkpoints;
mod merkle;
mod notes;
