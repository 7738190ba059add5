//! The JSONPath subset of KDA input mappings (SPEC §1.8, Example N).
//!
//! ```text
//!  "$.a.b"            ──► JsonPath::Value    [a, b]            the value (NULL if missing)
//!  "$.arr[0:]"        ──► JsonPath::WholeArray [arr]           the whole array, as JSON text
//!  "$.arr[0:].f.g"    ──► JsonPath::Flatten { array: [arr], field: [f, g] }
//!                              one row per element of arr where a flattened path
//!                              matches; f.g read from each element; no match (empty or
//!                              missing array, no element with the fields) gives one row
//!                              whose flattened columns are NULL
//! ```
//!
//! Keys are case-sensitive and run up to the next `.` or `[`. The only bracket form is the
//! array wildcard `[0:]`, and it may appear once per path ("only one level of array
//! dereference"); anything else is rejected with the mapping named. That at most one array is
//! flattened per schema is checked by the input schema ([`super::InputSchema::validate`]).

use std::fmt;

use super::json::Json;

/// A parsed mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPath {
    /// `$.a.b`: the value at the keys (`$` alone: the whole row).
    Value(Vec<String>),
    /// `$.a[0:]`: the array at the keys, whole (read as JSON text).
    WholeArray(Vec<String>),
    /// `$.a[0:].b`: flattens the array at `array`, reading `field` from each element.
    Flatten {
        /// Keys of the array.
        array: Vec<String>,
        /// Keys inside each element (at least one).
        field: Vec<String>,
    },
}

impl JsonPath {
    /// Parses a mapping; the error says what is wrong (the caller names the column).
    pub fn parse(mapping: &str) -> Result<JsonPath, String> {
        let text = mapping.trim();
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(format!("mapping '{mapping}' must start with '$'"));
        };
        let mut before: Vec<String> = Vec::new();
        let mut after: Vec<String> = Vec::new();
        let mut wildcard = false;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = &r[..end];
                if key.is_empty() {
                    return Err(format!(
                        "mapping '{mapping}' has an empty key (write '$.a.b')"
                    ));
                }
                if wildcard {
                    after.push(key.to_string());
                } else {
                    before.push(key.to_string());
                }
                rest = &r[end..];
            } else if rest.starts_with('[') {
                let Some(close) = rest.find(']') else {
                    return Err(format!("mapping '{mapping}' has an unclosed '['"));
                };
                let inside: String = rest[1..close].split_whitespace().collect();
                if inside != "0:" {
                    return Err(format!(
                        "mapping '{mapping}': '{}' is not supported; the only array form is \
                         '[0:]' (all elements)",
                        &rest[..=close]
                    ));
                }
                if wildcard {
                    return Err(format!(
                        "mapping '{mapping}' dereferences two arrays; KDA allows only one level \
                         of array dereference ('[0:]')"
                    ));
                }
                wildcard = true;
                rest = &rest[close + 1..];
            } else {
                return Err(format!(
                    "mapping '{mapping}': expected '.key' or '[0:]' at '{rest}'"
                ));
            }
        }
        Ok(match (wildcard, after.is_empty()) {
            (false, _) => JsonPath::Value(before),
            (true, true) => JsonPath::WholeArray(before),
            (true, false) => JsonPath::Flatten {
                array: before,
                field: after,
            },
        })
    }

    /// The array this path flattens, if any.
    pub fn flattened_array(&self) -> Option<&[String]> {
        match self {
            JsonPath::Flatten { array, .. } => Some(array),
            _ => None,
        }
    }
}

fn write_keys(f: &mut fmt::Formatter<'_>, keys: &[String]) -> fmt::Result {
    for k in keys {
        write!(f, ".{k}")?;
    }
    Ok(())
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        match self {
            JsonPath::Value(keys) => write_keys(f, keys),
            JsonPath::WholeArray(keys) => {
                write_keys(f, keys)?;
                f.write_str("[0:]")
            }
            JsonPath::Flatten { array, field } => {
                write_keys(f, array)?;
                f.write_str("[0:]")?;
                write_keys(f, field)
            }
        }
    }
}

/// Follows `keys` from `root`; `None` when a key is missing or a value on the way is not an
/// object.
pub fn resolve<'a>(root: &'a Json, keys: &[String]) -> Option<&'a Json> {
    let mut v = root;
    for k in keys {
        v = v.get(k)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_subset() {
        assert_eq!(JsonPath::parse("$").unwrap(), JsonPath::Value(vec![]));
        assert_eq!(
            JsonPath::parse("$.address.city").unwrap(),
            JsonPath::Value(keys(&["address", "city"]))
        );
        assert_eq!(
            JsonPath::parse("$.orders[0:]").unwrap(),
            JsonPath::WholeArray(keys(&["orders"]))
        );
        assert_eq!(
            JsonPath::parse(" $.orders[0:].item.id ").unwrap(),
            JsonPath::Flatten {
                array: keys(&["orders"]),
                field: keys(&["item", "id"])
            }
        );
        assert_eq!(
            JsonPath::parse("$.heart Rate").unwrap(),
            JsonPath::Value(keys(&["heart Rate"]))
        );
        for m in ["$.a.b", "$.a[0:]", "$.a[0:].b.c", "$"] {
            assert_eq!(JsonPath::parse(m).unwrap().to_string(), m);
        }
    }

    #[test]
    fn rejects_the_rest_naming_the_mapping() {
        for (m, why) in [
            ("a.b", "must start with '$'"),
            ("$..a", "empty key"),
            ("$.a.", "empty key"),
            ("$.a[0]", "'[0]' is not supported"),
            ("$.a[*]", "'[*]' is not supported"),
            ("$.a[0:", "unclosed"),
            ("$.a[0:].b[0:].c", "only one level"),
            ("$.a[0:][0:]", "only one level"),
            ("$a", "expected '.key'"),
        ] {
            let e = JsonPath::parse(m).unwrap_err();
            assert!(e.contains(&format!("'{m}'")), "{m}: {e}");
            assert!(e.contains(why), "{m}: {e}");
        }
    }
}
