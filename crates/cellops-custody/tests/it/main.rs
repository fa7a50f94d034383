//! Integration tests of the custody core, through its public API only.

mod allocation;
mod bedside;
mod common;
mod events;
mod props;
mod recall_scale;
mod scans;
mod scenarios;
