//! cellops-tlog (being written).
