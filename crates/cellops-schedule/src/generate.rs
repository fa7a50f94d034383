//! Instance generator: a network of hospitals around one CPC, one year of orders for the
//! three products, resources sized from the demand. Deterministic for a given RNG.
//!
//! Culture durations come from the twin's process presets (`cellops_twin::product`); the
//! other durations, hold limits and failure rates from bioprocess.md (§1a, §1c, §5), as
//! noted at each constant.

use std::sync::OnceLock;

use cellops_twin::predict::{HarvestRule, harvest_day_distribution};
use cellops_twin::product::Donor;
use rand::Rng;

use crate::instance::{
    DurationDistribution, DurationP, FORMAT, Instance, Order, Product, Resource,
    SERVICE_LEVEL_DEFAULT, Site, SiteKind, Stage, StageSite, Transit, Use,
};

/// Days of the year over which orders arrive.
pub const YEAR_DAYS: i64 = 365;
/// Days planned after the last arrival so late orders still fit.
pub const TAIL_DAYS: i64 = 120;
/// Fresh apheresis must reach processing within 48 h (bioprocess.md §1a row 2, PRODUCT.md).
pub const FRESH_HOLD_DAYS: i64 = 2;
/// Refrigerated marrow for MSC: 2–4 d at 4 °C (bioprocess.md §4); the project uses 3.
pub const MARROW_HOLD_DAYS: i64 = 3;
/// MSC culture, ~3 weeks with passaging (bioprocess.md §1c; the twin has no MSC preset length).
pub const MSC_CULTURE_DAYS: i64 = 21;
/// Harvest, formulation and controlled-rate freezing after the culture (§1a rows 7–9).
pub const HARVEST_FREEZE_DAYS: i64 = 1;
/// QC release tests before (at-risk) release, days (§1a row 10: 7–14 d; release at risk
/// before the 14-day sterility result).
pub const QC_DAYS: i64 = 7;
/// Most days from harvest to the start of QC testing (retained samples; unconfirmed).
pub const QC_HOLD_DAYS: i64 = 3;
/// Longest cryopreserved storage before shipping that the plan allows, days (shelf life of
/// frozen CAR-T is unconfirmed in bioprocess.md; a conservative planning limit).
pub const SHELF_HOLD_DAYS: i64 = 90;
/// Days a dry shipper is away: out, hand-over, return (§4 hold ≥ 10 d; unconfirmed).
pub const SHIPPER_CYCLE_DAYS: i64 = 4;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenParams {
    /// Instance name.
    pub name: String,
    /// Number of patients (orders), 1 to 2000.
    pub patients: usize,
    /// Day 0, `YYYY-MM-DD`.
    pub start_date: String,
    /// How tight capacity is: capacity = mean demand × `slack_percent` / 100.
    pub slack_percent: u32,
    /// Site id of the CPC.
    pub cpc_id: String,
    /// Hospital site ids; empty = `h01`, `h02`, … (4 + patients / 100 of them).
    pub hospital_ids: Vec<String>,
    /// Planning horizon, days; `None` = one year plus [`TAIL_DAYS`].
    pub horizon_days: Option<i64>,
}

impl GenParams {
    /// `patients` orders over one year from 2027-01-04, capacity 25 % above mean demand.
    pub fn year(name: &str, patients: usize) -> GenParams {
        GenParams {
            name: name.to_string(),
            patients,
            start_date: "2027-01-04".to_string(),
            slack_percent: 125,
            cpc_id: "cpc".to_string(),
            hospital_ids: Vec::new(),
            horizon_days: None,
        }
    }
}

/// The PRIME recipe's harvest decision (`recipes/prime-car-t.toml`, step
/// `harvest-decision`): harvest once the viable CAR+ cells reach 3e8, decided daily from
/// day 7, on day 12 at the latest. A test checks these against the recipe.
pub const PRIME_HARVEST: HarvestRule = HarvestRule {
    dose_car_pos_cells: 3.0e8,
    earliest_day: 7,
    latest_day: 12,
};
/// Autologous lots the twin simulates for the PRIME culture-length distribution.
pub const TWIN_LOTS: usize = 400;
/// Seed of those lots (fixed: every instance of a build gets the same distribution).
pub const TWIN_SEED: u64 = 2027;

