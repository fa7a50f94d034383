//! The validated, indexed network: what the planner works on.
//!
//! [`Network::new`] checks an [`Instance`] field by field (every problem is reported with its
//! JSON path and a fix) and precomputes, per (product, hospital), the concrete route: gaps,
//! hold limits, durations and the resource indices each stage occupies.

use std::collections::BTreeMap;

use crate::date;
use crate::error::{FieldError, ScheduleError};
use crate::instance::{
    DurationDistribution, FORMAT, Instance, SERVICE_LEVEL_DEFAULT, SiteKind, StageSite, Transit,
};

/// A day number, 0 = the instance's `start_date`.
pub type Day = i64;

/// Longest horizon accepted, days (about five years).
pub const HORIZON_DAYS_MAX: i64 = 2000;
/// Most units of one resource per day.
pub const CAPACITY_MAX: i64 = 10_000;
/// Most stages per product.
pub const STAGES_MAX: usize = 32;
/// Largest order weight.
pub const WEIGHT_MAX: i64 = 100;
/// Longest staffing action of a stage, in characters.
pub const STAFFING_ACTION_CHARS_MAX: usize = 120;

/// One concrete stage of an order's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStage {
    /// Stage name.
    pub name: String,
    /// Least days from the previous stage's end to this stage's start (transit included).
    pub gap_min: Day,
    /// Most days from the previous stage's end to this start; `None` = unlimited.
    pub gap_max: Option<Day>,
    /// Days from start to end.
    pub duration: Day,
    /// (resource index, offset, days) occupied relative to the start.
    pub uses: Vec<(usize, Day, Day)>,
}

/// The route of one product at one hospital.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Stages in order.
    pub stages: Vec<RouteStage>,
}

impl Route {
    /// Shortest possible time from the first start to the last end (no waiting).
    pub fn min_length(&self) -> Day {
        self.stages
            .iter()
            .enumerate()
            .map(|(k, s)| s.duration + if k > 0 { s.gap_min } else { 0 })
            .sum()
    }
}

/// A validated order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInfo {
    /// Order id.
    pub id: String,
    /// Product index.
    pub product: usize,
    /// Hospital site index.
    pub hospital: usize,
    /// First day of the first stage.
    pub earliest: Day,
    /// Wanted infusion day.
    pub due: Day,
    /// Hard latest infusion day.
    pub latest: Option<Day>,
    /// Urgency weight.
    pub weight: i64,
    /// Confirmed booking.
    pub confirmed: bool,
}

/// A validated network with its orders.
#[derive(Debug, Clone)]
pub struct Network {
    instance: Instance,
    start_epoch_day: i64,
    /// Day numbers `0..horizon` can be planned.
    pub horizon: Day,
    /// Per resource: units available per day, `horizon` entries.
    pub capacity: Vec<Vec<u32>>,
    /// Resource index by (site index, kind).
    resource_at: BTreeMap<(usize, String), usize>,
    /// Index of the CPC site.
    pub cpc: usize,
    site_index: BTreeMap<String, usize>,
    product_index: BTreeMap<String, usize>,
    /// Route of (product `p`, hospital site `h`) at `p * sites + h` (`None` for the CPC): a
    /// flat table because the search asks for an order's route at every step.
    routes: Vec<Option<Route>>,
    /// The orders, in file order.
    pub orders: Vec<OrderInfo>,
}

struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    fn fail(&mut self, field: String, problem: String, fix: &str) {
        self.errors.push(FieldError {
            field,
            problem,
            fix: fix.to_string(),
        });
    }

    fn range(&mut self, field: String, value: i64, lo: i64, hi: i64, fix: &str) -> bool {
        if value < lo || value > hi {
            let problem = if value < 0 && lo >= 0 {
                format!("is {value}, negative")
            } else {
                format!("is {value}, outside {lo}..={hi}")
            };
            self.fail(field, problem, fix);
            return false;
        }
        true
    }
}

