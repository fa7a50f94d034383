//! Tests of `cellops-label` through its public surface. Symbols are decoded back with
//! independent readers: the `datamatrix` crate's decoder (always), Debian's `dmtxread`
//! (package dmtx-utils) and `zbarimg` (package zbar-tools), and PDF pages are rasterised with
//! `pdftoppm` (package poppler-utils). A missing tool skips that check with a loud message.

mod decode;
mod render;

use cellops_isbt::{ChainOfIdentityId, Din, Fin, IsbtDateTime, ProductCode};
use cellops_label::LabelContent;

/// A label with every optional part, on test facility A9999.
pub fn full_label(sequence: u32) -> LabelContent {
    let fin = Fin::parse("A9999").unwrap();
    LabelContent::new(
        Din::new(fin, 26, sequence).unwrap(),
        ProductCode::parse("S1234100").unwrap(),
        "HPC, Apheresis | autologous use only",
    )
    .unwrap()
    .with_expiry(
        IsbtDateTime::parse_iso8601("2026-12-31T23:59").unwrap(),
        Some("CET"),
    )
    .unwrap()
    .with_chain_of_identity(ChainOfIdentityId::new(fin, 26, "AB12C3").unwrap())
}

/// A label with only what is required.
pub fn minimal_label() -> LabelContent {
    LabelContent::new(
        Din::parse("G123417654321").unwrap(),
        ProductCode::parse("S1234100").unwrap(),
        "T Cells",
    )
    .unwrap()
}

/// Path of `tool` if installed, else `None` after a loud message naming the package.
pub fn tool(tool: &str, package: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: `{tool}` is not installed, so this check did not run. \
             Install the Debian package `{package}` (apt-get install -y {package}). !!!!!!!!\n"
        );
    }
    found
}
