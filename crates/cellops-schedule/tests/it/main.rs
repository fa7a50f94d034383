//! Integration tests of cellops-schedule: one test binary.

mod booking;
mod common;
mod instances;
mod optimise;
mod replan;
mod risk;
mod staffing;
mod validation;
