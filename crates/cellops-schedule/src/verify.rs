//! Checks a complete set of slots (from any solver) against the network and returns its
//! objective: how `cellops bench schedule` confirms that CP-SAT's plan obeys the same rules
//! and costs what CP-SAT says.

use crate::network::{Day, Network};
use crate::plan::{Slot, order_cost};

/// Checks `plans[i]` (all stages, or empty = unplanned) for every order `i` of `net`:
/// earliest day, durations, gaps and hold limits, horizon, latest day and capacity on every
/// day. Returns the objective, or the first violation in words.
pub fn check(net: &Network, plans: &[Vec<Slot>]) -> Result<i64, String> {
    if plans.len() != net.orders.len() {
        return Err(format!(
            "{} plans for {} orders",
            plans.len(),
            net.orders.len()
        ));
    }
    let mut used: Vec<Vec<u32>> = net.capacity.iter().map(|c| vec![0; c.len()]).collect();
    let mut cost = 0;
    for (o, slots) in plans.iter().enumerate() {
        let order = &net.orders[o];
        cost += order_cost(net, o, slots);
        if slots.is_empty() {
            continue;
        }
        let route = net.order_route(o);
        if slots.len() != route.stages.len() {
            return Err(format!(
                "order {}: {} slots for {} stages",
                order.id,
                slots.len(),
                route.stages.len()
            ));
        }
        if slots[0].start < order.earliest {
            return Err(format!(
                "order {}: starts on day {} before its earliest day {}",
                order.id, slots[0].start, order.earliest
            ));
        }
        for (k, (slot, st)) in slots.iter().zip(&route.stages).enumerate() {
            if slot.end != slot.start + st.duration {
                return Err(format!(
                    "order {} stage {}: lasts {} d, not {}",
                    order.id,
                    st.name,
                    slot.end - slot.start,
                    st.duration
                ));
            }
            if slot.end >= net.horizon {
                return Err(format!(
                    "order {} stage {}: ends after the horizon",
                    order.id, st.name
                ));
            }
            if k > 0 {
                let gap: Day = slot.start - slots[k - 1].end;
                if gap < st.gap_min || st.gap_max.is_some_and(|g| gap > g) {
                    return Err(format!(
                        "order {} stage {}: gap {gap} d outside {}..{:?}",
                        order.id, st.name, st.gap_min, st.gap_max
                    ));
                }
            }
            for &(r, off, days) in &st.uses {
                for d in slot.start + off..slot.start + off + days {
                    if d < 0 || d >= net.horizon {
                        return Err(format!(
                            "order {} stage {}: uses {} outside the horizon",
                            order.id,
                            st.name,
                            net.resource_id(r)
                        ));
                    }
                    used[r][d as usize] += 1;
                }
            }
        }
        if let Some(l) = order.latest
            && slots.last().is_some_and(|s| s.end > l)
        {
            return Err(format!(
                "order {}: infusion after its latest day {l}",
                order.id
            ));
        }
    }
    for (r, days) in used.iter().enumerate() {
        for (d, u) in days.iter().enumerate() {
            if *u > net.capacity[r][d] {
                return Err(format!(
                    "{} over capacity on day {d}: {u} > {}",
                    net.resource_id(r),
                    net.capacity[r][d]
                ));
            }
        }
    }
    Ok(cost)
}
