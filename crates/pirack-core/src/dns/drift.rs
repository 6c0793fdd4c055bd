//! How far a zone is from what pirack wants in it: names missing (created while
//! nobody holds them), stale (held by this site, with other records, or wanted no
//! more) and in conflict (held by someone else: left alone and reported).

use super::want::Owned;
use super::{
    Record, TXT, registered, registry_name, registry_site, registry_types, registry_value, types_of,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One name's update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A missing name nobody holds: created only while it is still free.
    Create { owned: Owned },
    /// A name this site holds whose records differ: the types in `clear`
    /// replaced while the mark still reads `mark`.
    Replace {
        owned: Owned,
        mark: String,
        clear: Vec<u16>,
        was: Vec<Record>,
    },
    /// A name this site holds that nothing wants any more: the types it wrote
    /// there (`clear`) deleted while the mark still reads `mark`.
    Delete {
        name: String,
        mark: String,
        clear: Vec<u16>,
        was: Vec<Record>,
    },
}

impl Change {
    pub fn name(&self) -> &str {
        match self {
            Change::Create { owned } | Change::Replace { owned, .. } => &owned.name,
            Change::Delete { name, .. } => name,
        }
    }

    /// `missing` or `stale`, as drift is reported.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Create { .. } => "missing",
            Change::Replace { .. } | Change::Delete { .. } => "stale",
        }
    }
}

/// A name pirack wants that someone else holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub name: String,
    pub holder: String,
    pub reason: String,
    pub found: Vec<Record>,
}

/// One zone's drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub zone: String,
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    /// Names already as wanted.
    pub in_sync: usize,
}

impl Drift {
    /// A zone with nothing found yet (or that could not be read).
    pub fn empty(zone: &str) -> Drift {
        Drift {
            zone: zone.to_string(),
            changes: Vec::new(),
            conflicts: Vec::new(),
            in_sync: 0,
        }
    }

    pub fn count(&self, kind: &str) -> usize {
        self.changes.iter().filter(|c| c.kind() == kind).count()
    }
}

