//! HTTP API tests through the public surface: the router driven with `oneshot`, on a real
//! SQLite ledger in a temp dir, with a simulated clock.

mod api;
mod batch;
mod culture_rules;
mod custody;
mod mqtt_ingest;
mod notify;
mod qc;
mod real_devices;
mod schedule;
mod storage;
mod support;
mod training;
mod ui_home;
