//! The cold-chain read model: storage occupancy, alarms, shippers, loggers, shipments,
//! excursions with their assessments, and the dose bank. Rebuilt from [`ColdEvent`]s by
//! [`ColdState::apply`], which is total.

use cellops_custody::{OrderId, SubjectId, UnitCode};
use cellops_domain::{Timestamp, UserId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::deviation::{Closure, Deviation, DeviationState, Investigation};
use crate::event::{
    AlarmKind, AssessmentDecision, BankDose, ColdEvent, ExcursionEpisode, ExcursionLimits,
    ExcursionSource, Reading, ShipmentCondition, StorageConfig,
};
use crate::ids::{ExcursionId, LoggerId, Position, ShipmentId, ShipperId, StorageId};

/// A unit in a position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stored {
    /// The unit.
    pub unit: UnitCode,
    /// Where.
    pub position: Position,
    /// The patient, none for donor material.
    pub patient: Option<SubjectId>,
    /// Expiry.
    pub expires_at: Timestamp,
    /// End of the validated storage time.
    pub storage_limit_at: Timestamp,
    /// Put away when.
    pub stored_at: Timestamp,
}

/// An alarm in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlarm {
    /// Why.
    pub kind: AlarmKind,
    /// When the condition began.
    pub since: Timestamp,
    /// When the alarm was raised.
    pub raised_at: Timestamp,
    /// Highest temperature seen so far, °C.
    pub temperature_c_max: Option<f64>,
    /// Acknowledgement (who, why).
    pub acknowledged: Option<(UserId, String)>,
}

/// One freezer or dewar and its probe state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageUnit {
    /// Its configuration.
    pub config: StorageConfig,
    /// The latest reading.
    pub last_reading: Option<Reading>,
    /// Since when the probe has been above the alarm threshold (not yet alarmed or alarmed).
    pub above_since: Option<Timestamp>,
    /// The alarm in progress.
    pub alarm: Option<ActiveAlarm>,
    /// Alarms raised so far.
    pub alarms_total: u32,
}

/// A qualified dry shipper.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShipperAsset {
    /// Id.
    pub shipper: ShipperId,
    /// Make and model.
    pub model: String,
    /// Qualification report.
    pub qualification_report: String,
    /// Qualification expiry.
    pub qualification_expires_at: Timestamp,
    /// Validated hold from a full charge, hours.
    pub validated_hold_hours: f64,
    /// The site that owns it.
    pub site: cellops_domain::SiteId,
    /// Charge log (ascending).
    pub charges: Vec<Timestamp>,
    /// The shipment using the current charge, if any.
    pub charge_used_by: Option<ShipmentId>,
}

/// A registered logger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggerAsset {
    /// Serial.
    pub logger: LoggerId,
    /// Calibration certificate.
    pub calibration_certificate: String,
    /// Calibration due.
    pub calibration_due: Timestamp,
    /// Interval, seconds.
    pub interval_seconds: u32,
}

/// Where a shipment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    /// Packed, not yet with the courier.
    Packed,
    /// With the courier.
    Dispatched,
    /// Received at the destination.
    Received,
}

/// A shipment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shipment {
    /// Id.
    pub shipment: ShipmentId,
    /// Units.
    pub units: Vec<UnitCode>,
    /// Shipper.
    pub shipper: ShipperId,
    /// Logger.
    pub logger: LoggerId,
    /// From.
    pub from_site: cellops_domain::SiteId,
    /// To.
    pub to_site: cellops_domain::SiteId,
    /// Limits.
    pub limits: ExcursionLimits,
    /// Planned transit, hours.
    pub transit_hours: f64,
    /// Status.
    pub status: ShipmentStatus,
    /// Packed at.
    pub packed_at: Timestamp,
    /// Dispatched at.
    pub dispatched_at: Option<Timestamp>,
    /// Logger file hash, once uploaded.
    pub logger_file_sha256: Option<String>,
    /// Logger samples, once uploaded.
    pub samples: usize,
    /// First and last logger sample, once uploaded.
    pub first_sample_at: Option<Timestamp>,
    /// Last logger sample, once uploaded.
    pub last_sample_at: Option<Timestamp>,
    /// Warnings from the logger import.
    pub warnings: Vec<String>,
    /// Receipt.
    pub received: Option<(ShipmentCondition, UserId, Timestamp)>,
}