/// Checks a stage's duration distribution: lengths ascending in 0..=365, probabilities
/// summing to 1, and the planned `duration_days` covering the service level.
fn check_distribution(
    c: &mut Check,
    sf: &str,
    duration_days: i64,
    dist: &DurationDistribution,
    level: f64,
) {
    let df = format!("{sf}.duration_distribution");
    if dist.days.is_empty() {
        c.fail(
            format!("{df}.days"),
            "is empty".into(),
            "give each stage length with its probability, or leave the distribution out",
        );
        return;
    }
    let mut ok = true;
    let mut previous = -1;
    for (k, d) in dist.days.iter().enumerate() {
        ok &= c.range(
            format!("{df}.days[{k}].days"),
            d.days,
            0,
            365,
            "give the stage length in whole days, 0 to 365",
        );
        if d.days <= previous {
            ok = false;
            c.fail(
                format!("{df}.days[{k}].days"),
                format!("{} is not after the length before it ({previous})", d.days),
                "list each length once, shortest first",
            );
        }
        previous = d.days;
        if !(0.0..=1.0).contains(&d.p) {
            ok = false;
            c.fail(
                format!("{df}.days[{k}].p"),
                format!("is {}", d.p),
                "give a probability from 0 to 1",
            );
        }
    }
    let total: f64 = dist.days.iter().map(|d| d.p).sum();
    if ok && (total - 1.0).abs() > 1e-6 {
        ok = false;
        c.fail(
            format!("{df}.days"),
            format!("probabilities sum to {total}"),
            "make the probabilities of all lengths sum to 1",
        );
    }
    let needed = dist.quantile(level);
    if ok && duration_days < needed {
        c.fail(
            format!("{sf}.duration_days"),
            format!(
                "is {duration_days}, which covers {:.0} % of the stage's lots; the service level {level} needs {needed}",
                dist.p_at_most(duration_days) * 100.0
            ),
            "raise duration_days to the service level's length, or lower service_level",
        );
    }
}

impl Network {
    /// Parses and validates instance JSON.
    pub fn from_json(text: &str) -> Result<Network, ScheduleError> {
        let instance: Instance =
            serde_json::from_str(text).map_err(|e| ScheduleError::Parse(e.to_string()))?;
        Network::new(instance)
    }

