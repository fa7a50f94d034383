//! Integration tests of cellops-tlog through its public API.

mod merkle;
