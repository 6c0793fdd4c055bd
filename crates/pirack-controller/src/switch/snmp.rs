//! One SNMP session per switch, on snmp2's `AsyncSession`, with what that session
//! lacks: a timeout and retries per request, a fresh socket after any lost or late
//! reply (a late reply would otherwise fail the next request with a request-id
//! mismatch), owned values, and errors that say what went wrong in switch terms.

use pirack_core::inventory::model::{AuthProtocol, PrivProtocol, SecretError, Snmp};
use pirack_core::switch::Oid;
use snmp2::v3;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// GETBULK repetitions per request when walking a table.
const BULK_REPETITIONS: u32 = 24;
/// Varbinds per GET or SET request: well under any agent's PDU size limit.
pub const MAX_VARBINDS: usize = 32;

/// A value as it came off the wire, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    /// Unsigned32 and Gauge32 share one tag.
    Unsigned(u32),
    Counter32(u32),
    Counter64(u64),
    Timeticks(u32),
    Octets(Vec<u8>),
    Oid(Oid),
    IpAddress([u8; 4]),
    Null,
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    /// What this value is, in the words an SNMP tool would print.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Integer(_) => "INTEGER",
            Value::Unsigned(_) => "Gauge32/Unsigned32",
            Value::Counter32(_) => "Counter32",
            Value::Counter64(_) => "Counter64",
            Value::Timeticks(_) => "TimeTicks",
            Value::Octets(_) => "OCTET STRING",
            Value::Oid(_) => "OBJECT IDENTIFIER",
            Value::IpAddress(_) => "IpAddress",
            Value::Null => "NULL",
            Value::NoSuchObject => "noSuchObject",
            Value::NoSuchInstance => "noSuchInstance",
            Value::EndOfMibView => "endOfMibView",
        }
    }

    fn from_wire(v: &snmp2::Value<'_>) -> Result<Value, String> {
        Ok(match v {
            snmp2::Value::Integer(i) => Value::Integer(*i),
            snmp2::Value::Unsigned32(u) => Value::Unsigned(*u),
            snmp2::Value::Counter32(u) => Value::Counter32(*u),
            snmp2::Value::Counter64(u) => Value::Counter64(*u),
            snmp2::Value::Timeticks(u) => Value::Timeticks(*u),
            snmp2::Value::OctetString(b) => Value::Octets(b.to_vec()),
            snmp2::Value::ObjectIdentifier(o) => Value::Oid(oid_from_wire(o)?),
            snmp2::Value::IpAddress(a) => Value::IpAddress(*a),
            snmp2::Value::Null => Value::Null,
            snmp2::Value::NoSuchObject => Value::NoSuchObject,
            snmp2::Value::NoSuchInstance => Value::NoSuchInstance,
            snmp2::Value::EndOfMibView => Value::EndOfMibView,
            other => return Err(format!("unexpected {other:?} in a varbind")),
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "INTEGER {i}"),
            Value::Unsigned(u) => write!(f, "Gauge32 {u}"),
            Value::Counter32(u) => write!(f, "Counter32 {u}"),
            Value::Counter64(u) => write!(f, "Counter64 {u}"),
            Value::Timeticks(u) => write!(f, "TimeTicks {u}"),
            Value::Octets(b) => match std::str::from_utf8(b) {
                Ok(s) if s.chars().all(|c| !c.is_control()) => write!(f, "STRING {s:?}"),
                _ => write!(f, "Hex-STRING {}", hex(b)),
            },
            Value::Oid(o) => write!(f, "OID {o}"),
            Value::IpAddress(a) => write!(f, "IpAddress {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            other => f.write_str(other.kind()),
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One (OID, value) pair of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Varbind {
    pub oid: Oid,
    pub value: Value,
}

fn oid_from_wire(o: &snmp2::Oid<'_>) -> Result<Oid, String> {
    let arcs = o.iter().ok_or("an OID arc beyond 64 bits")?;
    arcs.map(|a| u32::try_from(a).map_err(|_| format!("OID arc {a} beyond 32 bits")))
        .collect::<Result<Vec<_>, _>>()
        .map(Oid)
}

fn oid_to_wire(o: &Oid) -> Result<snmp2::Oid<'static>, SnmpErrorKind> {
    let arcs: Vec<u64> = o.0.iter().map(|a| u64::from(*a)).collect();
    snmp2::Oid::from(&arcs)
        .map_err(|_| SnmpErrorKind::BadRequest(format!("OID {o} cannot be encoded")))
}

/// The varbinds of a decoded reply, checked: an agent error names its varbind.
pub fn varbinds(pdu: &snmp2::Pdu<'_>, sent: &[Oid]) -> Result<Vec<Varbind>, SnmpErrorKind> {
    if pdu.error_status != 0 {
        let index = pdu.error_index as usize;
        let oid = index.checked_sub(1).and_then(|i| sent.get(i)).cloned();
        return Err(SnmpErrorKind::Refused {
            status: ErrorStatus(pdu.error_status),
            oid,
        });
    }
    pdu.varbinds
        .clone()
        .map(|(oid, value)| {
            Ok(Varbind {
                oid: oid_from_wire(&oid).map_err(SnmpErrorKind::Malformed)?,
                value: Value::from_wire(&value).map_err(SnmpErrorKind::Malformed)?,
            })
        })
        .collect()
}

/// An SNMP error-status (RFC 3416 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorStatus(pub u32);

impl fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 19] = [
            "noError",
            "tooBig",
            "noSuchName",
            "badValue",
            "readOnly",
            "genErr",
            "noAccess",
            "wrongType",
            "wrongLength",
            "wrongEncoding",
            "wrongValue",
            "noCreation",
            "inconsistentValue",
            "resourceUnavailable",
            "commitFailed",
            "undoFailed",
            "authorizationError",
            "notWritable",
            "inconsistentName",
        ];
        match NAMES.get(self.0 as usize) {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "error-status {}", self.0),
        }
    }
}

