//! Conversions between OPC UA values and cellops values, in one place for server and client.

use opcua::types::{DateTime, Variant};
use time::OffsetDateTime;

/// 100 ns ticks between 1601-01-01 (OPC UA epoch) and 1970-01-01 (Unix epoch).
const UNIX_EPOCH_TICKS: i64 = 11_644_473_600 * 10_000_000;

/// An OPC UA `DateTime` for `at` (100 ns resolution).
pub fn to_ua_time(at: OffsetDateTime) -> DateTime {
    let ticks_since_unix = (at.unix_timestamp_nanos() / 100) as i64;
    DateTime::from(UNIX_EPOCH_TICKS + ticks_since_unix)
}

/// The instant an OPC UA `DateTime` names; `None` when it is out of range.
pub fn from_ua_time(at: &DateTime) -> Option<OffsetDateTime> {
    let ticks = at.checked_ticks();
    let nanos = i128::from(ticks - UNIX_EPOCH_TICKS) * 100;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// A String[] variant.
pub fn strings(values: impl IntoIterator<Item = String>) -> Variant {
    Variant::from(values.into_iter().collect::<Vec<String>>())
}

/// A Double[] variant.
pub fn doubles(values: impl IntoIterator<Item = f64>) -> Variant {
    Variant::from(values.into_iter().collect::<Vec<f64>>())
}

/// The elements of an array variant (an empty array may arrive as `Empty` or null).
pub fn array_items(value: &Variant) -> Option<&[Variant]> {
    match value {
        Variant::Array(array) => Some(&array.values),
        Variant::Empty => Some(&[]),
        _ => None,
    }
}

/// The strings of a String[] variant; `None` if any element is not a string.
pub fn as_strings(value: &Variant) -> Option<Vec<String>> {
    array_items(value)?
        .iter()
        .map(|v| match v {
            Variant::String(s) => Some(s.as_ref().to_string()),
            _ => None,
        })
        .collect()
}

/// The numbers of a Double[] variant; `None` if any element is not a Double.
pub fn as_doubles(value: &Variant) -> Option<Vec<f64>> {
    array_items(value)?
        .iter()
        .map(|v| match v {
            Variant::Double(x) => Some(*x),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips_at_tick_resolution() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_700).unwrap();
        assert_eq!(from_ua_time(&to_ua_time(at)), Some(at));
    }

    #[test]
    fn arrays_of_the_wrong_type_are_refused() {
        assert_eq!(as_doubles(&doubles([1.0, 2.5])), Some(vec![1.0, 2.5]));
        assert_eq!(as_strings(&doubles([1.0])), None);
        assert_eq!(as_doubles(&Variant::from(3.0)), None);
        assert_eq!(as_strings(&Variant::Empty), Some(vec![]));
    }
}
