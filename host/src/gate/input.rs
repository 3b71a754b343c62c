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
        self.object(args, 1)?;
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

    fn object(&self, object: &JsonObject, depth: u32) -> Result<(), CapError> {
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
            self.value(value, depth).map_err(|e| e.within(key, false))?;
        }
        Ok(())
    }

    /// Check `value`, found at nesting depth `depth`.
    fn value(&self, value: &Value, depth: u32) -> Result<(), CapError> {
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
                    self.value(item, depth + 1)
                        .map_err(|e| e.within(&index.to_string(), true))?;
                }
                Ok(())
            }
            Value::Object(object) => self.object(object, depth + 1),
            _ => Ok(()),
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
}
