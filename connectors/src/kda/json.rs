//! A JSON value that keeps the order of object keys and the form of numbers, so an object or
//! array mapped to a VARCHAR column reads back as the source JSON text (compacted), e.g.
//! `{"orderId":"23284","itemName":"Widget"}` rather than with keys re-sorted.
//!
//! ```text
//!  bytes ──serde_json (concatenated documents)──► Json::{Null, Bool, Number, String,
//!                                                       Array(Vec), Object(Vec<(key, value)>)}
//!                                                  │ get(key): last occurrence wins
//!                                                  └► write_text(): compact JSON text
//! ```

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// An order-preserving JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as serde_json read it.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in source order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value of `key` in an object (the last one if the key repeats); `None` for a missing
    /// key or a value that is not an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|e| &e.1),
            _ => None,
        }
    }

    /// A word for the kind of value, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// Appends the compact JSON text of the value.
    pub fn write_text(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => write_json_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_text(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(k, out);
                    out.push(':');
                    v.write_text(out);
                }
                out.push('}');
            }
        }
    }

    /// The compact JSON text of the value.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_text(&mut s);
        s
    }
}

/// Appends `s` as a JSON string literal (quoted and escaped).
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom(format!("the number {v} is not finite")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            entries.push((k, v));
        }
        Ok(Json::Object(entries))
    }
}

/// Parses every JSON document in `bytes` (whitespace-separated or concatenated), with the
/// byte range each one occupies.
pub fn parse_documents(
    bytes: &[u8],
) -> Result<Vec<(Json, std::ops::Range<usize>)>, serde_json::Error> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Json>();
    let mut start = 0;
    while let Some(doc) = stream.next() {
        let doc = doc?;
        let end = stream.byte_offset();
        // The range starts at the document's first non-blank byte.
        let skipped = bytes[start..end]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        out.push((doc, start + skipped..end));
        start = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_number_form() {
        let docs =
            parse_documents(br#"{"b":1,"a":[1.5,"x\"y",null,true],"c":{"z":-7,"y":{}}}  {"b":2}"#)
                .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].0.to_text(),
            r#"{"b":1,"a":[1.5,"x\"y",null,true],"c":{"z":-7,"y":{}}}"#
        );
        assert_eq!(docs[0].1, 0..54);
        assert_eq!(docs[1].1, 56..63);
        assert_eq!(docs[1].0.get("b"), Some(&Json::Number(2.into())));
        assert_eq!(docs[1].0.get("B"), None);
    }

    #[test]
    fn last_duplicate_key_wins_and_errors_are_reported() {
        let docs = parse_documents(br#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(docs[0].0.get("a"), Some(&Json::Number(2.into())));
        assert!(parse_documents(br#"{"a":1"#).is_err());
        assert!(parse_documents(br#"{"a":1} xyz"#).is_err());
        assert_eq!(parse_documents(b"  \n ").unwrap().len(), 0);
    }
}
