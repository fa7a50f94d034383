//! OPC UA tests: the client adapter against an independent Python asyncua server
//! (`tests/peer/device_server.py`, started by the tests), and the Rust server exposing the
//! simulated device, driven by the adapter and by the controller.

mod peer;
mod rust_server;
mod support;