/// Where a switch is and how to speak to it.
#[derive(Clone)]
pub struct Target {
    pub switch: String,
    pub addr: SocketAddr,
    pub credentials: Snmp,
    pub timeout: Duration,
    pub retries: u32,
}

/// An SNMP failure, with the switch it happened on.
#[derive(Debug, thiserror::Error)]
#[error("switch {switch} ({addr}): {kind}")]
pub struct SnmpError {
    pub switch: String,
    pub addr: SocketAddr,
    pub kind: Box<SnmpErrorKind>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnmpErrorKind {
    #[error("no reply to {attempts} attempt(s) of {timeout:?} each ({hint})")]
    Timeout {
        attempts: u32,
        timeout: Duration,
        hint: &'static str,
    },
    #[error(
        "no reply to SET attempt {attempt}, and reading it back failed too ({read}): the switch may still apply it"
    )]
    SetUnknown { attempt: u32, read: String },
    #[error(
        "no reply to {attempts} SET attempt(s), and the switch does not read as asked: it reads {reads} (it may still apply the SET)"
    )]
    SetUnconfirmed { attempts: u32, reads: String },
    #[error("agent unreachable: nothing answers SNMP there (connection refused)")]
    Unreachable,
    #[error(
        "SNMPv3 authentication failed for user `{user}` ({detail}): check the auth and privacy passwords and protocols"
    )]
    Auth { user: String, detail: String },
    #[error("agent refused the request: {status}{}", oid.as_ref().map(|o| format!(" at {o}")).unwrap_or_default())]
    Refused {
        status: ErrorStatus,
        oid: Option<Oid>,
    },
    #[error("{object} ({oid}): {value} (no such object on this switch: wrong profile or port?)")]
    NoSuch {
        object: String,
        oid: Oid,
        value: &'static str,
    },
    #[error("{object} ({oid}): expected {expected}, got {got}")]
    WrongType {
        object: String,
        oid: Oid,
        expected: &'static str,
        got: String,
    },
    #[error("{object} ({oid}): unexpected value {got}: {why}")]
    Unexpected {
        object: String,
        oid: Oid,
        got: String,
        why: String,
    },
    #[error("malformed reply: {0}")]
    Malformed(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("SNMP secret: {0}")]
    Secret(#[from] SecretError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// One switch's session. Its methods take `&mut self`: the caller holds it behind a
/// lock, which serialises every operation on the switch.
pub struct Session {
    target: Target,
    live: Option<snmp2::AsyncSession>,
    next_id: i32,
    /// Requests sent (a request's retries not counted), for benchmarks.
    requests: u64,
}

enum Request<'a> {
    Get(&'a [Oid]),
    GetBulk(&'a Oid),
    Set(&'a [(Oid, Value)]),
}

impl Session {
    pub fn new(target: Target) -> Session {
        Session {
            target,
            live: None,
            next_id: 1,
            requests: 0,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn err(&self, kind: SnmpErrorKind) -> SnmpError {
        SnmpError {
            switch: self.target.switch.clone(),
            addr: self.target.addr,
            kind: Box::new(kind),
        }
    }

    /// GET of up to [`MAX_VARBINDS`] instances; the reply's varbinds in request order.
    pub async fn get(&mut self, oids: &[Oid]) -> Result<Vec<Varbind>, SnmpError> {
        let mut out = Vec::with_capacity(oids.len());
        for chunk in oids.chunks(MAX_VARBINDS) {
            let got = self.request(Request::Get(chunk)).await?;
            if got.len() != chunk.len() || got.iter().zip(chunk).any(|(v, o)| v.oid != *o) {
                return Err(self.err(SnmpErrorKind::Malformed(format!(
                    "{} varbind(s) in reply to a GET of {}, or in another order",
                    got.len(),
                    chunk.len()
                ))));
            }
            out.extend(got);
        }
        Ok(out)
    }

    /// SET of the given instances in one PDU (the agent applies all or none). A
    /// SET without a reply may still be applied by a slow agent, so it is never
    /// sent again blindly: the objects are read back first, and the SET is done if
    /// they read as asked, sent again if retries remain, or reported with what the
    /// switch reads now.
    pub async fn set(&mut self, binds: &[(Oid, Value)]) -> Result<(), SnmpError> {
        let started = std::time::Instant::now();
        let done = self.set_once(binds).await;
        self.measured("set", done.as_ref().err(), started);
        done
    }

    /// Records a request's latency and result in the switch's metrics.
    fn measured(&self, request: &str, failed: Option<&SnmpError>, started: std::time::Instant) {
        let result = match failed {
            None => "ok",
            Some(e) if matches!(*e.kind, SnmpErrorKind::Timeout { .. }) => "timeout",
            Some(_) => "error",
        };
        crate::metrics::global().switch_request(
            &self.target.switch,
            request,
            result,
            started.elapsed(),
        );
    }

    async fn set_once(&mut self, binds: &[(Oid, Value)]) -> Result<(), SnmpError> {
        self.requests += 1;
        let attempts = self.target.retries + 1;
        let oids: Vec<Oid> = binds.iter().map(|(o, _)| o.clone()).collect();
        let mut reads = Vec::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(self.target.timeout / 8).await;
            }
            match tokio::time::timeout(self.target.timeout, self.attempt(&Request::Set(binds)))
                .await
            {
                Ok(Ok(echoed)) => return self.check_echo(&echoed),
                Ok(Err(Retry::No(kind))) => return Err(self.err(kind)),
                Ok(Err(Retry::Yes(_))) | Err(_) => {}
            }
            // A lost or late reply must not meet the next request: new socket.
            self.live = None;
            let now = self.get(&oids).await.map_err(|e| {
                self.err(SnmpErrorKind::SetUnknown {
                    attempt: attempt + 1,
                    read: e.kind.to_string(),
                })
            })?;
            if binds
                .iter()
                .zip(&now)
                .all(|((_, want), vb)| applied(want, &vb.value))
            {
                return Ok(());
            }
            reads = now;
        }
        Err(self.err(SnmpErrorKind::SetUnconfirmed {
            attempts,
            reads: reads
                .iter()
                .map(|vb| format!("{} = {}", vb.oid, vb.value))
                .collect::<Vec<_>>()
                .join(", "),
        }))
    }

    /// Some agents answer a SET they did not apply with an exception value and no
    /// error-status.
    fn check_echo(&self, echoed: &[Varbind]) -> Result<(), SnmpError> {
        match echoed
            .iter()
            .find(|vb| matches!(vb.value, Value::NoSuchObject | Value::NoSuchInstance))
        {
            Some(vb) => Err(self.err(SnmpErrorKind::NoSuch {
                object: "the SET's object".into(),
                oid: vb.oid.clone(),
                value: vb.value.kind(),
            })),
            None => Ok(()),
        }
    }

    /// Every instance under `root`, by GETBULK.
    pub async fn walk(&mut self, root: &Oid) -> Result<Vec<Varbind>, SnmpError> {
        let mut out: Vec<Varbind> = Vec::new();
        let mut from = root.clone();
        loop {
            let page = self.request(Request::GetBulk(&from)).await?;
            if page.is_empty() {
                return Ok(out);
            }
            for vb in page {
                if !vb.oid.starts_with(root) || vb.value == Value::EndOfMibView {
                    return Ok(out);
                }
                if vb.oid <= from {
                    return Err(self.err(SnmpErrorKind::Malformed(format!(
                        "walk went backwards from {from} to {}",
                        vb.oid
                    ))));
                }
                from = vb.oid.clone();
                out.push(vb);
            }
        }
    }

    async fn request(&mut self, req: Request<'_>) -> Result<Vec<Varbind>, SnmpError> {
        let started = std::time::Instant::now();
        let kind = match req {
            Request::Get(_) => "get",
            Request::GetBulk(_) => "getbulk",
            Request::Set(_) => "set",
        };
        let done = self.request_once(req).await;
        self.measured(kind, done.as_ref().err(), started);
        done
    }

    async fn request_once(&mut self, req: Request<'_>) -> Result<Vec<Varbind>, SnmpError> {
        self.requests += 1;
        let attempts = self.target.retries + 1;
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(self.target.timeout / 8).await;
            }
            match tokio::time::timeout(self.target.timeout, self.attempt(&req)).await {
                Ok(Ok(vbs)) => return Ok(vbs),
                Ok(Err(Retry::No(kind))) => return Err(self.err(kind)),
                Ok(Err(Retry::Yes(kind))) => last = Some(kind),
                Err(_) => last = None,
            }
            // A lost or late reply must not meet the next request: new socket.
            self.live = None;
        }
        let kind = last.unwrap_or(SnmpErrorKind::Timeout {
            attempts,
            timeout: self.target.timeout,
            hint: match self.target.credentials {
                Snmp::V2c { .. } => {
                    "agent down or too slow, or a wrong community: v2c agents stay silent on one"
                }
                Snmp::V3 { .. } => {
                    "agent down or too slow, or a wrong privacy password: agents drop what they cannot decrypt"
                }
            },
        });
        Err(self.err(kind))
    }

    async fn attempt(&mut self, req: &Request<'_>) -> Result<Vec<Varbind>, Retry> {
        if self.live.is_none() {
            self.live = Some(self.connect().await?);
            // Request ids run on across sockets, so no old reply can match.
            self.next_id = self.next_id.wrapping_add(1000);
        }
        let session = self.live.as_mut().expect("connected above");
        let wire_oids = |oids: &[Oid]| oids.iter().map(oid_to_wire).collect::<Result<Vec<_>, _>>();
        let (reply, sent): (Result<snmp2::Pdu<'_>, snmp2::Error>, Vec<Oid>) = match req {
            Request::Get(oids) => {
                let w = wire_oids(oids).map_err(Retry::No)?;
                let refs: Vec<&snmp2::Oid<'_>> = w.iter().collect();
                (session.get_many(&refs).await, oids.to_vec())
            }
            Request::GetBulk(from) => {
                let w = oid_to_wire(from).map_err(Retry::No)?;
                (
                    session.getbulk(&[&w], 0, BULK_REPETITIONS).await,
                    vec![(*from).clone()],
                )
            }
            Request::Set(binds) => {
                let oids: Vec<Oid> = binds.iter().map(|(o, _)| o.clone()).collect();
                let w = wire_oids(&oids).map_err(Retry::No)?;
                let values: Vec<snmp2::Value<'_>> = binds
                    .iter()
                    .map(|(_, v)| to_wire_value(v))
                    .collect::<Result<_, _>>()
                    .map_err(Retry::No)?;
                let pairs: Vec<(&snmp2::Oid<'_>, snmp2::Value<'_>)> =
                    w.iter().zip(values).collect();
                (session.set(&pairs).await, oids)
            }
        };
        match reply {
            Ok(pdu) => varbinds(&pdu, &sent).map_err(Retry::No),
            Err(e) => Err(classify(e, &self.target)),
        }
    }

    async fn connect(&mut self) -> Result<snmp2::AsyncSession, Retry> {
        let addr = self.target.addr;
        let id = self.next_id;
        let io = |e: std::io::Error| Retry::No(SnmpErrorKind::Io(e));
        match &self.target.credentials {
            Snmp::V2c { community } => {
                let community = community.read().map_err(|e| Retry::No(e.into()))?;
                snmp2::AsyncSession::new_v2c(addr, &community, id)
                    .await
                    .map_err(io)
            }
            Snmp::V3 {
                user,
                auth,
                privacy,
            } => {
                let auth_pw = auth.password.read().map_err(|e| Retry::No(e.into()))?;
                let priv_pw = privacy.password.read().map_err(|e| Retry::No(e.into()))?;
                let security = v3::Security::new(user.as_bytes(), &auth_pw)
                    .with_auth_protocol(auth_protocol(auth.protocol))
                    .with_auth(v3::Auth::AuthPriv {
                        cipher: cipher(privacy.protocol),
                        privacy_password: priv_pw,
                    })
                    // net-snmp and most switches extend short AES-192/256 keys this way.
                    .with_key_extension_method(v3::KeyExtension::Blumenthal);
                let mut s = snmp2::AsyncSession::new_v3(addr, id, security)
                    .await
                    .map_err(io)?;
                s.init().await.map_err(|e| classify(e, &self.target))?;
                Ok(s)
            }
        }
    }
}

/// Whether a read-back shows a SET of `want` applied: the value itself, or for a
/// RowStatus, the state the asked action leads to (createAndGo → active,
/// createAndWait → notInService or notReady).
fn applied(want: &Value, read: &Value) -> bool {
    match (want, read) {
        (Value::Integer(4), Value::Integer(1)) => true,
        (Value::Integer(5), Value::Integer(2 | 3)) => true,
        _ => want == read,
    }
}

/// Whether a failed attempt is worth another.
enum Retry {
    Yes(SnmpErrorKind),
    No(SnmpErrorKind),
}

fn classify(e: snmp2::Error, target: &Target) -> Retry {
    use snmp2::Error as E;
    match e {
        // The socket's ICMP error: nothing listens (perhaps not yet, mid-reboot).
        E::Receive | E::Send => Retry::Yes(SnmpErrorKind::Unreachable),
        // A late reply to an earlier attempt, or a v3 clock resync: try again.
        E::RequestIdMismatch | E::AuthUpdated => {
            Retry::Yes(SnmpErrorKind::Malformed(e.to_string()))
        }
        E::AuthFailure(kind) => Retry::No(SnmpErrorKind::Auth {
            user: match &target.credentials {
                Snmp::V3 { user, .. } => user.clone(),
                Snmp::V2c { .. } => String::new(),
            },
            detail: format!("{kind:?}"),
        }),
        // A v3 agent answers bad credentials with a Report, not a Response.
        E::AsnWrongType if matches!(target.credentials, Snmp::V3 { .. }) => {
            Retry::No(SnmpErrorKind::Auth {
                user: match &target.credentials {
                    Snmp::V3 { user, .. } => user.clone(),
                    Snmp::V2c { .. } => String::new(),
                },
                detail: "the agent answered with a report".into(),
            })
        }
        other => Retry::No(SnmpErrorKind::Malformed(other.to_string())),
    }
}

fn to_wire_value(v: &Value) -> Result<snmp2::Value<'_>, SnmpErrorKind> {
    Ok(match v {
        Value::Integer(i) => snmp2::Value::Integer(*i),
        Value::Unsigned(u) => snmp2::Value::Unsigned32(*u),
        Value::Octets(b) => snmp2::Value::OctetString(b),
        other => {
            return Err(SnmpErrorKind::BadRequest(format!(
                "pirack never sets a {}",
                other.kind()
            )));
        }
    })
}

fn auth_protocol(p: AuthProtocol) -> v3::AuthProtocol {
    match p {
        AuthProtocol::Md5 => v3::AuthProtocol::Md5,
        AuthProtocol::Sha1 => v3::AuthProtocol::Sha1,
        AuthProtocol::Sha224 => v3::AuthProtocol::Sha224,
        AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
        AuthProtocol::Sha384 => v3::AuthProtocol::Sha384,
        AuthProtocol::Sha512 => v3::AuthProtocol::Sha512,
    }
}

fn cipher(p: PrivProtocol) -> v3::Cipher {
    match p {
        PrivProtocol::Des => v3::Cipher::Des,
        PrivProtocol::Aes128 => v3::Cipher::Aes128,
        PrivProtocol::Aes192 => v3::Cipher::Aes192,
        PrivProtocol::Aes256 => v3::Cipher::Aes256,
    }
}
