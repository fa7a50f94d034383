//! The demo network of cellops: patients of all three products driven vein to vein through
//! the real HTTP API (the same router `cellops serve` runs) in a simulated clock.
//!
//! - [`network`]: sites, people and their training, approved recipes, cold-chain assets.
//! - [`flow`]: one patient's therapy as steps, each the work of one site at one moment.
//! - [`bank`]: the allogeneic dose bank and the pool of dry shippers.
//! - [`run`]: a discrete-event loop that interleaves every patient's steps in time order,
//!   and the [`Summary`] per product.
//!
//! Used by `cellops demo --until done`, `cellops bench network` and the end-to-end tests.
//! Nothing here bypasses the API: every record comes from a handler, checked like any other.

pub mod bank;
pub mod client;
pub mod flow;
pub mod network;
pub mod training;

use anyhow::Context;
use cellops_domain::Timestamp;
use cellops_ledger::Backend;
use flow::{Patient, Product, Scenario};
use network::{DAY_US, HOSPITALS, Network};
use serde::Serialize;
use std::collections::BTreeMap;

/// How often the trainer looks for qualifications about to lapse, and how far ahead.
pub const TRAINING_EVERY_DAYS: u64 = 7;
pub const TRAINING_HORIZON_DAYS: u32 = 30;

/// The demo's patients: two of each product across both hospitals, one week apart, with
/// one failed batch, one temperature excursion, one release at risk and one refusal of an
/// unqualified operator, so every capability shows.
pub fn demo_plan(start: Timestamp) -> Vec<Patient> {
    let at = |day: u64| start.plus_us((day * DAY_US) as i64);
    let [kyoto, osaka] = HOSPITALS;
    vec![
        Patient::new(
            Product::PrimeCarT,
            kyoto,
            Scenario {
                release_at_risk: true,
                ..Scenario::default()
            },
            at(0),
        ),
        Patient::new(
            Product::BmMsc,
            osaka,
            Scenario {
                failed_batch: true,
                ..Scenario::default()
            },
            at(1),
        ),
        Patient::new(Product::AlloCarT, kyoto, Scenario::default(), at(2)),
        Patient::new(
            Product::PrimeCarT,
            osaka,
            Scenario {
                excursion: true,
                ..Scenario::default()
            },
            at(7),
        ),
        Patient::new(
            Product::BmMsc,
            kyoto,
            Scenario {
                unqualified_operator: true,
                ..Scenario::default()
            },
            at(8),
        ),
        Patient::new(Product::AlloCarT, osaka, Scenario::default(), at(9)),
    ]
}

/// `count` patients over `days`, products in turn (PRIME CAR-T, BM-MSC, allogeneic), both
/// hospitals in turn, arrivals evenly spread; every 25th autologous patient's first batch
/// fails and every 20th shipment has an excursion. No collection slots are booked (see
/// [`Scenario::unbooked`]).
pub fn year_plan(start: Timestamp, count: usize, days: u64) -> Vec<Patient> {
    let spacing_us = (days * DAY_US) / count.max(1) as u64;
    (0..count)
        .map(|i| {
            let product = Product::ALL[i % 3];
            let scenario = Scenario {
                failed_batch: product != Product::AlloCarT && i % 25 == 1,
                excursion: i % 20 == 3,
                unbooked: true,
                ..Scenario::default()
            };
            Patient::new(
                product,
                HOSPITALS[(i / 3) % 2],
                scenario,
                start.plus_us((i as u64 * spacing_us) as i64),
            )
        })
        .collect()
}

/// What happened to each product's patients.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ProductSummary {
    pub patients: usize,
    pub infused: usize,
    /// Batches started for these patients (failed ones included); banked lots for the
    /// allogeneic product.
    pub batches: usize,
    pub failed_batches: usize,
    pub refusals: usize,
    pub excursions: usize,
    pub vein_to_vein_days_mean: Option<f64>,
    pub vein_to_vein_days_max: Option<f64>,
}

/// The run's outcome.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub products: BTreeMap<&'static str, ProductSummary>,
    /// Qualifications renewed by the trainer during the run.
    pub requalified: usize,
    /// API calls made and ledger records written.
    pub api_calls: usize,
    pub records: u64,
    /// Simulated days from the first order to the last step.
    pub simulated_days: f64,
}

