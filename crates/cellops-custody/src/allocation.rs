//! DIN allocation (item 2): a per-(FIN, nominal year) sequence that never hands out a number
//! twice. Cross-process uniqueness comes from the ledger's single chain: `decide` is
//! deterministic given the state, and the ledger serialises appends.

use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_isbt::{DIN_SEQUENCE_MAX, Din, Fin};
use std::collections::{BTreeMap, HashSet};

use crate::error::CustodyError;
use crate::event::Event;
use crate::state::CustodyState;

/// The first sequence number handed out in each (FIN, year); 000000 is never used.
pub const DIN_SEQUENCE_FIRST: u32 = 1;
/// Most DINs one command may allocate.
pub const ALLOCATION_COUNT_MAX: u32 = 1000;
const _: () = assert!(DIN_SEQUENCE_FIRST <= DIN_SEQUENCE_MAX);

/// Allocation state per (FIN, nominal year), rebuilt from `din.allocated` events.
#[derive(Debug, Clone, Default)]
pub struct DinAllocator {
    next_sequence: BTreeMap<(Fin, u8), u32>,
    allocated: HashSet<Din>,
    duplicates: Vec<Din>,
}

impl DinAllocator {
    /// The sequence number the next allocation for (`fin`, `nominal_year`) will get, or
    /// `None` when the year's sequence is used up.
    pub fn next_sequence(&self, fin: Fin, nominal_year: u8) -> Option<u32> {
        let next = self
            .next_sequence
            .get(&(fin, nominal_year))
            .copied()
            .unwrap_or(DIN_SEQUENCE_FIRST);
        (next <= DIN_SEQUENCE_MAX).then_some(next)
    }

    /// True when `din` was allocated.
    pub fn is_allocated(&self, din: &Din) -> bool {
        self.allocated.contains(din)
    }

    /// How many DINs were allocated, over all facilities and years.
    pub fn allocated_count(&self) -> usize {
        self.allocated.len()
    }

    pub(crate) fn apply(&mut self, din: Din) {
        if !self.allocated.insert(din) {
            self.duplicates.push(din);
        }
        let key = (din.fin(), din.nominal_year());
        let next = self.next_sequence.entry(key).or_insert(DIN_SEQUENCE_FIRST);
        *next = (*next).max(din.sequence().saturating_add(1));
    }

    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        if let Some(din) = self.duplicates.first() {
            return Err(format!("DIN {din} was allocated more than once"));
        }
        for din in &self.allocated {
            let next = self
                .next_sequence
                .get(&(din.fin(), din.nominal_year()))
                .copied()
                .unwrap_or(DIN_SEQUENCE_FIRST);
            if din.sequence() >= next {
                return Err(format!(
                    "DIN {din} is allocated but the next sequence is {next}"
                ));
            }
        }
        Ok(())
    }
}

/// Ask for `count` new DINs for `fin` at `site`, at time `at` (the nominal year is `at`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocateDins {
    /// The asking site; its configured FIN must equal `fin`.
    pub site: SiteId,
    /// The facility the DINs belong to.
    pub fin: Fin,
    /// How many (1–[`ALLOCATION_COUNT_MAX`]).
    pub count: u32,
    /// Who asks.
    pub by: UserId,
    /// When (UTC); its year gives the nominal year.
    pub at: Timestamp,
}

/// The last two digits of `at`'s UTC year: the DIN nominal year.
pub fn nominal_year_of(at: Timestamp) -> u8 {
    let text = at.to_string();
    // Cannot fail: the canonical form always starts with a 4-digit year (1970–9999).
    let year: u16 = text[..4]
        .parse()
        .expect("canonical timestamp starts with a 4-digit year");
    u8::try_from(year % 100).expect("a value below 100 fits in u8")
}

/// Decides the `din.allocated` events for `command`: consecutive next sequence numbers,
/// never one already handed out. Refuses a FIN other than the site's configured FIN, an
/// unconfigured site, a count out of range, and sequence exhaustion (nothing is allocated then).
pub fn decide_allocate_dins(
    state: &CustodyState,
    command: &AllocateDins,
) -> Result<Vec<Event>, CustodyError> {
    let configured =
        state
            .facility_fin(&command.site)
            .ok_or_else(|| CustodyError::SiteNotConfigured {
                site: command.site.clone(),
            })?;
    if configured != command.fin {
        return Err(CustodyError::FinNotSiteFin {
            site: command.site.clone(),
            requested: command.fin.to_string(),
            configured: configured.to_string(),
        });
    }
    if command.count == 0 || command.count > ALLOCATION_COUNT_MAX {
        return Err(CustodyError::AllocationCount {
            count: command.count,
            max: ALLOCATION_COUNT_MAX,
        });
    }
    let nominal_year = nominal_year_of(command.at);
    let exhausted = || CustodyError::DinSequenceExhausted {
        fin: command.fin.to_string(),
        nominal_year,
        max: DIN_SEQUENCE_MAX,
    };
    let first = state
        .allocator()
        .next_sequence(command.fin, nominal_year)
        .ok_or_else(exhausted)?;
    let last = first + (command.count - 1);
    if last > DIN_SEQUENCE_MAX {
        return Err(exhausted());
    }
    (first..=last)
        .map(|sequence| {
            let din = Din::new(command.fin, nominal_year, sequence).map_err(|_| exhausted())?;
            debug_assert!(!state.allocator().is_allocated(&din));
            Ok(Event::DinAllocated {
                din,
                fin: command.fin,
                nominal_year,
                sequence,
                site: command.site.clone(),
                by: command.by.clone(),
                at: command.at,
            })
        })
        .collect()
}
