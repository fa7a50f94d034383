//! Integration tests of cellops-schedule: one test binary.

mod booking;
mod common;
mod instances;
mod optimise;
mod replan;
mod staffing;
mod validation;
