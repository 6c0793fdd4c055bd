//! Resolving ANAME targets to addresses as the ANAME draft asks: AAAA and A
//! apart, CNAMEs followed up to a bound, a loop an error, NXDOMAIN an error (so
//! the caller keeps the old addresses rather than blanking the name). A name in
//! the site's own zones is asked of the site's servers, which hold pirack's
//! records (a slot's AAAA, the proxy's A); any other of the configured resolvers,
//! so a customer's target never makes the site's servers query the world.

use crate::wire;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use pirack_core::dns::aname::{Addresses, allowed};
use pirack_core::dns::names::{absolute, in_zone};
use pirack_core::inventory::SiteDns;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// An answer's size that crosses no path MTU (DNS flag day 2020).
const PAYLOAD: u16 = 1232;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{0} does not exist (NXDOMAIN)")]
    NxDomain(String),
    #[error("{0} has no AAAA or A records")]
    NoAddress(String),
    #[error("a CNAME loop: {}", .0.join(" → "))]
    Loop(Vec<String>),
    #[error("more than {1} names in the chain from {0}")]
    TooLong(String, usize),
    #[error("{name}: {why}")]
    Server { name: String, why: String },
    #[error("{0} is outside the site's zones and not allowed by dns.aname.allow")]
    NotAllowed(String),
}

/// A target's addresses and the names followed to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub addresses: Addresses,
    /// The target, then each CNAME's target.
    pub chain: Vec<String>,
}

/// One server's answer to one question.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: ResponseCode,
    pub message: Message,
}

pub struct Resolver {
    own: Vec<SocketAddr>,
    others: Vec<SocketAddr>,
    /// Names outside the site's zones that may be asked about (a CNAME in a
    /// customer's zone must not lead pirack to ask about anything).
    allow: Vec<String>,
    timeout: Duration,
    max_chain: usize,
}

/// What one address type's chase found.
struct Chased<T> {
    addrs: Vec<T>,
    ttl: u32,
    chain: Vec<String>,
}

impl Resolver {
    pub fn new(dns: &SiteDns) -> Resolver {
        Resolver {
            own: dns.servers.clone(),
            others: dns.aname.resolvers.clone(),
            allow: dns.aname.allow.clone(),
            timeout: dns.aname.timeout,
            max_chain: dns.aname.max_chain,
        }
    }

    /// `target`'s addresses: both types asked at once; a type the target lacks
    /// is empty, but a target with neither is an error. Names in `zones` (the
    /// site's) are asked of the site's servers.
    pub async fn resolve(&self, target: &str, zones: &[String]) -> Result<Resolved, ResolveError> {
        let target = absolute(target);
        let (v6, v4) = tokio::join!(
            self.chase(&target, zones, RecordType::AAAA, |d| match d {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            }),
            self.chase(&target, zones, RecordType::A, |d| match d {
                RData::A(a) => Some(a.0),
                _ => None,
            }),
        );
        let (v6, v4): (Chased<Ipv6Addr>, Chased<Ipv4Addr>) = (v6?, v4?);
        if v6.addrs.is_empty() && v4.addrs.is_empty() {
            return Err(ResolveError::NoAddress(target));
        }
        let chain = if v6.chain.len() >= v4.chain.len() {
            v6.chain
        } else {
            v4.chain
        };
        Ok(Resolved {
            addresses: Addresses {
                aaaa: v6.addrs,
                a: v4.addrs,
                ttl: v6.ttl.min(v4.ttl),
            },
            chain,
        })
    }