    /// Validates `instance`; every problem is reported with its field and fix.
    pub fn new(instance: Instance) -> Result<Network, ScheduleError> {
        let mut c = Check { errors: Vec::new() };
        let i = &instance;
        if i.format != FORMAT {
            c.fail(
                "format".into(),
                format!("is {:?}", i.format),
                "set \"format\": \"cellops-schedule/1\"",
            );
        }
        let start_epoch_day = date::parse_date(&i.start_date);
        if start_epoch_day.is_none() {
            c.fail(
                "start_date".into(),
                format!("{:?} is not a date", i.start_date),
                "write the date of day 0 as YYYY-MM-DD",
            );
        }
        c.range(
            "horizon_days".into(),
            i.horizon_days,
            1,
            HORIZON_DAYS_MAX,
            "plan at most 2000 days",
        );
        c.range(
            "lateness_weight".into(),
            i.lateness_weight,
            0,
            1000,
            "use a weight from 0 to 1000",
        );
        c.range(
            "unplanned_penalty".into(),
            i.unplanned_penalty,
            1,
            1_000_000,
            "use a penalty from 1 to 1e6",
        );
        let horizon = i.horizon_days.clamp(1, HORIZON_DAYS_MAX);
        let level = i.service_level.unwrap_or(SERVICE_LEVEL_DEFAULT);
        if !(0.5..=0.999).contains(&level) {
            c.fail(
                "service_level".into(),
                format!("is {level}"),
                "give the share of lots a stage's planned length must cover, 0.5 to 0.999",
            );
        }

        // Sites.
        let mut site_index = BTreeMap::new();
        let mut transit = Vec::new();
        for (k, s) in i.sites.iter().enumerate() {
            if site_index.insert(s.id.clone(), k).is_some() {
                c.fail(
                    format!("sites[{k}].id"),
                    format!("{:?} is used twice", s.id),
                    "give every site its own id",
                );
            }
            c.range(
                format!("sites[{k}].transit_days"),
                s.transit_days,
                0,
                60,
                "give the courier travel time in whole days, 0 to 60",
            );
            transit.push(s.transit_days.clamp(0, 60));
        }
        let cpcs: Vec<usize> = (0..i.sites.len())
            .filter(|&k| i.sites[k].kind == SiteKind::Cpc)
            .collect();
        if cpcs.len() != 1 {
            c.fail(
                "sites".into(),
                format!("has {} sites of kind \"cpc\"", cpcs.len()),
                "list exactly one cell-processing centre (kind \"cpc\")",
            );
        }
        let cpc = cpcs.first().copied().unwrap_or(0);
        let hospitals: Vec<usize> = (0..i.sites.len())
            .filter(|&k| i.sites[k].kind == SiteKind::Hospital)
            .collect();

        // Resources.
        let mut resource_at = BTreeMap::new();
        let mut capacity = Vec::new();
        let mut ids = BTreeMap::new();
        for (k, r) in i.resources.iter().enumerate() {
            if ids.insert(r.id.clone(), k).is_some() {
                c.fail(
                    format!("resources[{k}].id"),
                    format!("{:?} is used twice", r.id),
                    "give every resource its own id",
                );
            }
            let site = site_index.get(&r.site).copied();
            match site {
                None => c.fail(
                    format!("resources[{k}].site"),
                    format!("{:?} is not a site", r.site),
                    "use the id of a site listed in \"sites\"",
                ),
                Some(s) => {
                    if resource_at.insert((s, r.kind.clone()), k).is_some() {
                        c.fail(
                            format!("resources[{k}].kind"),
                            format!("site {} already has a {:?} resource", r.site, r.kind),
                            "pool units of one kind at one site into one resource with a larger capacity_per_day",
                        );
                    }
                }
            }
            c.range(
                format!("resources[{k}].capacity_per_day"),
                r.capacity_per_day,
                0,
                CAPACITY_MAX,
                "give the units available per day, 0 to 10000",
            );
            let mut week = [r.capacity_per_day.clamp(0, CAPACITY_MAX); 7];
            if let Some(w) = &r.weekday_capacity {
                if w.len() != 7 {
                    c.fail(
                        format!("resources[{k}].weekday_capacity"),
                        format!("has {} numbers", w.len()),
                        "give 7 numbers, Monday first",
                    );
                }
                for (d, v) in w.iter().enumerate().take(7) {
                    c.range(
                        format!("resources[{k}].weekday_capacity[{d}]"),
                        *v,
                        0,
                        CAPACITY_MAX,
                        "give the units available on that weekday, 0 to 10000",
                    );
                    week[d] = (*v).clamp(0, CAPACITY_MAX);
                }
            }
            let start = start_epoch_day.unwrap_or(0);
            let mut cap: Vec<u32> = (0..horizon)
                .map(|d| week[date::weekday(start + d)] as u32)
                .collect();
            for (o, out) in r.outages.iter().enumerate() {
                let f = format!("resources[{k}].outages[{o}]");
                if out.from_day > out.to_day {
                    c.fail(
                        format!("{f}.to_day"),
                        format!(
                            "{} is before from_day {}: an impossible window",
                            out.to_day, out.from_day
                        ),
                        "set to_day on or after from_day",
                    );
                }
                c.range(
                    format!("{f}.units"),
                    out.units,
                    0,
                    CAPACITY_MAX,
                    "give the units lost per day, 0 or more",
                );
                let lo = out.from_day.max(0);
                let hi = out.to_day.min(horizon - 1);
                for day in cap
                    .iter_mut()
                    .take((hi + 1).max(0) as usize)
                    .skip(lo as usize)
                {
                    *day = day.saturating_sub(out.units.clamp(0, CAPACITY_MAX) as u32);
                }
            }
            capacity.push(cap);
        }

        // Products and routes.
        let mut product_index = BTreeMap::new();
        let mut routes = BTreeMap::new();
        for (p, prod) in i.products.iter().enumerate() {
            let pf = format!("products[{p}]");
            if product_index.insert(prod.id.clone(), p).is_some() {
                c.fail(
                    format!("{pf}.id"),
                    format!("{:?} is used twice", prod.id),
                    "give every product its own id",
                );
            }
            for (name, v) in [("p_fail", prod.p_fail), ("p_oos", prod.p_oos)] {
                if !(0.0..1.0).contains(&v) {
                    c.fail(
                        format!("{pf}.{name}"),
                        format!("is {v}"),
                        "give a probability from 0 up to (not including) 1",
                    );
                }
            }
            if prod.stages.is_empty() || prod.stages.len() > STAGES_MAX {
                c.fail(
                    format!("{pf}.stages"),
                    format!("has {} stages", prod.stages.len()),
                    "give 1 to 32 stages; the last one ends on the infusion day",
                );
            }
            for (k, st) in prod.stages.iter().enumerate() {
                let sf = format!("{pf}.stages[{k}]");
                c.range(
                    format!("{sf}.duration_days"),
                    st.duration_days,
                    0,
                    365,
                    "give the stage length in whole days, 0 to 365",
                );
                c.range(
                    format!("{sf}.min_gap_days"),
                    st.min_gap_days,
                    0,
                    365,
                    "give the least wait in whole days, 0 or more",
                );
                if let Some(h) = st.hold_max_days {
                    c.range(
                        format!("{sf}.hold_max_days"),
                        h,
                        0,
                        HORIZON_DAYS_MAX,
                        "give the hold-time limit in whole days, 0 or more, or leave it out",
                    );
                }
                if k == 0
                    && (st.min_gap_days != 0
                        || st.hold_max_days.is_some()
                        || st.transit == Transit::Before)
                {
                    c.fail(
                        sf.to_string(),
                        "the first stage has a gap, hold limit or transit before it".into(),
                        "remove min_gap_days, hold_max_days and transit \"before\" from the first stage",
                    );
                }
                for (a, action) in st.staffing.iter().enumerate() {
                    let ok = !action.is_empty()
                        && action.len() <= STAFFING_ACTION_CHARS_MAX
                        && action.chars().all(|ch| {
                            ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.:".contains(ch)
                        });
                    if !ok {
                        c.fail(
                            format!("{sf}.staffing[{a}]"),
                            format!("{action:?} is not an action"),
                            "name a qualification-matrix action (lowercase letters, digits, '-', '_', '.'), qualification:<id>, or recipe",
                        );
                    }
                }
                if let Some(dist) = &st.duration_distribution {
                    check_distribution(&mut c, &sf, st.duration_days, dist, level);
                }
                for (u, us) in st.uses.iter().enumerate() {
                    let uf = format!("{sf}.uses[{u}]");
                    c.range(
                        format!("{uf}.days"),
                        us.days,
                        1,
                        365,
                        "occupy the resource for 1 to 365 days",
                    );
                    c.range(
                        format!("{uf}.offset_days"),
                        us.offset_days,
                        0,
                        365,
                        "start the use 0 or more days after the stage start",
                    );
                    let sites: Vec<usize> = match st.site {
                        StageSite::Cpc => vec![cpc],
                        StageSite::Hospital => hospitals.clone(),
                    };
                    for s in sites {
                        if !resource_at.contains_key(&(s, us.kind.clone())) {
                            c.fail(
                                format!("{uf}.kind"),
                                format!(
                                    "unknown resource: site {} has no {:?} resource",
                                    i.sites[s].id, us.kind
                                ),
                                "add a resource of this kind at that site, or correct the kind",
                            );
                        }
                    }
                }
            }
            if let Some(name) = &prod.oos_repeats
                && !prod.stages.iter().any(|st| &st.name == name)
            {
                c.fail(
                    format!("{pf}.oos_repeats"),
                    format!("{name:?} is not a stage of this product"),
                    "name the stage an out-of-specification result repeats (e.g. \"qc\"), or leave it out",
                );
            }
        }
        if c.errors.is_empty() {
            for (p, prod) in i.products.iter().enumerate() {
                for &h in &hospitals {
                    let t = transit[h];
                    let mut stages = Vec::new();
                    for (k, st) in prod.stages.iter().enumerate() {
                        let before = if st.transit == Transit::Before { t } else { 0 };
                        let during = if st.transit == Transit::During { t } else { 0 };
                        let gap_min = st.min_gap_days + before;
                        if let Some(hold) = st.hold_max_days
                            && hold < gap_min
                        {
                            c.fail(
                                format!("products[{p}].stages[{k}].hold_max_days"),
                                format!(
                                    "impossible window: the hold limit is {hold} d but at hospital {} the stage cannot start before {gap_min} d (min_gap_days {} + transit {before} d)",
                                    i.sites[h].id, st.min_gap_days
                                ),
                                "raise hold_max_days or shorten the hospital's transit_days",
                            );
                        }
                        let site = if st.site == StageSite::Cpc { cpc } else { h };
                        let uses = st
                            .uses
                            .iter()
                            .map(|u| (resource_at[&(site, u.kind.clone())], u.offset_days, u.days))
                            .collect();
                        stages.push(RouteStage {
                            name: st.name.clone(),
                            gap_min,
                            gap_max: st.hold_max_days,
                            duration: st.duration_days + during,
                            uses,
                        });
                    }
                    routes.insert((p, h), Route { stages });
                }
            }
        }

        // Orders.
        let mut orders = Vec::new();
        let mut order_ids = BTreeMap::new();
        for (k, o) in i.orders.iter().enumerate() {
            let of = format!("orders[{k}]");
            if order_ids.insert(o.id.clone(), k).is_some() {
                c.fail(
                    format!("{of}.id"),
                    format!("{:?} is used twice", o.id),
                    "give every order its own id",
                );
            }
            let product = product_index.get(&o.product).copied();
            if product.is_none() {
                c.fail(
                    format!("{of}.product"),
                    format!("{:?} is not a product", o.product),
                    "use the id of a product listed in \"products\"",
                );
            }
            let hospital = site_index
                .get(&o.hospital)
                .copied()
                .filter(|&s| i.sites[s].kind == SiteKind::Hospital);
            if hospital.is_none() {
                c.fail(
                    format!("{of}.hospital"),
                    format!("{:?} is not a hospital", o.hospital),
                    "use the id of a site of kind \"hospital\"",
                );
            }
            c.range(
                format!("{of}.earliest_day"),
                o.earliest_day,
                0,
                horizon - 1,
                "give a day inside the horizon",
            );
            if o.due_day < o.earliest_day {
                c.fail(
                    format!("{of}.due_day"),
                    format!(
                        "impossible window: due_day {} is before earliest_day {}",
                        o.due_day, o.earliest_day
                    ),
                    "set due_day on or after earliest_day",
                );
            }
            c.range(
                format!("{of}.weight"),
                o.weight,
                1,
                WEIGHT_MAX,
                "give an urgency weight from 1 to 100",
            );
            if let (Some(p), Some(h), Some(latest)) = (product, hospital, o.latest_day)
                && let Some(route) = routes.get(&(p, h))
            {
                let first = o.earliest_day + route.min_length();
                if latest < first {
                    c.fail(
                        format!("{of}.latest_day"),
                        format!(
                            "impossible window: latest_day {latest} is before the earliest possible infusion, day {first} (earliest_day {} + {} d shortest {} route)",
                            o.earliest_day,
                            route.min_length(),
                            o.product
                        ),
                        "move latest_day later or earliest_day earlier",
                    );
                }
            }
            orders.push(OrderInfo {
                id: o.id.clone(),
                product: product.unwrap_or(0),
                hospital: hospital.unwrap_or(0),
                earliest: o.earliest_day,
                due: o.due_day,
                latest: o.latest_day,
                weight: o.weight,
                confirmed: o.confirmed,
            });
        }
        if !c.errors.is_empty() {
            return Err(ScheduleError::Invalid(c.errors));
        }
        Ok(Network {
            start_epoch_day: start_epoch_day.unwrap_or(0),
            horizon,
            capacity,
            resource_at,
            cpc,
            routes: (0..i.products.len())
                .flat_map(|p| (0..i.sites.len()).map(move |h| (p, h)))
                .map(|key| routes.remove(&key))
                .collect(),
            site_index,
            product_index,
            orders,
            instance,
        })
    }

