//! RFC 8785 (JSON Canonicalization Scheme) writer for `serde_json::Value`.
//!
//! Why our own: canonicalization sits on the append path of every record, and writing the
//! value directly is several times faster than the general crates (which serialize through
//! an intermediate form). The number format is ECMAScript's, from the well-kept `ryu-js`;
//! strings use serde_json's escaping, which is exactly RFC 8785's; object members are sorted
//! by UTF-16 code units. A property test checks this writer against
//! `serde_json_canonicalizer` on random values.

use serde_json::Value;

/// Appends the canonical form of `value` to `out`.
pub fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            if sorted.iter().all(|(k, _)| k.is_ascii()) {
                // ASCII: UTF-16 order is byte order.
                sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            } else {
                sorted.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            out.push(b'{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write(out, item);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as RFC 8785 writes it.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    // Integers within ±2^53 are exact doubles and print as themselves.
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= 1 << 53) {
        out.extend_from_slice(i.to_string().as_bytes());
        return;
    }
    if let Some(u) = n.as_u64().filter(|u| *u <= 1 << 53) {
        out.extend_from_slice(u.to_string().as_bytes());
        return;
    }
    // Every other number is the IEEE 754 double it denotes (RFC 8785 §3.2.2.3). serde_json
    // holds only finite numbers, so `as_f64` always answers.
    let f = n.as_f64().unwrap_or(0.0);
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(f).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(v: &Value) -> String {
        let mut out = Vec::new();
        write(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    fn reference(v: &Value) -> String {
        serde_json_canonicalizer::to_string(v).unwrap()
    }

    #[test]
    fn rfc_8785_examples() {
        let v: Value = serde_json::from_str(
            r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#,
        )
        .unwrap();
        assert_eq!(
            ours(&v),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        let keys: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        assert_eq!(ours(&keys), reference(&keys));
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\a-z\u{e000}\u{1f600}]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z\u{e000}\u{1f600}é]{0,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn equals_the_reference_implementation(v in value()) {
            prop_assert_eq!(ours(&v), reference(&v));
        }
    }
}