    /// Follows `target` to its records of `rtype`, asking again where a CNAME
    /// leads out of an answer. An empty type's TTL does not bound the others'.
    async fn chase<T>(
        &self,
        target: &str,
        zones: &[String],
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Chased<T>, ResolveError> {
        let mut chain = vec![target.to_string()];
        let mut ttl = u32::MAX;
        let mut asked = target.to_string();
        loop {
            let servers = self.servers_for(&asked, zones)?;
            let answer = ask(servers, &asked, rtype, self.timeout).await?;
            match answer.code {
                ResponseCode::NoError => {}
                ResponseCode::NXDomain => return Err(ResolveError::NxDomain(asked)),
                code => {
                    return Err(ResolveError::Server {
                        name: asked,
                        why: format!("answered {code}"),
                    });
                }
            }
            let mut at = asked.clone();
            loop {
                let here = answer
                    .message
                    .answers
                    .iter()
                    .filter(|r| absolute(&r.name.to_ascii()) == at);
                let mut addrs = Vec::new();
                let mut next = None;
                for r in here {
                    if let Some(a) = pick(&r.data) {
                        addrs.push(a);
                        ttl = ttl.min(r.ttl);
                    } else if let RData::CNAME(c) = &r.data {
                        next = Some((absolute(&c.0.to_ascii()), r.ttl));
                    }
                }
                if !addrs.is_empty() {
                    return Ok(Chased { addrs, ttl, chain });
                }
                let Some((to, cname_ttl)) = next else { break };
                if chain.contains(&to) {
                    chain.push(to);
                    return Err(ResolveError::Loop(chain));
                }
                chain.push(to.clone());
                if chain.len() > self.max_chain + 1 {
                    return Err(ResolveError::TooLong(target.to_string(), self.max_chain));
                }
                ttl = ttl.min(cname_ttl);
                at = to;
            }
            if at == asked {
                // NODATA: this type is empty.
                return Ok(Chased {
                    addrs: Vec::new(),
                    ttl,
                    chain,
                });
            }
            asked = at;
        }
    }

    fn servers_for(&self, name: &str, zones: &[String]) -> Result<&[SocketAddr], ResolveError> {
        if zones.iter().any(|z| in_zone(name, z)) {
            Ok(&self.own)
        } else if self.others.is_empty() || !allowed(name, &self.allow) {
            Err(ResolveError::NotAllowed(name.to_string()))
        } else {
            Ok(&self.others)
        }
    }
}

/// Asks `servers` in turn until one answers with something other than a
/// failure of its own (SERVFAIL, REFUSED).
pub async fn ask(
    servers: &[SocketAddr],
    name: &str,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Answer, ResolveError> {
    let mut why = Vec::new();
    for server in servers {
        match query(*server, name, rtype, timeout).await {
            Ok(a) if !matches!(a.code, ResponseCode::ServFail | ResponseCode::Refused) => {
                return Ok(a);
            }
            Ok(a) => why.push(format!("{server} answered {}", a.code)),
            Err(e) => why.push(format!("{server}: {e}")),
        }
    }
    Err(ResolveError::Server {
        name: name.to_string(),
        why: why.join("; "),
    })
}

/// One question to one server over UDP (TCP when the answer is truncated). An
/// answer is taken only with the question's id and question: anything else on
/// the socket (a spoofed reply) is dropped.
pub async fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Answer, String> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        wire::name(name).map_err(|e| e.to_string())?,
        rtype,
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(PAYLOAD);
    m.set_edns(edns);
    let bytes = m.to_vec().map_err(|e| e.to_string())?;
    let exchange = async {
        let reply = udp(server, &bytes, &m).await?;
        if reply.metadata.truncation {
            tcp(server, &bytes, &m).await
        } else {
            Ok(reply)
        }
    };
    let message = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))??;
    Ok(Answer {
        code: message.metadata.response_code,
        message,
    })
}

async fn udp(server: SocketAddr, bytes: &[u8], asked: &Message) -> Result<Message, String> {
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; usize::from(PAYLOAD).max(512) * 2];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
        if let Some(reply) = reply_to(asked, &buf[..n]) {
            return Ok(reply);
        }
    }
}

async fn tcp(server: SocketAddr, bytes: &[u8], asked: &Message) -> Result<Message, String> {
    let mut s = TcpStream::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "question too long".to_string())?;
    s.write_all(&len.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(bytes).await.map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    reply_to(asked, &buf).ok_or_else(|| "an answer to another question".to_string())
}

/// `bytes` as the reply to `asked`, if it is one.
fn reply_to(asked: &Message, bytes: &[u8]) -> Option<Message> {
    let reply = Message::from_vec(bytes).ok()?;
    let same = reply.metadata.id == asked.metadata.id
        && reply.queries.len() == 1
        && reply.queries[0]
            .name()
            .to_ascii()
            .eq_ignore_ascii_case(&asked.queries[0].name().to_ascii())
        && reply.queries[0].query_type() == asked.queries[0].query_type();
    same.then_some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever arrives on the socket is taken as a reply or dropped, never a panic.
        #[test]
        fn garbage_is_never_a_reply(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut m = Message::query();
            m.add_query(Query::query(wire::name("example.com.").unwrap(), RecordType::A));
            let _ = reply_to(&m, &bytes);
        }
    }

    #[test]
    fn only_the_question_asked_is_a_reply() {
        let mut m = Message::query();
        m.add_query(Query::query(
            wire::name("example.com.").unwrap(),
            RecordType::A,
        ));
        let mut r = m.clone();
        assert!(reply_to(&m, &r.to_vec().unwrap()).is_some());
        r.metadata.id = m.metadata.id.wrapping_add(1);
        assert!(reply_to(&m, &r.to_vec().unwrap()).is_none());
        let mut other = m.clone();
        other.queries[0] = Query::query(wire::name("example.org.").unwrap(), RecordType::A);
        assert!(reply_to(&m, &other.to_vec().unwrap()).is_none());
    }
}