/// The PRIME culture stage's length (culture to harvest, then harvest and freezing) over
/// [`TWIN_LOTS`] autologous lots of the twin under [`PRIME_HARVEST`], and the length that
/// covers [`SERVICE_LEVEL_DEFAULT`] of them. Computed once per process.
pub fn prime_culture_stage_days() -> &'static (i64, DurationDistribution) {
    static CACHE: OnceLock<(i64, DurationDistribution)> = OnceLock::new();
    CACHE.get_or_init(|| {
        let donor = Donor::Autologous {
            heavily_pretreated: false,
        };
        let h = harvest_day_distribution(
            &cellops_twin::product::prime_car_t(),
            donor,
            &PRIME_HARVEST,
            TWIN_LOTS,
            TWIN_SEED,
        )
        .expect("the PRIME preset and harvest rule are valid constants");
        let dist = DurationDistribution {
            source: format!(
                "cellops-twin: {} autologous PRIME lots (seed {}), harvest at {:.0e} CAR+ cells from day {} to day {} ({} not reaching it), plus {} d harvest and freezing",
                h.samples,
                TWIN_SEED,
                PRIME_HARVEST.dose_car_pos_cells,
                PRIME_HARVEST.earliest_day,
                PRIME_HARVEST.latest_day,
                h.not_reached,
                HARVEST_FREEZE_DAYS
            ),
            days: h
                .probabilities()
                .into_iter()
                .map(|(day, p)| DurationP {
                    days: i64::from(day) + HARVEST_FREEZE_DAYS,
                    p,
                })
                .collect(),
        };
        (dist.quantile(SERVICE_LEVEL_DEFAULT), dist)
    })
}

fn use_(kind: &str, offset_days: i64, days: i64) -> Use {
    Use {
        kind: kind.to_string(),
        offset_days,
        days,
    }
}

/// What a stage asks of qualified people (see [`Stage::staffing`]).
fn staffing(actions: &[&str]) -> Vec<String> {
    actions.iter().map(|a| (*a).to_string()).collect()
}

/// The release panel: an analytical method of the product and sterility testing.
fn qc_stage(analytical_method: &str) -> Stage {
    Stage {
        name: "qc".into(),
        site: StageSite::Cpc,
        transit: Transit::None,
        min_gap_days: 0,
        hold_max_days: Some(QC_HOLD_DAYS),
        duration_days: QC_DAYS,
        duration_distribution: None,
        // A release panel takes two analyst-days of QC capacity.
        uses: vec![use_("qc", 0, 2)],
        staffing: vec![
            format!("qc.result.{analytical_method}"),
            "qc.result.sterility".to_string(),
        ],
    }
}

fn ship_stage(hold: i64) -> Stage {
    Stage {
        name: "ship".into(),
        site: StageSite::Cpc,
        transit: Transit::During,
        min_gap_days: 0,
        hold_max_days: Some(hold),
        duration_days: 0,
        duration_distribution: None,
        uses: vec![
            use_("courier", 0, 1),
            use_("dry_shipper", 0, SHIPPER_CYCLE_DAYS),
        ],
        staffing: staffing(&["shipment.pack"]),
    }
}

