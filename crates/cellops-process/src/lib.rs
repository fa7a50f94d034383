//! cellops-process (being written).
