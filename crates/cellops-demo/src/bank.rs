//! The CPC's shared assets in the demo: the allogeneic dose bank (a healthy donor's lot made,
//! split into doses, released and stored) and the pool of dry shippers and loggers.

use crate::flow::{label_and_register, qa_release, qc_results, scan_text};
use crate::network::*;
use anyhow::{Context, bail};
use cellops_ledger::Backend;
use serde_json::json;
use std::collections::BTreeMap;

/// Shelf life of a banked lot and its doses in the vapour phase of liquid nitrogen, hours
/// (cryopreserved cell products keep for years at ≤ −150 °C; three years here, so a lot
/// made at the start of a simulated year still serves its last patients).
pub const LOT_SHELF_LIFE_HOURS: i64 = 24 * 365 * 3;

/// Doses split from one allogeneic lot (divisions `Aa`…).
pub const DOSES_PER_LOT: usize = 20;

/// The bank's lots and the free shippers.
#[derive(Debug, Default)]
pub struct Bank {
    /// Unallocated doses banked (a new lot is made when none is left).
    doses_free: usize,
    pub lots_made: u32,
    /// Position of each stored dose.
    positions: BTreeMap<String, String>,
    /// Free (shipper, logger) pairs; a shipment takes one and its receipt returns it.
    free: Vec<(String, String)>,
    in_use: BTreeMap<String, String>,
    shippers: u32,
}

impl Bank {
    pub fn ready(&self) -> bool {
        self.doses_free > 0
    }

