//! pirack-core's records and changes as hickory's records and RFC 2136 messages.

use crate::DnsError;
use hickory_proto::op::{Message, OpCode, Query, UpdateMessage};
use hickory_proto::rr::rdata::{A, AAAA, PTR, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record as Rr, RecordType};
use pirack_core::dns::drift::Change;
use pirack_core::dns::names::absolute;
use pirack_core::dns::{Data, Record, TXT as TXT_TYPE, registry_name, registry_value, types_of};

pub fn name(text: &str) -> Result<Name, DnsError> {
    Name::from_ascii(text).map_err(|_| DnsError::Name(text.to_string()))
}

/// A record to write.
pub fn to_wire(r: &Record) -> Result<Rr, DnsError> {
    let data = match &r.data {
        Data::A(a) => RData::A(A(*a)),
        Data::Aaaa(a) => RData::AAAA(AAAA(*a)),
        Data::Ptr(n) => RData::PTR(PTR(name(n)?)),
        Data::Txt(t) => rdata(TXT_TYPE, t)?,
        Data::Other { rtype, rdata: text } => rdata(*rtype, text)?,
    };
    Ok(Rr::from_rdata(name(&r.name)?, r.ttl, data))
}

/// A record of type `rtype` at `name` from its zone-file text (a TXT's text is
/// taken as it is), in the form a zone transfer reads it back.
pub fn parse(name_text: &str, ttl: u32, rtype: u16, text: &str) -> Result<Record, DnsError> {
    let data = rdata(rtype, text)?;
    Ok(from_wire(&Rr::from_rdata(name(name_text)?, ttl, data)))
}

/// Record data of type `rtype` from its zone-file text; a TXT's text as it is.
fn rdata(rtype: u16, text: &str) -> Result<RData, DnsError> {
    if rtype == TXT_TYPE {
        return Ok(RData::TXT(TXT::new(vec![text.to_string()])));
    }
    let rtype = RecordType::from(rtype);
    RData::try_from_str(rtype, text).map_err(|e| DnsError::Type(format!("{rtype} `{text}`: {e}")))
}

/// A record read from a zone.
pub fn from_wire(r: &Rr) -> Record {
    let data = match &r.data {
        RData::A(a) => Data::A(a.0),
        RData::AAAA(a) => Data::Aaaa(a.0),
        RData::PTR(p) => Data::Ptr(absolute(&p.0.to_ascii())),
        RData::TXT(t) => Data::Txt(
            t.txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect(),
        ),
        other => Data::Other {
            rtype: u16::from(r.record_type()),
            rdata: other.to_string(),
        },
    };
    Record {
        name: absolute(&r.name.to_ascii()),
        ttl: r.ttl,
        data,
    }
}

/// One UPDATE for `zone` carrying `changes`: all apply, or none.
pub fn update(zone: &str, site: &str, changes: &[&Change]) -> Result<Message, DnsError> {
    let mut m = Message::query();
    m.metadata.op_code = OpCode::Update;
    m.metadata.recursion_desired = false;
    m.add_zone(Query::query(name(zone)?, RecordType::SOA));
    for c in changes {
        change(&mut m, site, c)?;
    }
    Ok(m)
}

fn change(m: &mut Message, site: &str, c: &Change) -> Result<(), DnsError> {
    match c {
        Change::Create { owned } => {
            let at = name(&owned.name)?;
            m.add_pre_requisite(empty(
                name(&registry_name(&owned.name))?,
                RecordType::ANY,
                DNSClass::NONE,
            ));
            for t in types_of(&owned.records) {
                m.add_pre_requisite(empty(at.clone(), RecordType::from(t), DNSClass::NONE));
            }
            add(m, site, &owned.name, &owned.holder, &owned.records)?;
        }
        Change::Replace {
            owned,
            mark,
            clear: types,
            ..
        } => {
            m.add_pre_requisite(marked(&owned.name, mark)?);
            clear(m, &owned.name, types)?;
            add(m, site, &owned.name, &owned.holder, &owned.records)?;
        }
        Change::Delete {
            name: n,
            mark,
            clear: types,
            ..
        } => {
            m.add_pre_requisite(marked(n, mark)?);
            clear(m, n, types)?;
        }
    }
    Ok(())
}

/// An RR with no data: a prerequisite or a deletion, told apart by its class.
fn empty(name: Name, rtype: RecordType, class: DNSClass) -> Rr {
    let mut r = Rr::update0(name, 0, rtype);
    r.dns_class = class;
    r
}

/// The prerequisite that the name's mark reads `mark` and nothing else.
fn marked(at: &str, mark: &str) -> Result<Rr, DnsError> {
    Ok(Rr::from_rdata(
        name(&registry_name(at))?,
        0,
        RData::TXT(TXT::new(vec![mark.to_string()])),
    ))
}

/// Deletes the `types` pirack wrote at `at`, and its mark.
fn clear(m: &mut Message, at: &str, types: &[u16]) -> Result<(), DnsError> {
    let n = name(at)?;
    for t in types {
        m.add_update(empty(n.clone(), RecordType::from(*t), DNSClass::ANY));
    }
    m.add_update(empty(
        name(&registry_name(at))?,
        RecordType::TXT,
        DNSClass::ANY,
    ));
    Ok(())
}

fn add(
    m: &mut Message,
    site: &str,
    at: &str,
    holder: &str,
    records: &[Record],
) -> Result<(), DnsError> {
    let ttl = records.first().map_or(300, |r| r.ttl);
    m.add_update(Rr::from_rdata(
        name(&registry_name(at))?,
        ttl,
        RData::TXT(TXT::new(vec![registry_value(
            site,
            holder,
            &types_of(records),
        )])),
    ));
    for r in records {
        m.add_update(to_wire(r)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
    use pirack_core::dns::want::Owned;
    use proptest::prelude::*;

    fn data() -> impl Strategy<Value = Data> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| Data::A(o.into())),
            any::<[u8; 16]>().prop_map(|o| Data::Aaaa(o.into())),
            "[a-z][a-z0-9]{0,19}(\\.[a-z][a-z0-9]{0,19}){0,3}"
                .prop_map(|n| Data::Ptr(absolute(&n))),
            "[ -~]{0,200}".prop_map(Data::Txt),
        ]
    }

    proptest! {
        /// What pirack writes reads back the same from a zone.
        #[test]
        fn records_survive_the_wire(d in data(), ttl in 0u32..1_000_000) {
            let r = Record { name: "x.pi.example.net.".into(), ttl, data: d };
            prop_assert_eq!(from_wire(&to_wire(&r).unwrap()), r);
        }

        /// An update message encodes and decodes to the same message.
        #[test]
        fn updates_survive_encoding(d in data()) {
            let name = "x.pi.example.net.".to_string();
            let owned = Owned {
                name: name.clone(),
                holder: "sw-a/1".into(),
                records: vec![Record { name, ttl: 300, data: d }],
            };
            let m = update("pi.example.net.", "s", &[&Change::Create { owned }]).unwrap();
            let bytes = m.to_bytes().unwrap();
            let back = Message::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        }

        /// Garbage is refused without a panic.
        #[test]
        fn garbage_is_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Message::from_bytes(&bytes);
        }
    }
}