/// QA's assessment of an excursion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// Decision.
    pub decision: AssessmentDecision,
    /// Why.
    pub justification: String,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
    /// The ledger record of the assessment (the one to e-sign).
    pub record_seq: u64,
    /// The e-signature (signer, when), once given.
    pub signed: Option<(UserId, Timestamp)>,
    /// The ledger record of that e-signature.
    pub signature_seq: Option<u64>,
}

/// An excursion and its assessment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Excursion {
    /// Where.
    pub source: ExcursionSource,
    /// The episode.
    pub episode: ExcursionEpisode,
    /// The units affected.
    pub units: Vec<UnitCode>,
    /// Latest assessment.
    pub assessment: Option<Assessment>,
    /// The deviation it opened.
    pub deviation: Deviation,
}

impl Excursion {
    /// The decision in force: the decision the deviation was closed on (an e-signed
    /// assessment), else none.
    pub fn signed_decision(&self) -> Option<AssessmentDecision> {
        self.deviation.closed.as_ref().map(|c| c.decision)
    }
}

/// A banked lot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lot {
    /// The lot (formulated parent unit).
    pub lot: UnitCode,
    /// Doses.
    pub doses: Vec<BankDose>,
    /// Donor HLA typing.
    pub hla: BTreeSet<String>,
    /// Bank site.
    pub site: cellops_domain::SiteId,
    /// Registered at.
    pub registered_at: Timestamp,
}

/// A dose allocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    /// The dose.
    pub dose: UnitCode,
    /// Its lot.
    pub lot: UnitCode,
    /// The order.
    pub order: OrderId,
    /// The recipient.
    pub patient: SubjectId,
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
    /// Cancellation (reason, when), if withdrawn.
    pub cancelled: Option<(String, Timestamp)>,
}

/// The whole cold-chain state.
#[derive(Debug, Clone, Default)]
pub struct ColdState {
    pub(crate) storages: BTreeMap<StorageId, StorageUnit>,
    pub(crate) by_position: BTreeMap<Position, UnitCode>,
    pub(crate) stored: BTreeMap<UnitCode, Stored>,
    pub(crate) shippers: BTreeMap<ShipperId, ShipperAsset>,
    pub(crate) loggers: BTreeMap<LoggerId, LoggerAsset>,
    pub(crate) shipments: BTreeMap<ShipmentId, Shipment>,
    pub(crate) excursions: BTreeMap<ExcursionId, Excursion>,
    pub(crate) excursions_by_unit: BTreeMap<UnitCode, Vec<ExcursionId>>,
    pub(crate) assessment_seqs: BTreeMap<u64, ExcursionId>,
    pub(crate) lots: BTreeMap<UnitCode, Lot>,
    pub(crate) lot_of_dose: BTreeMap<UnitCode, UnitCode>,
    pub(crate) allocations: Vec<Allocation>,
    pub(crate) storage_excursions: BTreeMap<StorageId, u32>,
}

impl ColdState {
    /// A freezer or dewar.
    pub fn storage(&self, id: &StorageId) -> Option<&StorageUnit> {
        self.storages.get(id)
    }
    /// Every freezer and dewar.
    pub fn storages(&self) -> impl Iterator<Item = &StorageUnit> {
        self.storages.values()
    }
    /// Where a unit is stored, if it is.
    pub fn stored(&self, unit: &UnitCode) -> Option<&Stored> {
        self.stored.get(unit)
    }
    /// Every stored unit.
    pub fn stored_units(&self) -> impl Iterator<Item = &Stored> {
        self.stored.values()
    }
    /// The unit in a position.
    pub fn at_position(&self, position: &Position) -> Option<&UnitCode> {
        self.by_position.get(position)
    }
    /// A shipper.
    pub fn shipper(&self, id: &ShipperId) -> Option<&ShipperAsset> {
        self.shippers.get(id)
    }
    /// Every shipper.
    pub fn shippers(&self) -> impl Iterator<Item = &ShipperAsset> {
        self.shippers.values()
    }
    /// A logger.
    pub fn logger(&self, id: &LoggerId) -> Option<&LoggerAsset> {
        self.loggers.get(id)
    }
    /// A shipment.
    pub fn shipment(&self, id: &ShipmentId) -> Option<&Shipment> {
        self.shipments.get(id)
    }
    /// Every shipment.
    pub fn shipments(&self) -> impl Iterator<Item = &Shipment> {
        self.shipments.values()
    }
    /// An excursion.
    pub fn excursion(&self, id: &ExcursionId) -> Option<&Excursion> {
        self.excursions.get(id)
    }
    /// Every excursion.
    pub fn excursions(&self) -> impl Iterator<Item = (&ExcursionId, &Excursion)> {
        self.excursions.iter()
    }
    /// The excursions a unit went through.
    pub fn excursions_of(&self, unit: &UnitCode) -> Vec<(&ExcursionId, &Excursion)> {
        self.excursions_by_unit
            .get(unit)
            .into_iter()
            .flatten()
            .filter_map(|id| self.excursions.get_key_value(id))
            .collect()
    }
    /// A banked lot.
    pub fn lot(&self, lot: &UnitCode) -> Option<&Lot> {
        self.lots.get(lot)
    }
    /// Every banked lot.
    pub fn lots(&self) -> impl Iterator<Item = &Lot> {
        self.lots.values()
    }
    /// The lot a dose belongs to.
    pub fn lot_of(&self, dose: &UnitCode) -> Option<&Lot> {
        self.lot_of_dose.get(dose).and_then(|l| self.lots.get(l))
    }
    /// The active (not cancelled) allocation of a dose.
    pub fn allocation_of(&self, dose: &UnitCode) -> Option<&Allocation> {
        self.allocations
            .iter()
            .rev()
            .find(|a| &a.dose == dose && a.cancelled.is_none())
    }
    /// Every allocation, cancelled ones included, in ledger order.
    pub fn allocations(&self) -> &[Allocation] {
        &self.allocations
    }
    /// The excursion an assessment record (by ledger seq) is about.
    pub fn assessment_record(&self, seq: u64) -> Option<&ExcursionId> {
        self.assessment_seqs.get(&seq)
    }