    /// Makes `count` lots from healthy donors' apheresis, side by side: each the allogeneic
    /// recipe's batch to harvest, the lot split into doses, QC and QA release, the doses
    /// stored in the dewar and banked with the donor's HLA typing. The clock moves to the last
    /// harvest and on through QC (a week).
    pub async fn make_lots<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        count: usize,
    ) -> anyhow::Result<()> {
        let mut made = Vec::new();
        let mut last_harvest = net.now();
        for _ in 0..count {
            let donation = crate::flow::new_unit(
                net,
                OPERATOR,
                CPC,
                None,
                COLLECTED_CODE,
                24 * 2,
                "cpc-kyoto/receipt",
            )
            .await?;
            let batch = net.next_id("lot");
            net.post(
                "start the lot",
                OPERATOR,
                "/api/batches",
                json!({"site": CPC, "product": "allo-car-t-lot", "starting_unit": donation,
                       "batch": batch, "simulation": {"seed": u64::from(self.lots_made) + 101, "sample_period_s": 3600},
                       "harvest": {"product_code": PRODUCT_CODE, "shelf_life_hours": LOT_SHELF_LIFE_HOURS}}),
            )
            .await?;
            let in_process = crate::flow::seed_culture(net, &donation).await?;
            self.lots_made += 1;
            made.push((donation, in_process, batch));
        }
        // The lots' cultures run side by side: to completion at once in simulated time, a
        // slice each in turn in a live demo.
        let slice = net.culture_slice_hours();
        let mut running: Vec<&str> = made.iter().map(|(_, _, b)| b.as_str()).collect();
        while !running.is_empty() {
            let mut next: Option<cellops_domain::Timestamp> = None;
            let mut still = Vec::new();
            for batch in running {
                let r = crate::flow::culture(net, batch, slice).await?;
                let at = crate::flow::batch_time(&r)?;
                match r["stopped"].as_str() {
                    Some("completed") => last_harvest = last_harvest.max(at),
                    Some("time_reached") => {
                        next = Some(next.map_or(at, |n| n.min(at)));
                        still.push(batch);
                    }
                    _ => bail!("lot {batch} stopped {}: {r}", r["stopped"]),
                }
            }
            running = still;
            if let Some(at) = next {
                net.advance_to(at).await;
            }
        }
        net.advance_to(last_harvest).await;
        let mut lots = Vec::new();
        for (donation, _in_process, batch) in made {
            // The harvest made the lot in custody from the in-process unit.
            let lot = donation.replace(COLLECTED_CODE, PRODUCT_CODE);
            let din = lot.split_once('-').map_or("", |(d, _)| d).to_string();
            let doses: Vec<String> = (0..DOSES_PER_LOT)
                .map(|i| {
                    let first = char::from(b'A' + (i / 26) as u8);
                    let second = char::from(b'a' + (i % 26) as u8);
                    format!("{din}-{}{first}{second}", &PRODUCT_CODE[..6])
                })
                .collect();
            let children: Vec<_> = doses
                .iter()
                .map(|d| json!({"code": d, "expires_at": net.in_hours(LOT_SHELF_LIFE_HOURS)}))
                .collect();
            net.post(
                "split the lot into doses",
                OPERATOR,
                "/api/units/derive",
                json!({"operation": "split", "parents": [lot], "children": children,
                       "site": CPC, "location": "cpc-kyoto/fill-room"}),
            )
            .await?;
            label_and_register(net, &batch, "allo-car-t-lot", &[&lot]).await?;
            lots.push((batch, lot, doses));
        }
        net.advance_hours(24.0 * 7.0).await;
        for (batch, lot, doses) in lots {
            qc_results(net, &batch, "allo-car-t-lot", &[]).await?;
            qa_release(net, &batch, None).await?;
            for dose in &doses {
                let r = net
                    .get(
                        "next free position",
                        OPERATOR,
                        &format!("/api/storage/{DEWAR}/suggest"),
                    )
                    .await?;
                let position = r["position"]
                    .as_str()
                    .context("a free dewar position")?
                    .to_string();
                net.post(
                    "put the dose away",
                    OPERATOR,
                    "/api/storage/put-away",
                    json!({"site": CPC, "scanned_unit": scan_text(dose), "scanned_position": position}),
                )
                .await?;
                self.positions.insert(dose.clone(), position);
            }
            net.post(
                "bank the lot",
                OPERATOR,
                "/api/bank/lots",
                json!({"site": CPC, "lot": lot, "doses": doses, "hla": ["A*02:01", "B*07:02"]}),
            )
            .await?;
            self.doses_free += doses.len();
        }
        Ok(())
    }

    /// Takes an allocated dose out of the dewar for shipping (by scan, FEFO checked).
    pub async fn retrieve<B: Backend>(
        &mut self,
        net: &mut Network<B>,
        dose: &str,
    ) -> anyhow::Result<()> {
        let position = self
            .positions
            .remove(dose)
            .with_context(|| format!("dose {dose} is not in the demo's dewar"))?;
        self.doses_free = self.doses_free.saturating_sub(1);
        net.post(
            "retrieve the dose for shipping",
            OPERATOR,
            "/api/storage/retrieve",
            json!({"site": CPC, "scanned_unit": scan_text(dose), "scanned_position": position,
                   "purpose": "ship", "expected_unit": dose}),
        )
        .await?;
        Ok(())
    }

    /// A free qualified dry shipper and logger (a new pair is qualified when all travel).
    pub async fn take_shipper<B: Backend>(
        &mut self,
        net: &mut Network<B>,
    ) -> anyhow::Result<(String, String)> {
        let (shipper, logger) = match self.free.pop() {
            Some(pair) => pair,
            None => {
                self.shippers += 1;
                if self.shippers == 1 {
                    (SHIPPER.to_string(), LOGGER.to_string())
                } else {
                    let n = self.shippers;
                    let pair = (format!("ds-{n:02}"), format!("LG-{n:04}"));
                    net.post(
                        "qualify a dry shipper",
                        ADMIN,
                        "/api/shippers",
                        json!({"site": CPC, "shipper": pair.0, "model": "CX100",
                               "qualification_report": format!("QR-2026-{n:02}"),
                               "qualification_expires_at": net.in_hours(24 * 720),
                               "validated_hold_hours": 240.0}),
                    )
                    .await?;
                    net.post(
                        "register a logger",
                        ADMIN,
                        "/api/loggers",
                        json!({"site": CPC, "logger": pair.1, "calibration_certificate": format!("CAL-{n}"),
                               "calibration_due": net.in_hours(24 * 720), "interval_seconds": 300}),
                    )
                    .await?;
                    pair
                }
            }
        };
        self.in_use.insert(shipper.clone(), logger.clone());
        Ok((shipper, logger))
    }

    /// The shipment arrived: its shipper and logger go back to the pool.
    pub fn return_shipper(&mut self, shipper: &str) {
        if let Some(logger) = self.in_use.remove(shipper) {
            self.free.push((shipper.to_string(), logger));
        }
    }
}