/// The drift of `zone`, holding `actual`, from `wanted` (this site's names in it).
pub fn drift(zone: &str, site: &str, wanted: &[Owned], actual: &[Record]) -> Drift {
    let mut at: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in actual {
        at.entry(r.name.as_str()).or_default().push(r);
    }
    let records = |name: &str, types: &[u16]| -> Vec<Record> {
        at.get(name)
            .into_iter()
            .flatten()
            .filter(|r| types.contains(&r.data.rtype()))
            .map(|r| (*r).clone())
            .collect()
    };
    let marks = |name: &str| -> Vec<String> {
        records(&registry_name(name), &[TXT])
            .into_iter()
            .filter_map(|r| match r.data {
                super::Data::Txt(t) => Some(t),
                _ => None,
            })
            .collect()
    };
    let mut out = Drift::empty(zone);
    for w in wanted {
        let types = types_of(&w.records);
        match marks(&w.name).as_slice() {
            [] => {
                let in_way = records(&w.name, &types);
                if in_way.is_empty() {
                    out.changes.push(Change::Create { owned: w.clone() });
                } else {
                    out.conflicts.push(Conflict {
                        name: w.name.clone(),
                        holder: w.holder.clone(),
                        reason: "records pirack did not write are in the way".into(),
                        found: in_way,
                    });
                }
            }
            [mark] if registry_site(mark) == Some(site) => {
                let mut clear = registry_types(mark);
                clear.extend(&types);
                clear.sort_unstable();
                clear.dedup();
                let present = records(&w.name, &clear);
                let want: BTreeSet<&Record> = w.records.iter().collect();
                let have: BTreeSet<&Record> = present.iter().collect();
                if want == have && *mark == registry_value(site, &w.holder, &types) {
                    out.in_sync += 1;
                } else {
                    out.changes.push(Change::Replace {
                        owned: w.clone(),
                        mark: mark.clone(),
                        clear,
                        was: present,
                    });
                }
            }
            held => out.conflicts.push(Conflict {
                name: w.name.clone(),
                holder: w.holder.clone(),
                reason: format!("held by another: {}", held.join(" | ")),
                found: records(&w.name, &types),
            }),
        }
    }
    let wanted_names: BTreeSet<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    for name in at.keys().filter_map(|n| registered(n)) {
        if wanted_names.contains(name) {
            continue;
        }
        if let [mark] = marks(name).as_slice()
            && registry_site(mark) == Some(site)
        {
            let clear = registry_types(mark);
            out.changes.push(Change::Delete {
                name: name.to_string(),
                mark: mark.clone(),
                was: records(name, &clear),
                clear,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{AAAA, Data};
    use proptest::prelude::*;

    const SITE: &str = "s1";

    fn rec(name: &str, data: Data) -> Record {
        Record {
            name: name.into(),
            ttl: 300,
            data,
        }
    }

    fn owned(i: u8) -> Owned {
        let name = format!("h{i}.z.");
        Owned {
            holder: format!("sw/{i}"),
            records: vec![rec(
                &name,
                Data::Aaaa(format!("2001:db8::{i}").parse().unwrap()),
            )],
            name,
        }
    }

    fn mark(name: &str, site: &str, holder: &str) -> Record {
        rec(
            &registry_name(name),
            Data::Txt(registry_value(site, holder, &[AAAA])),
        )
    }

    /// What a server does with one update: nothing unless its prerequisites hold.
    fn apply(zone: &mut Vec<Record>, c: &Change) {
        let at = |z: &Vec<Record>, n: &str, t: u16| -> Vec<Record> {
            z.iter()
                .filter(|r| r.name == n && r.data.rtype() == t)
                .cloned()
                .collect()
        };
        let clear = |z: &mut Vec<Record>, n: &str, types: &[u16]| {
            z.retain(|r| !(r.name == n && types.contains(&r.data.rtype())));
            z.retain(|r| r.name != registry_name(n));
        };
        match c {
            Change::Create { owned } => {
                let free = zone.iter().all(|r| r.name != registry_name(&owned.name))
                    && owned
                        .records
                        .iter()
                        .all(|w| at(zone, &owned.name, w.data.rtype()).is_empty());
                if free {
                    zone.push(mark(&owned.name, SITE, &owned.holder));
                    zone.extend(owned.records.iter().cloned());
                }
            }
            Change::Replace {
                owned,
                mark: m,
                clear: types,
                ..
            } => {
                if marked(zone, &owned.name, m) {
                    clear(zone, &owned.name, types);
                    zone.push(mark(&owned.name, SITE, &owned.holder));
                    zone.extend(owned.records.iter().cloned());
                }
            }
            Change::Delete {
                name,
                mark: m,
                clear: types,
                ..
            } => {
                if marked(zone, name, m) {
                    clear(zone, name, types);
                }
            }
        }
    }

    /// Whether `name`'s mark in `zone` reads `m` and nothing else.
    fn marked(zone: &[Record], name: &str, m: &str) -> bool {
        let marks: Vec<&Record> = zone
            .iter()
            .filter(|r| r.name == registry_name(name) && r.data.rtype() == TXT)
            .collect();
        marks == [&rec(&registry_name(name), Data::Txt(m.to_string()))]
    }

    #[test]
    fn missing_stale_and_foreign_names_are_told_apart() {
        let wanted = vec![owned(1), owned(2), owned(3), owned(4), owned(5)];
        let actual = vec![
            // h1: nothing; h2: ours, as wanted; h3: ours, an old address;
            // h4: someone's AAAA; h5: another site's mark; h9: ours, unwanted.
            mark("h2.z.", SITE, "sw/2"),
            owned(2).records[0].clone(),
            mark("h3.z.", SITE, "sw/3"),
            rec("h3.z.", Data::Aaaa("2001:db8::99".parse().unwrap())),
            rec("h4.z.", Data::Aaaa("2001:db8::44".parse().unwrap())),
            rec(
                "h4.z.",
                Data::Other {
                    rtype: 15,
                    rdata: "10 mx.z.".into(),
                },
            ),
            mark("h5.z.", "s2", "sw/5"),
            mark("h9.z.", SITE, "sw/9"),
            rec("h9.z.", Data::Ptr("x.z.".into())),
        ];
        let d = drift("z.", SITE, &wanted, &actual);
        assert_eq!(d.in_sync, 1);
        let names: Vec<(&str, &str)> = d.changes.iter().map(|c| (c.name(), c.kind())).collect();
        assert_eq!(
            names,
            [("h1.z.", "missing"), ("h3.z.", "stale"), ("h9.z.", "stale")]
        );
        let conflicts: Vec<&str> = d.conflicts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(conflicts, ["h4.z.", "h5.z."]);
        assert_eq!(d.conflicts[0].found.len(), 1, "only the AAAA is in the way");
        assert!(d.conflicts[1].reason.contains("site=s2"));
    }

    #[test]
    fn a_foreign_record_of_another_type_is_not_in_the_way() {
        let w = owned(1);
        let actual = vec![rec("h1.z.", Data::Ptr("elsewhere.".into()))];
        let d = drift("z.", SITE, std::slice::from_ref(&w), &actual);
        assert!(matches!(d.changes[..], [Change::Create { .. }]));
        let mut zone = actual.clone();
        apply(&mut zone, &d.changes[0]);
        let again = drift("z.", SITE, std::slice::from_ref(&w), &zone);
        assert_eq!(again.in_sync, 1, "{again:?}");
        assert!(zone.contains(&actual[0]), "the PTR is someone else's");
    }

    fn zone_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<Record>)> {
        let record = (0u8..8, 0u8..5, 0u8..3).prop_map(|(h, kind, v)| {
            let name = format!("h{h}.z.");
            match kind {
                0 => mark(&name, SITE, &format!("sw/{h}")),
                1 => mark(&name, "other", "x"),
                2 => rec(
                    &name,
                    Data::Aaaa(format!("2001:db8::{}", h + v * 16).parse().unwrap()),
                ),
                3 => rec(&name, Data::A(std::net::Ipv4Addr::new(192, 0, 2, v))),
                _ => rec(&name, Data::Txt(format!("v{v}"))),
            }
        });
        (
            proptest::collection::vec(0u8..8, 0..8),
            proptest::collection::vec(record, 0..20),
        )
    }

    proptest! {
        /// Applying the drift's changes leaves nothing to do but the conflicts, and
        /// never touches a record at a name another holds.
        #[test]
        fn reconciling_converges_and_spares_what_others_hold((want, mut zone) in zone_strategy()) {
            zone.sort();
            zone.dedup();
            let mut wanted: Vec<Owned> = want.iter().map(|i| owned(*i)).collect();
            wanted.sort_by(|a, b| a.name.cmp(&b.name));
            wanted.dedup_by(|a, b| a.name == b.name);
            let first = drift("z.", SITE, &wanted, &zone);
            let foreign: Vec<Record> = zone
                .iter()
                .filter(|r| first.conflicts.iter().any(|c| c.name == r.name || registry_name(&c.name) == r.name))
                .cloned()
                .collect();
            let mut after = zone.clone();
            for c in &first.changes {
                apply(&mut after, c);
            }
            let second = drift("z.", SITE, &wanted, &after);
            prop_assert!(second.changes.is_empty(), "{:?}", second.changes);
            prop_assert_eq!(second.conflicts.len(), first.conflicts.len());
            for r in foreign {
                prop_assert!(after.contains(&r), "{} was touched", r);
            }
        }
    }
}
