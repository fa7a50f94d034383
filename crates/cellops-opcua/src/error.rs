//! Errors of the OPC UA server (the client reports `cellops_device::DeviceError`).

/// Starting or running the OPC UA server failed.
#[derive(Debug, thiserror::Error)]
pub enum OpcUaError {
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr} for OPC UA: {reason} (fix: choose a free --port or another --host)"
    )]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why binding failed.
        reason: String,
    },
    /// The server configuration was refused by the OPC UA stack.
    #[error("OPC UA server configuration is invalid: {0}")]
    Config(String),
    /// The device's description could not be read to build the node model.
    #[error("cannot build the OPC UA node model: {0}")]
    Model(String),
}
