//! Demo data: a logger trace with one temperature excursion, made by the dry-shipper model
//! of `cellops_twin::shipper` (no model is duplicated here).

use cellops_domain::Timestamp;
use cellops_twin::shipper::{Orientation, Shipper, TransitEvent, simulate};

/// Transit of the demo shipment, hours.
pub const DEMO_TRANSIT_HOURS: f64 = 12.0;
/// Logger interval of the demo trace, minutes.
pub const DEMO_INTERVAL_MIN: f64 = 5.0;

/// A generic-format logger CSV (`timestamp,temperature_c`, UTC) for a 12-hour shipment
/// starting at `start`, in which an old, weak shipper is turned upside down after 6 h: its
/// LN2 runs out and the product warms above −150 °C (alarm) shortly before arrival but stays
/// below −120 °C (reject), so the trace holds exactly one excursion that QA may accept.
pub fn excursion_logger_csv(start: Timestamp) -> String {
    let shipper = Shipper {
        hold_nominal_h: cellops_twin::shipper::HOLD_NOMINAL_H,
        unit_factor: 0.6,
        age_factor: 0.5,
        logger_fitted: true,
    };
    let events = [TransitEvent::Orientation {
        at_h: 6.0,
        orientation: Orientation::Inverted,
    }];
    // Cannot fail: every parameter above is positive and the interval is 5 min.
    let trace = simulate(&shipper, &events, DEMO_TRANSIT_HOURS, DEMO_INTERVAL_MIN)
        .expect("the demo shipment parameters are valid");
    let mut csv = String::from("timestamp,temperature_c\n");
    for s in &trace.samples {
        let at = start.plus_us((s.time_h * 3_600e6).round() as i64);
        csv.push_str(&format!("{at},{:.1}\n", s.product_c));
    }
    csv
}
