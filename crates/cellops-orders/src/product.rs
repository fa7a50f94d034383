//! The three products' ordering rules: how the starting material is obtained, the dose range
//! a physician may order, hold times and the typical durations used to predict dates.
//!
//! Figures from `shared/reference/bioprocess.md` and `shared/design/PRODUCT.md`; where the
//! source says "unconfirmed" the constant says so too.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::OrderError;

/// A product a hospital can order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Product {
    /// Autologous PRIME CAR-T (IL-7 × CCL19): apheresis → CPC culture → cryo → infusion.
    PrimeCarT,
    /// Allogeneic genome-edited CAR-T: a dose from a released, banked lot.
    AlloCarT,
    /// Autologous bone-marrow MSC for liver cirrhosis: aspirate → ~3 weeks culture → infusion.
    BmMsc,
}

/// Every product, in display order.
pub const PRODUCTS: [Product; 3] = [Product::PrimeCarT, Product::AlloCarT, Product::BmMsc];

impl Product {
    /// Parses the product id used in the API (`prime-car-t`, `allo-car-t`, `bm-msc`).
    pub fn parse(text: &str) -> Result<Product, OrderError> {
        PRODUCTS
            .into_iter()
            .find(|p| p.id() == text)
            .ok_or_else(|| OrderError::Invalid {
                field: "product",
                message: format!(
                    "{text:?} is not a product: use prime-car-t, allo-car-t or bm-msc"
                ),
            })
    }

    /// The product id.
    pub fn id(self) -> &'static str {
        match self {
            Product::PrimeCarT => "prime-car-t",
            Product::AlloCarT => "allo-car-t",
            Product::BmMsc => "bm-msc",
        }
    }

    /// The id of the recipe that makes it (`recipes/*.toml`).
    pub fn recipe(self) -> &'static str {
        match self {
            Product::PrimeCarT => "prime-car-t",
            Product::AlloCarT => "allo-car-t-lot",
            Product::BmMsc => "bm-msc",
        }
    }

    /// True when the patient's own cells are collected and manufactured for this order.
    pub fn is_autologous(self) -> bool {
        !matches!(self, Product::AlloCarT)
    }

    /// The ordering rules of the product.
    pub fn rules(self) -> &'static ProductRules {
        match self {
            Product::PrimeCarT => &PRIME_CAR_T,
            Product::AlloCarT => &ALLO_CAR_T,
            Product::BmMsc => &BM_MSC,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How the starting material for an order is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    /// Leukapheresis at the hospital.
    Apheresis,
    /// Bone-marrow aspiration at the hospital.
    BoneMarrowAspiration,
    /// No collection: a dose is allocated from the allogeneic bank.
    DoseBank,
}

impl Collection {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Apheresis => "apheresis",
            Collection::BoneMarrowAspiration => "bone_marrow_aspiration",
            Collection::DoseBank => "dose_bank",
        }
    }
}

/// Whether a dose is given per body or per kilogram of body weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoseBasis {
    /// Cells per patient.
    PerBody,
    /// Cells per kg body weight (the order then carries the weight).
    PerKg,
}

/// The ordering rules of one product.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRules {
    /// How the starting material is obtained.
    pub collection: Collection,
    /// The dose basis a physician orders in.
    pub dose_basis: DoseBasis,
    /// Smallest dose that may be ordered (cells per body or per kg).
    pub dose_min: f64,
    /// Largest dose that may be ordered (cells per body or per kg).
    pub dose_max: f64,
    /// What the dose counts ("CAR+ viable T cells", "viable MSC").
    pub dose_counts: &'static str,
    /// Longest time from collection to the start of processing, hours (fresh material).
    pub fresh_hold_hours_max: i64,
    /// Typical days from order signature to collection (slot lead time).
    pub days_to_collection: i64,
    /// Typical days from collection to receipt at the CPC.
    pub days_collection_to_receipt: i64,
    /// Typical days of manufacturing, receipt to harvest (from the twin presets).
    pub days_manufacturing: i64,
    /// Typical days from harvest to release (rapid release tests; 14-day sterility may follow).
    pub days_harvest_to_release: i64,
    /// Typical days from release (or allocation) to receipt at the hospital.
    pub days_shipping: i64,
}

/// PRIME CAR-T: TAK-102 dose levels 1e7, 1e8, 1e9 CAR+ cells/body with de-escalation 3e6
/// [NCT04405778]; fresh apheresis 2–8 °C ≤ 48 h (PRODUCT.md); 13-day closed-device culture
/// (twin preset, Zhu et al. 2018); release tests ~7 days (unconfirmed).
pub const PRIME_CAR_T: ProductRules = ProductRules {
    collection: Collection::Apheresis,
    dose_basis: DoseBasis::PerBody,
    dose_min: 3e6,
    dose_max: 1e9,
    dose_counts: "CAR+ viable T cells",
    fresh_hold_hours_max: 48,
    days_to_collection: 7,
    days_collection_to_receipt: 1,
    days_manufacturing: 13,
    days_harvest_to_release: 7,
    days_shipping: 1,
};

/// Allogeneic CAR-T: banked doses; dose range per body taken from the PRIME cohorts
/// (unconfirmed for the allogeneic product); no collection from the patient.
pub const ALLO_CAR_T: ProductRules = ProductRules {
    collection: Collection::DoseBank,
    dose_basis: DoseBasis::PerBody,
    dose_min: 1e7,
    dose_max: 1e9,
    dose_counts: "CAR+ viable T cells",
    fresh_hold_hours_max: 0,
    days_to_collection: 0,
    days_collection_to_receipt: 0,
    days_manufacturing: 0,
    days_harvest_to_release: 0,
    days_shipping: 1,
};

/// BM-MSC: dose bounds 1e6 [NCT01854125] to 7.5e6 MSC/kg [Stempeucel phase II]; marrow at
/// room temperature < 24 h (unconfirmed); ~3 weeks culture [NCT02327832].
pub const BM_MSC: ProductRules = ProductRules {
    collection: Collection::BoneMarrowAspiration,
    dose_basis: DoseBasis::PerKg,
    dose_min: 1e6,
    dose_max: 7.5e6,
    dose_counts: "viable MSC",
    fresh_hold_hours_max: 24,
    days_to_collection: 7,
    days_collection_to_receipt: 1,
    days_manufacturing: 21,
    days_harvest_to_release: 7,
    days_shipping: 1,
};

/// Body weight accepted with a per-kg dose, kg.
pub const BODY_WEIGHT_KG_RANGE: (f64, f64) = (2.0, 300.0);

/// Longest treatment window an order may span, days.
pub const TREATMENT_WINDOW_DAYS_MAX: i64 = 180;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_round_trip_and_unknown_is_named() {
        for p in PRODUCTS {
            assert_eq!(Product::parse(p.id()).unwrap(), p);
            assert!(p.rules().dose_min < p.rules().dose_max);
        }
        let e = Product::parse("car-t").unwrap_err().to_string();
        assert!(e.contains("product") && e.contains("prime-car-t"), "{e}");
    }
}
