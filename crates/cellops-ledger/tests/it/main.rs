//! The ledger's story tests, written once and run on both backends (STYLE.md §7).
//! PostgreSQL tests use the real server (CELLOPS_TEST_POSTGRES, default
//! postgres://postgres@127.0.0.1:5432/postgres) with a fresh database per test.

mod python_verifier;
mod suite;
mod support;