    /// The instance this network was built from.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The route of `product` at `hospital` (indices).
    pub fn route(&self, product: usize, hospital: usize) -> &Route {
        self.routes[product * self.instance.sites.len() + hospital]
            .as_ref()
            .expect("a route for every product at every hospital")
    }

    /// The route of an order.
    pub fn order_route(&self, order: usize) -> &Route {
        let o = &self.orders[order];
        self.route(o.product, o.hospital)
    }

    /// Site index by id.
    pub fn site(&self, id: &str) -> Option<usize> {
        self.site_index.get(id).copied()
    }

    /// Hospital site index by id (`None` for the CPC or an unknown id).
    pub fn hospital(&self, id: &str) -> Option<usize> {
        self.site(id)
            .filter(|&s| self.instance.sites[s].kind == SiteKind::Hospital)
    }

    /// Product index by id.
    pub fn product(&self, id: &str) -> Option<usize> {
        self.product_index.get(id).copied()
    }

    /// The probability that every stage of `product` ends within the length the plan
    /// reserves for it (a stage without a duration distribution always does).
    pub fn p_on_plan(&self, product: usize) -> f64 {
        self.instance.products[product]
            .stages
            .iter()
            .filter_map(|st| {
                st.duration_distribution
                    .as_ref()
                    .map(|d| d.p_at_most(st.duration_days))
            })
            .product()
    }

