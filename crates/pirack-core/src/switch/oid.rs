//! Object identifiers as profiles and logs write them (`1.3.6.1.2.1.105.1.1.1.3`).

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    /// This OID with `index` appended: a column and its row index make an instance.
    pub fn at(&self, index: &[u32]) -> Oid {
        Oid(self.0.iter().chain(index).copied().collect())
    }
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }
    /// The arcs after `prefix`, if this OID is under it.
    pub fn index_after(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a numeric OID such as 1.3.6.1.2.1.105.1.1.1.3")]
pub struct BadOid(String);

impl FromStr for Oid {
    type Err = BadOid;
    fn from_str(s: &str) -> Result<Oid, BadOid> {
        let arcs: Result<Vec<u32>, _> = s
            .strip_prefix('.')
            .unwrap_or(s)
            .split('.')
            .map(str::parse)
            .collect();
        match arcs {
            Ok(a) if a.len() >= 2 && a[0] <= 2 => Ok(Oid(a)),
            _ => Err(BadOid(s.to_string())),
        }
    }
}

impl Serialize for Oid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Oid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Oid, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Oid {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Oid".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^\\.?[0-2](\\.[0-9]+)+$" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_numeric_oids() {
        let oid: Oid = ".1.3.6.1.2.1.105".parse().unwrap();
        assert_eq!(oid.to_string(), "1.3.6.1.2.1.105");
        assert_eq!(oid.at(&[1, 7]).index_after(&oid), Some(&[1, 7][..]));
        for bad in ["", "1", "x.1", "1..3", "3.1", "1.3.-1", "1.3.99999999999"] {
            assert!(bad.parse::<Oid>().is_err(), "{bad}");
        }
    }
}
