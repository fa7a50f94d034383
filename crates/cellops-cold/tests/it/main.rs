//! Tests of the cold-chain core through its public API.

mod bank;
mod common;
mod logger;
mod shipping;
mod storage;
