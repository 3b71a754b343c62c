//! Caps on a call's arguments, checked before any other work on them: total size, nesting
//! depth, string length and array length. The strict WIT validation comes after.

use std::io;

use rmcp::model::JsonObject;
use serde_json::Value;

use crate::manifest::GlobalLimits;

/// The caps, from `[limits]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputCaps {
    /// Largest arguments object, serialized as JSON, in bytes.
    pub max_bytes: u64,
    /// Deepest nesting; the arguments object itself is depth 1.
    pub max_depth: u32,
    /// Longest string (value or key), in bytes.
    pub max_string: u64,
    /// Most items in one array.
    pub max_array: u64,
}

impl From<&GlobalLimits> for InputCaps {
    fn from(limits: &GlobalLimits) -> Self {
        Self {
            max_bytes: limits.max_argument_bytes,
            max_depth: limits.max_depth,
            max_string: limits.max_string,
            max_array: limits.max_array,
        }
    }
}

impl Default for InputCaps {
    fn default() -> Self {
        Self::from(&GlobalLimits::default())
    }
}

/// Arguments over a cap. The messages name the argument and the limit, nothing else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    #[error("the arguments are larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the arguments are nested deeper than the limit of {limit} levels")]
    TooDeep { limit: u32 },
    #[error("{path}: a string of {len} bytes exceeds the limit of {limit} bytes")]
    StringTooLong {
        path: String,
        len: usize,
        limit: u64,
    },
    #[error("{path}: an array of {len} items exceeds the limit of {limit} items")]
    ArrayTooLong {
        path: String,
        len: usize,
        limit: u64,
    },
}

