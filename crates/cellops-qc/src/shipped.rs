//! The specifications that ship with cellops (the files in the repository's `specs/`
//! folder), compiled in so the server and tests need no file system.

use crate::error::QcError;
use crate::spec::Specification;

/// File name and text of every shipped specification.
pub const SHIPPED_SPECS: &[(&str, &str)] = &[
    (
        "prime-car-t.toml",
        include_str!("../../../specs/prime-car-t.toml"),
    ),
    (
        "allo-car-t-lot.toml",
        include_str!("../../../specs/allo-car-t-lot.toml"),
    ),
    ("bm-msc.toml", include_str!("../../../specs/bm-msc.toml")),
];

/// The specifications a server knows, found by product and version.
#[derive(Debug, Clone, Default)]
pub struct SpecCatalog {
    specs: Vec<Specification>,
}

impl SpecCatalog {
    /// The shipped specifications. Fails only if a shipped file is invalid, which the
    /// `every_shipped_spec_validates` test rules out.
    pub fn shipped() -> Result<SpecCatalog, QcError> {
        let specs = SHIPPED_SPECS
            .iter()
            .map(|(file, text)| Specification::parse(file, text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SpecCatalog { specs })
    }

    /// The specification of `product` at `version`, or an error listing the known ones.
    pub fn get(&self, product: &str, version: &str) -> Result<&Specification, QcError> {
        self.specs
            .iter()
            .find(|s| s.product() == product && s.version() == version)
            .ok_or_else(|| QcError::SpecNotFound {
                product: product.to_string(),
                version: version.to_string(),
                known: self
                    .specs
                    .iter()
                    .map(Specification::key)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn specs(&self) -> &[Specification] {
        &self.specs
    }
}