    /// The stage of `product` an out-of-specification result repeats: its `oos_repeats`,
    /// else the stage named `qc`; `None` when it has neither.
    pub fn oos_stage(&self, product: usize) -> Option<usize> {
        let prod = &self.instance.products[product];
        let name = prod.oos_repeats.as_deref().unwrap_or("qc");
        prod.stages.iter().position(|st| st.name == name)
    }

    /// Product id.
    pub fn product_id(&self, product: usize) -> &str {
        &self.instance.products[product].id
    }

    /// Site id.
    pub fn site_id(&self, site: usize) -> &str {
        &self.instance.sites[site].id
    }

    /// Resource id.
    pub fn resource_id(&self, resource: usize) -> &str {
        &self.instance.resources[resource].id
    }

    /// Resource kind and site id, for explanations.
    pub fn resource_label(&self, resource: usize) -> String {
        let r = &self.instance.resources[resource];
        format!("{} at {}", r.kind, r.site)
    }

    /// Resource index by id.
    pub fn resource_by_id(&self, id: &str) -> Option<usize> {
        self.instance.resources.iter().position(|r| r.id == id)
    }

    /// Resource index by site and kind.
    pub fn resource_at(&self, site: usize, kind: &str) -> Option<usize> {
        self.resource_at.get(&(site, kind.to_string())).copied()
    }

    /// Calendar date of a day.
    pub fn date_of(&self, day: Day) -> String {
        date::format_date(self.start_epoch_day + day)
    }

    /// Day of a calendar date (may be outside the horizon), `None` when not a date.
    pub fn day_of(&self, date_text: &str) -> Option<Day> {
        date::parse_date(date_text).map(|d| d - self.start_epoch_day)
    }

    /// Day of a count of days since 1970-01-01 (e.g. a clock reading divided by a day).
    pub fn day_from_epoch_day(&self, epoch_day: i64) -> Day {
        epoch_day - self.start_epoch_day
    }

    /// Lowers a resource's capacity by `units` on `from..=to` (a breakdown or outage).
    pub fn reduce_capacity(&mut self, resource: usize, from: Day, to: Day, units: u32) {
        let hi = to.min(self.horizon - 1);
        for d in from.max(0)..=hi {
            let c = &mut self.capacity[resource][d as usize];
            *c = c.saturating_sub(units);
        }
    }
}