/// The three products of PRODUCT.md with their routes.
pub fn products() -> Vec<Product> {
    let (prime_stage, prime_dist) = prime_culture_stage_days().clone();
    let prime = prime_stage - HARVEST_FREEZE_DAYS;
    let culture = |name: &str, kind: &str, days: i64, hold: i64, touches: &[i64]| Stage {
        name: name.into(),
        site: StageSite::Cpc,
        transit: Transit::Before,
        min_gap_days: 0,
        hold_max_days: Some(hold),
        duration_days: days + HARVEST_FREEZE_DAYS,
        duration_distribution: None,
        uses: std::iter::once(use_(kind, 0, days + HARVEST_FREEZE_DAYS))
            .chain(touches.iter().map(|&t| use_("isolator", t, 1)))
            .collect(),
        staffing: staffing(&["recipe"]),
    };
    let collect = |kind: &str, action: &str| Stage {
        name: "collection".into(),
        site: StageSite::Hospital,
        transit: Transit::None,
        min_gap_days: 0,
        hold_max_days: None,
        duration_days: 1,
        duration_distribution: None,
        uses: vec![use_(kind, 0, 1)],
        staffing: staffing(&[action]),
    };
    vec![
        Product {
            id: "prime-car-t".into(),
            // UK real-world manufacturing failure 3.87 % (bioprocess.md §5).
            p_fail: 0.04,
            p_oos: 0.05,
            oos_repeats: None,
            stages: vec![
                collect("collection_chair", "collection.apheresis"),
                // Isolator at selection/activation (day 0) and at the planned harvest.
                Stage {
                    duration_distribution: Some(prime_dist),
                    ..culture(
                        "culture",
                        "culture_device",
                        prime,
                        FRESH_HOLD_DAYS,
                        &[0, prime],
                    )
                },
                qc_stage("flow-viability"),
                ship_stage(SHELF_HOLD_DAYS),
            ],
        },
        Product {
            // A dose from the banked allogeneic lot: dose release check, then shipping.
            id: "allo-car-t".into(),
            p_fail: 0.01,
            p_oos: 0.03,
            // A dose that fails its release check is replaced by another dose of the lot.
            oos_repeats: Some("dose_release".into()),
            stages: vec![
                Stage {
                    name: "dose_release".into(),
                    site: StageSite::Cpc,
                    transit: Transit::None,
                    min_gap_days: 0,
                    hold_max_days: None,
                    duration_days: 1,
                    duration_distribution: None,
                    uses: vec![use_("qc", 0, 1)],
                    staffing: staffing(&["release.sign"]),
                },
                ship_stage(14),
            ],
        },
        Product {
            id: "bm-msc".into(),
            p_fail: 0.05,
            p_oos: 0.05,
            oos_repeats: None,
            stages: vec![
                collect("aspiration_room", "collection.bone_marrow"),
                // Isolator at seeding, at two passages and at harvest (4 touch-points, §5).
                culture(
                    "culture",
                    "culture_device",
                    MSC_CULTURE_DAYS,
                    MARROW_HOLD_DAYS,
                    &[0, 7, 14, MSC_CULTURE_DAYS],
                ),
                qc_stage("trypan-blue"),
                ship_stage(SHELF_HOLD_DAYS),
            ],
        },
    ]
}

fn scaled(mean_per_day: f64, slack_percent: u32) -> i64 {
    ((mean_per_day * f64::from(slack_percent) / 100.0).ceil() as i64).max(1)
}

