//! JSON text read straight into the engine's values: one pass over the bytes builds the regorus `Value`
//! that policies see as `input.review`, with no `serde_json::Value` tree built first and converted after.
//!
//! The result is the value [`to_value`] makes from the same text read by
//! `serde_json` (the same numbers, the last value of a repeated key, the same errors, serde_json's
//! nesting limit): the server reads request bodies this way, and every front door converts JSON it
//! already holds with [`to_value`] (which also converts the data and inventory the engine reads), so both
//! must agree (tested on every corpus review).

use regorus::Value;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

/// Parses one JSON document (trailing whitespace only) into a regorus value.
pub fn parse(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let mut scratch = Scratch::default();
    let value = ValueSeed(&mut scratch).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Elements and entries of the arrays and objects still open, shared by every nesting level: a
/// container's items are collected here and moved out in one exactly sized allocation when it
/// closes (serde_json gives no length up front, so a vector per container would grow and then be
/// shrunk to fit).
#[derive(Default)]
struct Scratch {
    items: Vec<Value>,
    entries: Vec<(Value, Value)>,
}

/// Deserialises any JSON value into a regorus value.
struct ValueSeed<'s>(&'s mut Scratch);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor(self.0))
    }
}

struct ValueVisitor<'s>(&'s mut Scratch);

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::from(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    // serde_json hands non-negative integers over as u64; `to_value` prefers i64 where it fits.
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(match i64::try_from(n) {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(n),
        })
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::from(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let scratch = self.0;
        let start = scratch.items.len();
        while let Some(item) = seq.next_element_seed(ValueSeed(scratch))? {
            scratch.items.push(item);
        }
        let items: Vec<Value> = scratch.items.drain(start..).collect();
        Ok(Value::from(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let scratch = self.0;
        let start = scratch.entries.len();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(ValueSeed(scratch))?;
            scratch.entries.push((key, value));
        }
        let entries: Vec<(Value, Value)> = scratch.entries.drain(start..).collect();
        // Sorted (and a repeated key's last value kept) as serde_json's map would hold them.
        Ok(Value::from(crate::engine_compat::object_from_entries(
            entries,
        )))
    }
}

/// An object key, as a string value.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::from(s))
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Err(E::custom("object key is not a string"))
    }
}

/// Converts JSON to a regorus value directly (no serde round trip, no intermediate clone).
pub fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(to_value).collect::<Vec<Value>>()),
        // serde_json's map iterates in key order, so the entries go straight into the object's
        // compact storage (no B-tree built and then flattened).
        Json::Object(map) => Value::from(crate::engine_compat::object_from_entries(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), to_value(v)))
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::scalars(r#"[null, true, false, 0, -1, 1.5, -0.0, 1e3, "s", ""]"#)]
    #[case::integer_edges(r#"[9223372036854775807, 9223372036854775808, 18446744073709551615, -9223372036854775808, 18446744073709551616]"#)]
    #[case::nested(r#"{"b": {"z": [1, {"y": null}], "a": "x"}, "a": [], "c": {}}"#)]
    #[case::repeated_key_last_wins(r#"{"k": 1, "j": 0, "k": 2}"#)]
    #[case::escapes(r#"{"\u00e9\n": "tab\there \"q\" \ud83d\ude00"}"#)]
    #[case::unsorted_unicode_keys(r#"{"é": 1, "z": 2, "A": 3, "a": 4, "": 5}"#)]
    fn reads_as_serde_json_then_to_value(#[case] text: &str) {
        let json: serde_json::Value = serde_json::from_str(text).expect("test JSON");
        assert_eq!(parse(text.as_bytes()).expect("parses"), to_value(&json));
    }

    #[rstest]
    #[case::trailing_garbage("{} x")]
    #[case::truncated(r#"{"a": [1, 2"#)]
    #[case::bare_word("nope")]
    #[case::trailing_comma(r#"{"a": 1,}"#)]
    #[case::empty("")]
    fn rejects_what_serde_json_rejects_with_its_message(#[case] text: &str) {
        let ours = parse(text.as_bytes()).expect_err("must fail").to_string();
        let theirs = serde_json::from_str::<serde_json::Value>(text)
            .expect_err("serde_json fails too")
            .to_string();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn nesting_past_serde_json_limit_is_refused() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let err = parse(deep.as_bytes()).expect_err("too deep").to_string();
        assert!(err.contains("recursion limit exceeded"), "{err}");
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(fine.as_bytes()).is_ok());
    }
}
