//! Integration tests of cellops-twin through its public API (one test binary).

mod coldchain;
mod predict;
mod sim;
mod validation;
