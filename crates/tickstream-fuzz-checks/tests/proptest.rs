//! Property tests of the native client-message parser: whatever a client
//! sends, `protocol::parse` answers (never panics), and the answer keeps the
//! properties of `tickstream_fuzz_checks::native_protocol`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{json, Value};
use tickstream_fuzz_checks::{native_protocol, Outcome};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        "[a-zA-Z0-9._/ -]{0,36}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map("[a-z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Requests shaped like the protocol's, with every field possibly wrong.
fn request_like() -> impl Strategy<Value = Value> {
    let event = prop_oneof![
        Just(json!("subscribe")),
        Just(json!("unsubscribe")),
        Just(json!("list")),
        Just(json!("ping")),
        any_json(),
    ];
    let symbols = prop_oneof![
        prop::collection::vec("[a-zA-Z0-9._/: -]{0,34}", 0..250).prop_map(|v| json!(v)),
        "[a-zA-Z0-9,. ]{0,60}".prop_map(Value::from),
        any_json(),
    ];
    let id = prop_oneof![Just(Value::Null), any_json()];
    (event, symbols, id, any::<bool>()).prop_map(|(event, symbols, id, with_data)| {
        let mut v = json!({ "event": event, "id": id });
        if with_data {
            v["data"] = json!({ "symbols": symbols });
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = native_protocol(text.as_bytes());
    }

    #[test]
    fn parser_never_panics_on_any_json(v in any_json()) {
        let _ = native_protocol(v.to_string().as_bytes());
    }

    #[test]
    fn request_shaped_input_keeps_the_properties(v in request_like()) {
        let text = v.to_string();
        let outcome = native_protocol(text.as_bytes());
        // A well-formed subscribe of valid symbols within the limit is accepted.
        let valid = v["event"] == "subscribe"
            && v["data"]["symbols"].as_array().is_some_and(|s| {
                !s.is_empty()
                    && s.len() <= 200
                    && s.iter().all(|x| tickstream_model::Symbol::parse(x.as_str().unwrap_or("")).is_ok())
            })
            && (v["id"].is_null() || v["id"].is_string() || v["id"].is_number());
        if valid {
            prop_assert_eq!(outcome, Outcome::Accepted, "{}", text);
        }
    }
}
