//! Custody steps: where in the flow a scan happens, and which unit status each step accepts.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::unit::UnitStatus;

/// A point in the flow at which a unit is scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustodyStep {
    /// Packing into a shipper and handing to the courier: the unit must be available on site;
    /// afterwards it is in transit.
    Ship,
    /// Unpacking at the receiving site: the unit must be in transit; afterwards it is available.
    Receive,
    /// Taking a unit into a processing step (isolator, culture device, formulation).
    Process,
    /// Putting a unit into storage (fridge, freezer, liquid nitrogen).
    Store,
    /// Issuing a unit from storage for administration.
    Issue,
}

impl CustodyStep {
    /// Every step.
    pub const ALL: [CustodyStep; 5] = [
        CustodyStep::Ship,
        CustodyStep::Receive,
        CustodyStep::Process,
        CustodyStep::Store,
        CustodyStep::Issue,
    ];

    /// The name used in events and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CustodyStep::Ship => "ship",
            CustodyStep::Receive => "receive",
            CustodyStep::Process => "process",
            CustodyStep::Store => "store",
            CustodyStep::Issue => "issue",
        }
    }

    /// The status a unit must have to be scanned at this step.
    pub fn required_status(self) -> UnitStatus {
        match self {
            CustodyStep::Receive => UnitStatus::InTransit,
            CustodyStep::Ship | CustodyStep::Process | CustodyStep::Store | CustodyStep::Issue => {
                UnitStatus::Available
            }
        }
    }

    /// The status a unit has after an accepted scan at this step.
    pub fn status_after(self) -> UnitStatus {
        match self {
            CustodyStep::Ship => UnitStatus::InTransit,
            CustodyStep::Receive
            | CustodyStep::Process
            | CustodyStep::Store
            | CustodyStep::Issue => UnitStatus::Available,
        }
    }
}

impl fmt::Display for CustodyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