    /// Records the e-signature (ledger record `signature_seq`) of the assessment in ledger
    /// record `assessed_seq`. Returns false when that record is not an assessment (nothing
    /// changes). The first signature counts.
    pub fn sign_assessment(
        &mut self,
        assessed_seq: u64,
        signature_seq: u64,
        signer: UserId,
        at: Timestamp,
    ) -> bool {
        let Some(id) = self.assessment_seqs.get(&assessed_seq) else {
            return false;
        };
        match self
            .excursions
            .get_mut(id)
            .and_then(|e| e.assessment.as_mut())
            .filter(|a| a.record_seq == assessed_seq)
        {
            Some(a) => {
                if a.signed.is_none() {
                    a.signed = Some((signer, at));
                    a.signature_seq = Some(signature_seq);
                }
                true
            }
            None => false,
        }
    }

    /// Applies one event recorded at ledger position `seq` (total: an event that does not
    /// fit is ignored; the decisions refuse such events before they are recorded).
    pub fn apply(&mut self, event: &ColdEvent, seq: u64) {
        match event {
            ColdEvent::StorageConfigured { config, .. } => {
                let previous = self.storages.remove(&config.storage);
                self.storages.insert(
                    config.storage.clone(),
                    StorageUnit {
                        config: config.clone(),
                        last_reading: previous.as_ref().and_then(|p| p.last_reading),
                        above_since: previous.as_ref().and_then(|p| p.above_since),
                        alarm: previous.as_ref().and_then(|p| p.alarm.clone()),
                        alarms_total: previous.map_or(0, |p| p.alarms_total),
                    },
                );
            }
            ColdEvent::PutAway {
                unit,
                position,
                patient,
                expires_at,
                storage_limit_at,
                at,
                ..
            } => {
                self.by_position.insert(position.clone(), *unit);
                self.stored.insert(
                    *unit,
                    Stored {
                        unit: *unit,
                        position: position.clone(),
                        patient: patient.clone(),
                        expires_at: *expires_at,
                        storage_limit_at: *storage_limit_at,
                        stored_at: *at,
                    },
                );
            }
            ColdEvent::Retrieved { unit, position, .. } => {
                if self.by_position.get(position) == Some(unit) {
                    self.by_position.remove(position);
                }
                self.stored.remove(unit);
            }
            ColdEvent::StorageScanRefused { .. } => {}
            ColdEvent::TemperatureRecorded { storage, readings } => {
                self.apply_readings(storage, readings)
            }
            ColdEvent::AlarmRaised {
                storage,
                kind,
                temperature_c,
                since,
                at,
            } => {
                if let Some(s) = self.storages.get_mut(storage) {
                    s.alarm = Some(ActiveAlarm {
                        kind: *kind,
                        since: *since,
                        raised_at: *at,
                        temperature_c_max: *temperature_c,
                        acknowledged: None,
                    });
                    s.alarms_total += 1;
                }
            }
            ColdEvent::AlarmCleared { storage, .. } => {
                if let Some(s) = self.storages.get_mut(storage) {
                    s.alarm = None;
                }
            }
            ColdEvent::AlarmAcknowledged {
                storage,
                reason,
                by,
                ..
            } => {
                if let Some(alarm) = self
                    .storages
                    .get_mut(storage)
                    .and_then(|s| s.alarm.as_mut())
                {
                    alarm.acknowledged = Some((by.clone(), reason.clone()));
                }
            }
            ColdEvent::ShipperQualified {
                shipper,
                model,
                qualification_report,
                qualification_expires_at,
                validated_hold_hours,
                site,
                ..
            } => {
                let charges = self
                    .shippers
                    .get(shipper)
                    .map(|s| s.charges.clone())
                    .unwrap_or_default();
                self.shippers.insert(
                    shipper.clone(),
                    ShipperAsset {
                        shipper: shipper.clone(),
                        model: model.clone(),
                        qualification_report: qualification_report.clone(),
                        qualification_expires_at: *qualification_expires_at,
                        validated_hold_hours: *validated_hold_hours,
                        site: site.clone(),
                        charges,
                        charge_used_by: None,
                    },
                );
            }
            ColdEvent::ShipperCharged { shipper, at, .. } => {
                if let Some(s) = self.shippers.get_mut(shipper) {
                    s.charges.push(*at);
                    s.charge_used_by = None;
                }
            }
            ColdEvent::LoggerRegistered {
                logger,
                calibration_certificate,
                calibration_due,
                interval_seconds,
                ..
            } => {
                self.loggers.insert(
                    logger.clone(),
                    LoggerAsset {
                        logger: logger.clone(),
                        calibration_certificate: calibration_certificate.clone(),
                        calibration_due: *calibration_due,
                        interval_seconds: *interval_seconds,
                    },
                );
            }
            ColdEvent::ShipmentPacked {
                shipment,
                units,
                shipper,
                logger,
                from_site,
                to_site,
                transit_hours,
                limits,
                at,
                ..
            } => {
                if let Some(s) = self.shippers.get_mut(shipper) {
                    s.charge_used_by = Some(shipment.clone());
                }
                self.shipments.insert(
                    shipment.clone(),
                    Shipment {
                        shipment: shipment.clone(),
                        units: units.clone(),
                        shipper: shipper.clone(),
                        logger: logger.clone(),
                        from_site: from_site.clone(),
                        to_site: to_site.clone(),
                        limits: *limits,
                        transit_hours: *transit_hours,
                        status: ShipmentStatus::Packed,
                        packed_at: *at,
                        dispatched_at: None,
                        logger_file_sha256: None,
                        samples: 0,
                        first_sample_at: None,
                        last_sample_at: None,
                        warnings: Vec::new(),
                        received: None,
                    },
                );
            }
            ColdEvent::ShipmentDispatched { shipment, at, .. } => {
                if let Some(s) = self.shipments.get_mut(shipment) {
                    s.status = ShipmentStatus::Dispatched;
                    s.dispatched_at = Some(*at);
                }
            }
            ColdEvent::LoggerUploaded {
                shipment,
                file_sha256,
                samples,
                warnings,
                excursions,
                ..
            } => {
                let Some(s) = self.shipments.get_mut(shipment) else {
                    return;
                };
                s.logger_file_sha256 = Some(file_sha256.clone());
                s.samples = samples.len();
                s.first_sample_at = samples.first().map(|r| r.at);
                s.last_sample_at = samples.last().map(|r| r.at);
                s.warnings = warnings.clone();
                let units = s.units.clone();
                for episode in excursions {
                    self.open_excursion(
                        ExcursionSource::Shipment(shipment.clone()),
                        episode.clone(),
                        units.clone(),
                    );
                }
            }
            ColdEvent::ShipmentReceived {
                shipment,
                condition,
                by,
                at,
            } => {
                if let Some(s) = self.shipments.get_mut(shipment) {
                    s.status = ShipmentStatus::Received;
                    s.received = Some((condition.clone(), by.clone(), *at));
                }
            }
            ColdEvent::ExcursionOpened {
                source,
                episode,
                units,
            } => {
                if let ExcursionSource::Storage(id) = source {
                    *self.storage_excursions.entry(id.clone()).or_default() += 1;
                }
                self.open_excursion(source.clone(), episode.clone(), units.clone())
            }
            ColdEvent::ExcursionAssessed {
                excursion,
                decision,
                justification,
                by,
                at,
            } => {
                if let Some(e) = self
                    .excursions
                    .get_mut(excursion)
                    .filter(|e| e.deviation.state != DeviationState::Closed)
                {
                    e.deviation.state = DeviationState::Assessed;
                    e.assessment = Some(Assessment {
                        decision: *decision,
                        justification: justification.clone(),
                        by: by.clone(),
                        at: *at,
                        record_seq: seq,
                        signed: None,
                        signature_seq: None,
                    });
                    self.assessment_seqs.insert(seq, excursion.clone());
                }
            }
            ColdEvent::DeviationOpened { excursion, at } => {
                if let Some(e) = self.excursions.get_mut(excursion) {
                    e.deviation.opened_at = Some(*at);
                }
            }
            ColdEvent::DeviationInvestigated {
                excursion,
                findings,
                by,
                at,
            } => {
                if let Some(e) = self.excursions.get_mut(excursion) {
                    if e.deviation.state == DeviationState::Open {
                        e.deviation.state = DeviationState::Investigating;
                    }
                    e.deviation.investigation = Some(Investigation {
                        findings: findings.clone(),
                        by: by.clone(),
                        at: *at,
                    });
                }
            }
            ColdEvent::DeviationClosed {
                excursion,
                decision,
                assessment_seq,
                signature_seq,
                by,
                at,
            } => {
                if let Some(e) = self.excursions.get_mut(excursion) {
                    e.deviation.state = DeviationState::Closed;
                    e.deviation.closed = Some(Closure {
                        decision: *decision,
                        assessment_seq: *assessment_seq,
                        signature_seq: *signature_seq,
                        by: by.clone(),
                        at: *at,
                    });
                }
            }
            ColdEvent::LotRegistered {
                lot,
                doses,
                hla,
                site,
                at,
                ..
            } => {
                for d in doses {
                    self.lot_of_dose.insert(d.code, *lot);
                }
                self.lots.insert(
                    *lot,
                    Lot {
                        lot: *lot,
                        doses: doses.clone(),
                        hla: hla.iter().cloned().collect(),
                        site: site.clone(),
                        registered_at: *at,
                    },
                );
            }
            ColdEvent::DoseAllocated {
                dose,
                lot,
                order,
                patient,
                by,
                at,
            } => self.allocations.push(Allocation {
                dose: *dose,
                lot: *lot,
                order: order.clone(),
                patient: patient.clone(),
                by: by.clone(),
                at: *at,
                cancelled: None,
            }),
            ColdEvent::AllocationCancelled {
                dose,
                order,
                reason,
                at,
                ..
            } => {
                if let Some(a) = self
                    .allocations
                    .iter_mut()
                    .rev()
                    .find(|a| &a.dose == dose && &a.order == order && a.cancelled.is_none())
                {
                    a.cancelled = Some((reason.clone(), *at));
                }
            }
        }
    }

