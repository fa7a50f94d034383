//! The JSON form of events: `type` and `version`, codes re-validated on read.

use crate::common::*;
use cellops_custody::*;

#[test]
fn events_carry_type_and_version_and_refuse_other_versions() {
    let mut state = network();
    let code = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S1234100",
        Some("subj-1"),
        "c",
        t(0),
    );
    let event = state.trace(&code).unwrap().timeline[0].clone();
    let json = event.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["type"], "unit.created");
    assert_eq!(value["version"], EVENT_VERSION);
    assert_eq!(value["code"], code.to_string());
    assert_eq!(Event::from_json(&json).unwrap(), event);

    let v2 = json.replace("\"version\":1", "\"version\":2");
    assert!(matches!(
        Event::from_json(&v2),
        Err(CustodyError::EventVersion { found: 2, .. })
    ));
    let unknown = json.replace("unit.created", "unit.teleported");
    assert!(matches!(
        Event::from_json(&unknown),
        Err(CustodyError::EventJson { .. })
    ));
    // A malformed code (lowercase product code) is refused on read.
    let bad_code = json.replace(
        &code.to_string(),
        &code.to_string().replace("S1234100", "s1234100"),
    );
    assert!(Event::from_json(&bad_code).is_err());
    let names: Vec<&str> = CUSTODY_EVENT_TYPES.iter().map(|e| e.name).collect();
    assert!(names.contains(&event.type_name()));
    assert_eq!(names.len(), 12);
}
