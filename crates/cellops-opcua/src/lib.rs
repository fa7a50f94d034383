//! cellops-opcua: culture devices over OPC UA.
//!
//! - [`server::DeviceServer`] exposes any `CultureDevice` (the simulated device in
//!   `cellops device serve-opcua`) as an OPC UA server with the node model of [`model`],
//!   which follows the ideas of the LADS companion specification.
//! - [`client::OpcUaDevice`] drives a remote device over OPC UA and implements
//!   `CultureDevice`, so the controller treats it like any other device.
//!
//! The OPC UA stack (`async-opcua`, pure Rust) is large; only this crate depends on it.
//! Architecture invariant: the node model is named in [`model`] only; server and client
//! never spell a node id themselves, and the independent Python peer used in the tests is
//! written from `docs/devices.md`, not from this code.

pub mod client;
pub mod convert;
pub mod error;
pub mod model;
pub mod server;

pub use client::{ClientOptions, OpcUaDevice};
pub use error::OpcUaError;
pub use server::{DeviceServer, ServerOptions, SharedDevice};