    fn open_excursion(
        &mut self,
        source: ExcursionSource,
        episode: ExcursionEpisode,
        units: Vec<UnitCode>,
    ) {
        for u in &units {
            self.excursions_by_unit
                .entry(*u)
                .or_default()
                .push(episode.excursion.clone());
        }
        self.excursions.insert(
            episode.excursion.clone(),
            Excursion {
                source,
                episode,
                units,
                assessment: None,
                deviation: Deviation::new(),
            },
        );
    }

    fn apply_readings(&mut self, storage: &StorageId, readings: &[Reading]) {
        let Some(s) = self.storages.get_mut(storage) else {
            return;
        };
        for r in readings {
            if r.temperature_c > s.config.rule.alarm_above_c {
                s.above_since.get_or_insert(r.at);
                if let Some(a) = s.alarm.as_mut() {
                    let max = a.temperature_c_max.unwrap_or(r.temperature_c);
                    a.temperature_c_max = Some(max.max(r.temperature_c));
                }
            } else {
                s.above_since = None;
            }
            s.last_reading = Some(*r);
        }
    }

    /// Checks the cross-references; used by tests after every applied event.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (position, unit) in &self.by_position {
            match self.stored.get(unit) {
                Some(s) if &s.position == position => {}
                _ => {
                    return Err(format!(
                        "{position} holds {unit} but the unit is not stored there"
                    ));
                }
            }
        }
        if self.by_position.len() != self.stored.len() {
            return Err(format!(
                "{} positions occupied but {} units stored",
                self.by_position.len(),
                self.stored.len()
            ));
        }
        Ok(())
    }
}
