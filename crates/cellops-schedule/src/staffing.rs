//! Staffing check of the schedule: which planned stages need a qualified person, for which
//! GMP action, at which site and over which dates.
//!
//! A stage declares its actions in the instance (`staffing`: qualification-matrix keys,
//! `qualification:<id>`, or `recipe` for every qualification the product's recipe declares
//! on its operator and sampling steps). [`needs`] lists, for every booked stage that
//! overlaps a period, one [`StaffingNeed`] per action; whether someone is qualified over the
//! stage's dates is the training model's answer (the server joins the two, see
//! `routes/schedule.rs`), so this crate stays free of training data.

use crate::booking::BookingOut;
use crate::instance::StageSite;
use crate::network::{Day, Network};
use serde::Serialize;

/// The staffing keyword that stands for the recipe's declared qualifications.
pub const RECIPE: &str = "recipe";

/// One action a qualified person must do during a booked stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffingNeed {
    /// Booking id.
    pub booking: String,
    /// Product id.
    pub product: String,
    /// Stage name.
    pub stage: String,
    /// The site whose people do it (the booking's hospital or the CPC).
    pub site: String,
    /// First and last day of the stage.
    pub start_day: Day,
    pub end_day: Day,
    /// The same as dates, `YYYY-MM-DD`.
    pub start: String,
    pub end: String,
    /// The action: a matrix key or `qualification:<id>` (a `recipe` entry expanded).
    pub action: String,
    /// Why the action cannot be known (a `recipe` entry without a recipe).
    pub problem: Option<String>,
}

/// Every staffing need of `bookings` whose stages overlap days `from..=to`, in booking and
/// stage order. A `recipe` entry becomes one need per qualification `recipe_qualifications`
/// returns for the product (sorted, without duplicates); when it returns `None` the need
/// keeps the action `recipe` and says why in `problem`.
pub fn needs(
    network: &Network,
    bookings: &[BookingOut],
    from: Day,
    to: Day,
    recipe_qualifications: impl Fn(&str) -> Option<Vec<String>>,
) -> Vec<StaffingNeed> {
    let cpc = network.site_id(network.cpc).to_string();
    let mut out = Vec::new();
    for booking in bookings {
        let Some(product) = network
            .instance()
            .products
            .iter()
            .find(|p| p.id == booking.product)
        else {
            continue;
        };
        for planned in &booking.stages {
            if planned.end_day < from || planned.start_day > to {
                continue;
            }
            let Some(stage) = product.stages.iter().find(|s| s.name == planned.stage) else {
                continue;
            };
            let site = match stage.site {
                StageSite::Cpc => cpc.clone(),
                StageSite::Hospital => booking.hospital.clone(),
            };
            let need = |action: String, problem: Option<String>| StaffingNeed {
                booking: booking.id.clone(),
                product: booking.product.clone(),
                stage: planned.stage.clone(),
                site: site.clone(),
                start_day: planned.start_day,
                end_day: planned.end_day,
                start: planned.start.clone(),
                end: planned.end.clone(),
                action,
                problem,
            };
            for action in &stage.staffing {
                if action != RECIPE {
                    out.push(need(action.clone(), None));
                    continue;
                }
                match recipe_qualifications(&booking.product) {
                    Some(mut qualifications) => {
                        qualifications.sort();
                        qualifications.dedup();
                        out.extend(
                            qualifications
                                .into_iter()
                                .map(|q| need(format!("qualification:{q}"), None)),
                        );
                    }
                    None => out.push(need(
                        RECIPE.to_string(),
                        Some(format!(
                            "no recipe of {} declares the qualifications of its steps: register and approve one",
                            booking.product
                        )),
                    )),
                }
            }
        }
    }
    out
}

/// The answer for one need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffedNeed {
    #[serde(flatten)]
    pub need: StaffingNeed,
    /// The qualification the action requires at the site, once known.
    pub qualification: Option<String>,
    /// People of the site qualified over the whole stage.
    pub qualified_people: Vec<String>,
    /// Someone is.
    pub staffed: bool,
    /// People who hold or held the qualification but not over the whole stage, and why
    /// (expired before the stage ends, suspended, …).
    pub not_qualified: Vec<(String, String)>,
}

/// The staffing report of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffingReport {
    pub from: String,
    pub to: String,
    /// True when every need is staffed (also when there is none).
    pub all_staffed: bool,
    /// Needs nobody qualified can cover.
    pub gaps: usize,
    pub needs: Vec<StaffedNeed>,
}

/// What the training model says about one need: the qualification the action requires at
/// the need's site, the people qualified over the stage's dates, and those who are not but
/// were close (with why); or why the action cannot be checked.
pub type Answer = Result<(String, Vec<String>, Vec<(String, String)>), String>;

/// Joins needs with the training model's answers (`answer` is called once per need whose
/// action is known) into the report of the period `from..=to` (dates).
pub fn report(
    from: &str,
    to: &str,
    needs: Vec<StaffingNeed>,
    mut answer: impl FnMut(&StaffingNeed) -> Answer,
) -> StaffingReport {
    let needs: Vec<StaffedNeed> = needs
        .into_iter()
        .map(|mut need| {
            let result = match &need.problem {
                Some(p) => Err(p.clone()),
                None => answer(&need),
            };
            match result {
                Ok((qualification, qualified_people, not_qualified)) => StaffedNeed {
                    staffed: !qualified_people.is_empty(),
                    qualification: Some(qualification),
                    qualified_people,
                    not_qualified,
                    need,
                },
                Err(problem) => {
                    need.problem = Some(problem);
                    StaffedNeed {
                        need,
                        qualification: None,
                        qualified_people: Vec::new(),
                        staffed: false,
                        not_qualified: Vec::new(),
                    }
                }
            }
        })
        .collect();
    let gaps = needs.iter().filter(|n| !n.staffed).count();
    StaffingReport {
        from: from.to_string(),
        to: to.to_string(),
        all_staffed: gaps == 0,
        gaps,
        needs,
    }
}