impl Summary {
    /// The summary as lines of text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (product, s) in &self.products {
            out.push_str(&format!(
                "{product:<12} patients {:>3}  infused {:>3}  batches {:>3}  failed {:>2}  refusals {:>2}  excursions {:>2}  vein-to-vein days mean {}  max {}\n",
                s.patients,
                s.infused,
                s.batches,
                s.failed_batches,
                s.refusals,
                s.excursions,
                s.vein_to_vein_days_mean
                    .map_or("-".to_string(), |d| format!("{d:.1}")),
                s.vein_to_vein_days_max
                    .map_or("-".to_string(), |d| format!("{d:.1}")),
            ));
        }
        out.push_str(&format!(
            "{} qualifications renewed; {} API calls, {} ledger records, {:.0} simulated days\n",
            self.requalified, self.api_calls, self.records, self.simulated_days
        ));
        out
    }
}

/// Runs every patient's flow to the end, steps in time order (the simulated clock jumps to
/// each step's due time). Banked lots for the allogeneic patients are made first. Returns
/// the summary; the first failing step stops the run with the patient, step and reply.
pub async fn run<B: Backend>(
    net: &mut Network<B>,
    mut patients: Vec<Patient>,
) -> anyhow::Result<Summary> {
    let first = net.now();
    let mut bank = bank::Bank::default();
    let mut requalified = training::requalify_expiring(net, TRAINING_HORIZON_DAYS).await?;
    let mut next_training = first.plus_us(TRAINING_EVERY_DAYS as i64 * DAY_US as i64);
    let allogeneic = patients
        .iter()
        .filter(|p| p.product == Product::AlloCarT)
        .count();
    if allogeneic > 0 {
        bank.make_lots(net, allogeneic.div_ceil(bank::DOSES_PER_LOT))
            .await?;
        // Patients arrive after the bank is stocked.
        let shift = net.now().unix_us() - first.unix_us();
        for p in &mut patients {
            p.due = p.due.plus_us(shift);
            p.ordered_at = p.due;
        }
    }
    while let Some(i) = patients
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.done())
        .min_by_key(|(i, p)| (p.due, *i))
        .map(|(i, _)| i)
    {
        while patients[i].due >= next_training {
            net.advance_to(next_training).await;
            requalified += training::requalify_expiring(net, TRAINING_HORIZON_DAYS).await?;
            next_training = next_training.plus_us(TRAINING_EVERY_DAYS as i64 * DAY_US as i64);
        }
        net.advance_to(patients[i].due).await;
        let p = &mut patients[i];
        p.advance(net, &mut bank).await.with_context(|| {
            format!(
                "patient {i} ({}, {}, order {:?})",
                p.product.as_str(),
                p.hospital.site,
                p.order
            )
        })?;
    }
    let mut summary = Summary {
        requalified,
        api_calls: net.client.latencies_us.len(),
        records: net.state().ledger.size(),
        simulated_days: (net.now().unix_us() - first.unix_us()) as f64 / DAY_US as f64,
        ..Summary::default()
    };
    for p in &patients {
        let s = summary.products.entry(p.product.as_str()).or_default();
        s.patients += 1;
        s.infused += usize::from(p.infused_at.is_some());
        s.failed_batches += p.failed_batches as usize;
        s.refusals += p.refusals as usize;
        s.excursions += p.excursions as usize;
        if p.product != Product::AlloCarT {
            s.batches += 1 + p.failed_batches as usize;
        }
    }
    if let Some(s) = summary.products.get_mut(Product::AlloCarT.as_str()) {
        s.batches = bank.lots_made as usize;
    }
    for product in Product::ALL {
        let days: Vec<f64> = patients
            .iter()
            .filter(|p| p.product == product)
            .filter_map(Patient::vein_to_vein_days)
            .collect();
        if let Some(s) = summary.products.get_mut(product.as_str())
            && !days.is_empty()
        {
            s.vein_to_vein_days_mean = Some(days.iter().sum::<f64>() / days.len() as f64);
            s.vein_to_vein_days_max = days.iter().copied().reduce(f64::max);
        }
    }
    Ok(summary)
}
