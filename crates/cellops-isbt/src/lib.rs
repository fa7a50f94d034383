//! cellops-isbt (being written).
