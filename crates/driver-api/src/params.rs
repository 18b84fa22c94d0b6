//! Driver parameters as a registry's configuration gives them.
//!
//! A `storage: <backend>:` section of a `config.yml` (or the JSON equivalent) deserializes into
//! [`Parameters`]. Getters accept what distribution accepts — a YAML boolean or a string like
//! `"true"`, an integer or a decimal string — and every rejection is an
//! [`Error::InvalidParameter`] that names the key and what is allowed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One configuration value, independent of the file format it came from.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `null` or `~`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A string.
    String(String),
    /// A list.
    List(Vec<Value>),
    /// A nested map.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// How the value looks in an error message. Strings are quoted; nothing is redacted here,
    /// so never format a secret parameter's value with this.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::String(s) => format!("{s:?}"),
            Value::List(_) => "a list".into(),
            Value::Map(_) => "a map".into(),
        }
    }

    /// The value as a string, when it is a scalar (numbers and booleans are formatted).
    pub fn as_scalar_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            _ => None,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// The parameter map of one driver or middleware, with typed getters.
///
/// Keys are matched case-insensitively (distribution lower-cases environment overrides).
/// `Debug` prints keys only, so a map holding credentials can be logged safely.
#[derive(Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Parameters {
    map: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // `null` (an empty YAML section such as `inmemory:`) is an empty map.
        let map = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
        Ok(map.into_iter().collect())
    }
}

impl fmt::Debug for Parameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Parameters {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut p = Parameters::default();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

impl Parameters {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (stored lower-cased) to `value`, replacing any earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.map
            .insert(key.into().to_ascii_lowercase(), value.into());
    }

    /// Builder form of [`insert`](Self::insert).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.map.remove(&key.to_ascii_lowercase())
    }

    /// The raw value of `key`; `Null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.map.get(&key.to_ascii_lowercase()) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// All keys, lower-cased, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A string parameter; numbers and booleans are accepted and formatted (YAML reads
    /// `region: 123` as a number). `None` when absent.
    pub fn string(&self, driver: &str, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_scalar_string().map(Some).ok_or_else(|| {
                Error::invalid_parameter(
                    driver,
                    key,
                    format!("must be a string, got {}", v.describe()),
                )
            }),
        }
    }

    /// A string parameter that must be present and non-empty.
    pub fn required_string(&self, driver: &str, key: &str) -> Result<String> {
        match self.string(driver, key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(Error::invalid_parameter(
                driver,
                key,
                "is required and must not be empty",
            )),
        }
    }

    /// A boolean parameter: a YAML boolean or a string Go's `strconv.ParseBool` accepts
    /// (`1 t T TRUE true True 0 f F FALSE false False`).
    pub fn bool(&self, driver: &str, key: &str, default: bool) -> Result<bool> {
        let bad = |v: &Value| {
            Error::invalid_parameter(
                driver,
                key,
                format!("must be a boolean (true or false), got {}", v.describe()),
            )
        };
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v @ Value::String(s)) => match s.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
                _ => Err(bad(v)),
            },
            Some(v) => Err(bad(v)),
        }
    }

    /// An integer parameter within `min..=max`: a YAML integer or a decimal string (`_`
    /// separators allowed). Out of range or not a number is an error naming the range.
    pub fn int_in_range(
        &self,
        driver: &str,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64> {
        let range = || format!("must be a whole number between {min} and {max} (inclusive)");
        let v = match self.get(key) {
            None => return Ok(default),
            Some(v) => v,
        };
        let n: i128 = match v {
            Value::Int(i) => i128::from(*i),
            Value::Float(x) if x.fract() == 0.0 && x.abs() < 1e30 => *x as i128,
            Value::String(s) => s.trim().replace('_', "").parse::<i128>().map_err(|_| {
                Error::invalid_parameter(driver, key, format!("{}, got {}", range(), v.describe()))
            })?,
            _ => {
                return Err(Error::invalid_parameter(
                    driver,
                    key,
                    format!("{}, got {}", range(), v.describe()),
                ))
            }
        };
        if n < i128::from(min) || n > i128::from(max) {
            return Err(Error::invalid_parameter(
                driver,
                key,
                format!("{}, got {n}", range()),
            ));
        }
        Ok(n as u64)
    }

    /// A parameter whose value must be one of `allowed` (compared after `normalise`); returns
    /// the normalised value or `default` when absent.
    pub fn one_of(
        &self,
        driver: &str,
        key: &str,
        default: &str,
        allowed: &[&str],
        normalise: fn(&str) -> String,
    ) -> Result<String> {
        let Some(raw) = self.string(driver, key)? else {
            return Ok(default.to_owned());
        };
        let v = normalise(&raw);
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(Error::invalid_parameter(
                driver,
                key,
                format!("must be one of [{}], got {raw:?}", allowed.join(", ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Parameters {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn yaml_and_json_values_map_onto_parameters() {
        let p =
            yaml("bucket: b\nencrypt: true\nchunksize: 5242880\nsecure: \"false\"\nregion: ~\n");
        assert_eq!(p.string("s3", "bucket").unwrap().as_deref(), Some("b"));
        assert!(p.bool("s3", "encrypt", false).unwrap());
        assert!(!p.bool("s3", "secure", true).unwrap());
        assert_eq!(
            p.int_in_range("s3", "chunksize", 0, 1, u64::MAX).unwrap(),
            5242880
        );
        assert_eq!(p.string("s3", "region").unwrap(), None);
        let j: Parameters =
            serde_json::from_str(r#"{"Bucket":"x","chunksize":"6291456"}"#).unwrap();
        assert_eq!(
            j.int_in_range("s3", "chunksize", 0, 0, u64::MAX).unwrap(),
            6291456
        );
        assert_eq!(j.string("s3", "bucket").unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn errors_name_parameter_and_range() {
        let p = Parameters::new()
            .with("chunksize", 1i64)
            .with("encrypt", "yes")
            .with("storageclass", "cold");
        let e = p
            .int_in_range("s3aws", "chunksize", 0, 5, 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("chunksize") && e.contains("between 5 and 10"),
            "{e}"
        );
        let e = p.bool("s3aws", "encrypt", false).unwrap_err().to_string();
        assert!(e.contains("encrypt") && e.contains("boolean"), "{e}");
        let e = p
            .one_of(
                "s3aws",
                "storageclass",
                "STANDARD",
                &["STANDARD", "NONE"],
                |s| s.to_ascii_uppercase(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("storageclass") && e.contains("STANDARD, NONE"),
            "{e}"
        );
        let e = Parameters::new()
            .required_string("s3aws", "bucket")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bucket"), "{e}");
        let e = Parameters::new()
            .with("chunksize", "lots")
            .int_in_range("s3aws", "chunksize", 0, 5, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"lots\""), "{e}");
    }

    #[test]
    fn debug_shows_keys_only() {
        let p = Parameters::new().with("secretkey", "hunter2");
        assert_eq!(format!("{p:?}"), "{\"secretkey\"}");
    }
}
