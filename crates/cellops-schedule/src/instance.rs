//! The instance file (`cellops-schedule/1`, JSON; spec in docs/scheduling.md): the network,
//! its resources, the products' process routes and the open orders.
//!
//! These types are the wire form only. [`crate::Network::new`] validates an [`Instance`]
//! and turns it into the indexed form the planner works on. All times are whole days
//! counted from `start_date` (day 0); numbers are signed here so that a negative value is
//! reported by validation with its field name instead of as a parse error.

use serde::{Deserialize, Serialize};

/// The format tag every instance file carries.
pub const FORMAT: &str = "cellops-schedule/1";

/// A scheduling instance: network, products and orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Always [`FORMAT`].
    pub format: String,
    /// A short name, used in reports.
    pub name: String,
    /// The calendar date of day 0, `YYYY-MM-DD`.
    pub start_date: String,
    /// Days that can be planned: every stage must end on or before this day.
    pub horizon_days: i64,
    /// Weight of one day of lateness (infusion after `due_day`) relative to one day of
    /// vein-to-vein time.
    pub lateness_weight: i64,
    /// Cost of leaving an order unplanned, per unit of order weight.
    pub unplanned_penalty: i64,
    /// Hospitals and the cell-processing centre.
    pub sites: Vec<Site>,
    /// Pooled resources, one per (site, kind).
    pub resources: Vec<Resource>,
    /// Products and their process routes.
    pub products: Vec<Product>,
    /// Open orders to plan (may be empty for a network-only site configuration).
    #[serde(default)]
    pub orders: Vec<Order>,
    /// The share of lots a stage's planned `duration_days` must cover where the stage has a
    /// `duration_distribution` (0.5 to 0.999); default [`SERVICE_LEVEL_DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level: Option<f64>,
}

/// The service level when an instance names none: a stage's planned length covers 90 % of
/// its lots.
pub const SERVICE_LEVEL_DEFAULT: f64 = 0.9;

/// What a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    /// Collects starting material and treats the patient.
    Hospital,
    /// The cell-processing centre that manufactures, tests and ships (exactly one).
    Cpc,
}

/// A site of the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Site id, e.g. `H01` or `CPC`.
    pub id: String,
    /// Hospital or CPC.
    pub kind: SiteKind,
    /// Courier travel time between this site and the CPC, days (0 for the CPC itself).
    #[serde(default)]
    pub transit_days: i64,
}

/// A pooled resource: `capacity_per_day` units of one kind at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Resource id, e.g. `CPC/culture_device`.
    pub id: String,
    /// The site it belongs to.
    pub site: String,
    /// The kind stages ask for (`collection_chair`, `culture_device`, `isolator`, `qc`,
    /// `courier`, `dry_shipper`, …).
    pub kind: String,
    /// Units available per day (devices, chairs, QC runs, couriers, operators per shift).
    pub capacity_per_day: i64,
    /// Units per weekday, Monday first (7 numbers); overrides `capacity_per_day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday_capacity: Option<Vec<i64>>,
    /// Periods of reduced capacity (maintenance, breakdown, holidays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<Outage>,
}

/// Reduced capacity from `from_day` to `to_day`, both included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// First day of the outage.
    pub from_day: i64,
    /// Last day of the outage (included).
    pub to_day: i64,
    /// Units lost on each of these days.
    pub units: i64,
    /// Why, shown in plans and replanning diffs.
    #[serde(default)]
    pub reason: String,
}

/// A product and its process route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Product id (`prime-car-t`, `allo-car-t`, `bm-msc`).
    pub id: String,
    /// Probability that manufacturing fails outright (re-collection and re-manufacture).
    pub p_fail: f64,
    /// Probability of an out-of-specification QC result (retest).
    pub p_oos: f64,
    /// Stages in order; the end of the last stage is the infusion day.
    pub stages: Vec<Stage>,
    /// The stage repeated after an out-of-specification result (a retest from retained
    /// samples, then the rest of the route); default the stage named `qc`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oos_repeats: Option<String>,
}