impl InputCaps {
    /// Check `args` (none is an empty object) against every cap.
    pub fn check(&self, args: Option<&JsonObject>) -> Result<(), CapError> {
        let Some(args) = args else {
            return Ok(());
        };
        let mut bound = 0;
        self.object(args, 1, &mut bound)?;
        if bound <= self.max_bytes {
            return Ok(());
        }
        // Serialized, the arguments may be smaller than the bound: count exactly.
        let mut counter = Counter {
            count: 0,
            limit: self.max_bytes,
        };
        if serde_json::to_writer(&mut counter, args).is_err() {
            return Err(CapError::TooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Check `object`, found at nesting depth `depth`, adding to `bound` at least as many
    /// bytes as it takes serialized.
    fn object(&self, object: &JsonObject, depth: u32, bound: &mut u64) -> Result<(), CapError> {
        if depth > self.max_depth {
            return Err(CapError::TooDeep {
                limit: self.max_depth,
            });
        }
        for (key, value) in object {
            if key.len() as u64 > self.max_string {
                return Err(CapError::StringTooLong {
                    path: "(a key)".to_owned(),
                    len: key.len(),
                    limit: self.max_string,
                });
            }
            // `"key":` and `,` around the value, `{` and `}` around all.
            *bound += string_bound(key) + 2;
            self.value(value, depth, bound)
                .map_err(|e| e.within(key, false))?;
        }
        *bound += 2;
        Ok(())
    }

    /// Check `value`, found at nesting depth `depth`, adding to `bound` (see [`Self::object`]).
    fn value(&self, value: &Value, depth: u32, bound: &mut u64) -> Result<(), CapError> {
        match value {
            Value::String(s) if s.len() as u64 > self.max_string => Err(CapError::StringTooLong {
                path: String::new(),
                len: s.len(),
                limit: self.max_string,
            }),
            Value::Array(items) => {
                if depth + 1 > self.max_depth {
                    return Err(CapError::TooDeep {
                        limit: self.max_depth,
                    });
                }
                if items.len() as u64 > self.max_array {
                    return Err(CapError::ArrayTooLong {
                        path: String::new(),
                        len: items.len(),
                        limit: self.max_array,
                    });
                }
                for (index, item) in items.iter().enumerate() {
                    *bound += 1;
                    self.value(item, depth + 1, bound)
                        .map_err(|e| e.within(&index.to_string(), true))?;
                }
                *bound += 2;
                Ok(())
            }
            Value::Object(object) => self.object(object, depth + 1, bound),
            Value::String(s) => {
                *bound += string_bound(s);
                Ok(())
            }
            // The longest number serde_json writes (a float, by ryu) takes 24 bytes.
            Value::Number(_) => {
                *bound += 24;
                Ok(())
            }
            Value::Bool(_) | Value::Null => {
                *bound += 5;
                Ok(())
            }
        }
    }
}

impl CapError {
    /// The same error, one level further out: `segment` (a key, or an index when `index`)
    /// goes in front of the path.
    fn within(mut self, segment: &str, index: bool) -> Self {
        if let CapError::StringTooLong { path, .. } | CapError::ArrayTooLong { path, .. } =
            &mut self
        {
            let outer = if index {
                format!("[{segment}]")
            } else {
                segment.to_owned()
            };
            *path = match (path.is_empty(), path.starts_with('[')) {
                (true, _) => outer,
                (false, true) => format!("{outer}{path}"),
                (false, false) => format!("{outer}.{path}"),
            };
        }
        self
    }
}

/// The most bytes `s` can take as a JSON string: quotes, and every byte escaped as `\u00XX`.
fn string_bound(s: &str) -> u64 {
    s.len() as u64 * 6 + 2
}

/// Counts bytes written and fails once they pass the limit, so a huge value is not
/// serialized to the end.
struct Counter {
    count: u64,
    limit: u64,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len() as u64;
        if self.count > self.limit {
            return Err(io::Error::other("over the limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn caps() -> InputCaps {
        InputCaps {
            max_bytes: 200,
            max_depth: 3,
            max_string: 10,
            max_array: 4,
        }
    }

    fn check(value: Value) -> Result<(), CapError> {
        match value {
            Value::Object(object) => caps().check(Some(&object)),
            _ => panic!("arguments are an object"),
        }
    }

    #[test]
    fn arguments_within_every_cap_pass() {
        assert_eq!(
            check(json!({"a": "0123456789", "b": [1, 2, [3, 4]]})),
            Ok(())
        );
        assert_eq!(caps().check(None), Ok(()));
    }

    #[test]
    fn each_cap_is_enforced_with_a_path() {
        assert_eq!(
            check(json!({"a": {"b": ["x", "01234567890"]}})),
            Err(CapError::StringTooLong {
                path: "a.b[1]".into(),
                len: 11,
                limit: 10
            })
        );
        assert_eq!(
            check(json!({"list": [1, 2, 3, 4, 5]})),
            Err(CapError::ArrayTooLong {
                path: "list".into(),
                len: 5,
                limit: 4
            })
        );
        assert_eq!(check(json!({"a": [[1]]})), Ok(()));
        assert_eq!(
            check(json!({"a": [[[1]]]})),
            Err(CapError::TooDeep { limit: 3 })
        );
        assert_eq!(check(json!({"a": {"b": {"c": 1}}})), Ok(()));
        assert_eq!(
            check(json!({"a": {"b": {"c": {}}}})),
            Err(CapError::TooDeep { limit: 3 })
        );
        let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        assert_eq!(
            check(
                json!({"a": many[..4], "b": many[4..8], "c": many[8..12], "d": many[12..16], "e": many[16..20], "f": many[20..24], "g": many[24..28], "h": many[28..32], "i": many[32..36]})
            ),
            Err(CapError::TooLarge { limit: 200 })
        );
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".*".prop_map(Value::from),
            "[\\x00-\\x1f\"\\\\]*".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                proptest::collection::btree_map(".*", inner, 0..8)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The size bound never undercounts, so arguments under it need no exact count.
        #[test]
        fn the_size_bound_is_never_below_the_serialized_size(value in json()) {
            let args: JsonObject = [("v".to_owned(), value)].into_iter().collect();
            let unlimited = InputCaps {
                max_bytes: u64::MAX,
                max_depth: u32::MAX,
                max_string: u64::MAX,
                max_array: u64::MAX,
            };
            let mut bound = 0;
            unlimited.object(&args, 1, &mut bound).expect("no cap");
            let size = serde_json::to_vec(&args).expect("serializable").len() as u64;
            proptest::prop_assert!(bound >= size, "bound {bound} < size {size}");
        }
    }
}
