//! cellops-twin (being written).