/// How long a stage takes over many lots: the probability of each length in whole days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationDistribution {
    /// Where it comes from (e.g. the twin run behind it), shown in reports.
    pub source: String,
    /// Lengths in ascending order with their probabilities, summing to 1.
    pub days: Vec<DurationP>,
}

/// One length of a [`DurationDistribution`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationP {
    /// Stage length, whole days.
    pub days: i64,
    /// Probability of this length.
    pub p: f64,
}

impl DurationDistribution {
    /// The probability that the stage takes at most `days`.
    pub fn p_at_most(&self, days: i64) -> f64 {
        self.days
            .iter()
            .filter(|d| d.days <= days)
            .map(|d| d.p)
            .sum::<f64>()
            .min(1.0)
    }

    /// The shortest length that covers at least `level` of the lots.
    pub fn quantile(&self, level: f64) -> i64 {
        let mut acc = 0.0;
        for d in &self.days {
            acc += d.p;
            // Sums of decimal probabilities fall a hair short of exact values.
            if acc >= level - 1e-9 {
                return d.days;
            }
        }
        self.days.last().map_or(0, |d| d.days)
    }
}

/// Where a stage's resources are: at the order's hospital or at the CPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSite {
    /// The order's hospital.
    Hospital,
    /// The cell-processing centre.
    Cpc,
}

/// How the hospital–CPC travel time enters a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transit {
    /// No travel.
    #[default]
    None,
    /// Material travels before the stage starts: the travel time is added to `min_gap_days`
    /// (and counts against `hold_max_days`).
    Before,
    /// The stage is the trip: the travel time is added to `duration_days`.
    During,
}

/// One stage of a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Stage name (`collection`, `culture`, `qc`, `ship`).
    pub name: String,
    /// Whose resources it uses.
    pub site: StageSite,
    /// Travel between hospital and CPC, if any.
    #[serde(default)]
    pub transit: Transit,
    /// Least days between the end of the previous stage and the start of this one.
    #[serde(default)]
    pub min_gap_days: i64,
    /// Most days between the end of the previous stage and the start of this one (hold-time
    /// limit: fresh material to processing, cryopreserved shelf life); none = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_max_days: Option<i64>,
    /// Days from start to end (0 allowed: a same-day step): the length the plan reserves.
    pub duration_days: i64,
    /// How long the stage really takes over many lots (the culture's harvest day from the
    /// twin); `duration_days` must cover the instance's `service_level` of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_distribution: Option<DurationDistribution>,
    /// Resource units the stage occupies, relative to its start.
    #[serde(default)]
    pub uses: Vec<Use>,
    /// GMP actions a qualified person performs during the stage, for the staffing check:
    /// keys of the site's qualification matrix (`qc.result.sterility`, `shipment.pack`, …),
    /// `qualification:<id>`, or `recipe` for every qualification the product's recipe
    /// declares on its operator and sampling steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staffing: Vec<String>,
}

/// One unit of a resource kind, occupied from `offset_days` after the stage start for
/// `days` days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Use {
    /// Resource kind at the stage's site.
    pub kind: String,
    /// Days after the stage start the use begins.
    #[serde(default)]
    pub offset_days: i64,
    /// Days occupied (at least 1).
    pub days: i64,
}

/// An open order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Order id.
    pub id: String,
    /// Product id.
    pub product: String,
    /// The hospital that collects and treats.
    pub hospital: String,
    /// First day the first stage (collection) may start.
    pub earliest_day: i64,
    /// Infusion wanted by this day; each day later costs `lateness_weight`.
    pub due_day: i64,
    /// Infusion must happen by this day (end of the treatment window); none = no hard limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_day: Option<i64>,
    /// Clinical urgency, 1 (routine) to 10 (urgent).
    #[serde(default = "one")]
    pub weight: i64,
    /// A confirmed booking: replanning moves it only when it must.
    #[serde(default)]
    pub confirmed: bool,
}

fn one() -> i64 {
    1
}