/// Generates an instance. Product mix 50 % PRIME CAR-T, 20 % allogeneic, 30 % MSC; arrivals
/// uniform over the year; urgency 1, 2 or 5; due 3–14 days after the shortest route.
pub fn generate(params: &GenParams, rng: &mut impl Rng) -> Instance {
    let n = params.patients.clamp(1, 2000);
    let hospital_ids: Vec<String> = if params.hospital_ids.is_empty() {
        (1..=4 + n / 100).map(|h| format!("h{h:02}")).collect()
    } else {
        params.hospital_ids.clone()
    };
    let hospital_count = hospital_ids.len();
    let cpc = params.cpc_id.clone();
    let mut sites = vec![Site {
        id: cpc.clone(),
        kind: SiteKind::Cpc,
        transit_days: 0,
    }];
    for id in &hospital_ids {
        sites.push(Site {
            id: id.clone(),
            kind: SiteKind::Hospital,
            // Most hospitals are a day's drive away, some two (bioprocess.md §1a: 1–3 d).
            transit_days: if rng.gen_bool(0.7) { 1 } else { 2 },
        });
    }
    let products = products();
    let mix = [0.5, 0.2, 0.3];
    let mut orders = Vec::with_capacity(n);
    let mut demand = [0usize; 3];
    for k in 0..n {
        let x: f64 = rng.r#gen();
        let p = if x < mix[0] {
            0
        } else if x < mix[0] + mix[1] {
            1
        } else {
            2
        };
        demand[p] += 1;
        let h = rng.gen_range(1..=hospital_count);
        let earliest = rng.gen_range(0..YEAR_DAYS);
        let route_days: i64 = products[p]
            .stages
            .iter()
            .map(|s| s.duration_days + s.min_gap_days)
            .sum::<i64>()
            + 2 * sites[h].transit_days;
        let weight = [1, 1, 1, 2, 2, 5][rng.gen_range(0..6)];
        orders.push(Order {
            id: format!("O{:04}", k + 1),
            product: products[p].id.clone(),
            hospital: sites[h].id.clone(),
            earliest_day: earliest,
            due_day: earliest + route_days + rng.gen_range(3..=14),
            latest_day: None,
            weight,
            confirmed: false,
        });
    }
    // Demand per day of each CPC resource, from the routes.
    let per_day = |kind: &str| -> f64 {
        products
            .iter()
            .zip(demand)
            .map(|(p, count)| {
                let days: i64 = p
                    .stages
                    .iter()
                    .flat_map(|s| s.uses.iter())
                    .filter(|u| u.kind == kind)
                    .map(|u| u.days)
                    .sum();
                days as f64 * count as f64
            })
            .sum::<f64>()
            / YEAR_DAYS as f64
    };
    let slack = params.slack_percent;
    let weekdays = |cap: i64, weekend: i64| Some(vec![cap, cap, cap, cap, cap, weekend, weekend]);
    let mut resources = vec![
        Resource {
            id: format!("{cpc}/culture_device"),
            site: cpc.clone(),
            kind: "culture_device".into(),
            capacity_per_day: scaled(per_day("culture_device"), slack),
            weekday_capacity: None,
            outages: Vec::new(),
        },
        Resource {
            id: format!("{cpc}/isolator"),
            site: cpc.clone(),
            kind: "isolator".into(),
            capacity_per_day: 0,
            // Isolator shifts: weekdays, one weekend shift for harvests and passages.
            weekday_capacity: weekdays(scaled(per_day("isolator") * 7.0 / 5.0, slack), 1),
            outages: Vec::new(),
        },
        Resource {
            id: format!("{cpc}/qc"),
            site: cpc.clone(),
            kind: "qc".into(),
            capacity_per_day: 0,
            weekday_capacity: weekdays(scaled(per_day("qc") * 7.0 / 5.0, slack), 0),
            outages: Vec::new(),
        },
        Resource {
            id: format!("{cpc}/courier"),
            site: cpc.clone(),
            kind: "courier".into(),
            capacity_per_day: 0,
            weekday_capacity: weekdays(scaled(per_day("courier") * 7.0 / 5.0, slack), 1),
            outages: Vec::new(),
        },
        Resource {
            id: format!("{cpc}/dry_shipper"),
            site: cpc.clone(),
            kind: "dry_shipper".into(),
            capacity_per_day: scaled(per_day("dry_shipper"), slack).max(2),
            weekday_capacity: None,
            outages: Vec::new(),
        },
    ];
    for s in sites.iter().skip(1) {
        resources.push(Resource {
            id: format!("{}/collection_chair", s.id),
            site: s.id.clone(),
            kind: "collection_chair".into(),
            capacity_per_day: 0,
            weekday_capacity: weekdays(1, 0),
            outages: Vec::new(),
        });
        resources.push(Resource {
            id: format!("{}/aspiration_room", s.id),
            site: s.id.clone(),
            kind: "aspiration_room".into(),
            capacity_per_day: 0,
            // Bone-marrow aspiration lists on Tuesdays and Thursdays.
            weekday_capacity: Some(vec![0, 1, 0, 1, 0, 0, 0]),
            outages: Vec::new(),
        });
    }
    Instance {
        format: FORMAT.to_string(),
        name: params.name.clone(),
        start_date: params.start_date.clone(),
        horizon_days: params.horizon_days.unwrap_or(YEAR_DAYS + TAIL_DAYS),
        lateness_weight: 5,
        unplanned_penalty: 1000,
        sites,
        resources,
        products,
        orders,
        service_level: None,
    }
}
