//! TFTP packets (RFC 1350) with option extension (RFC 2347: blksize 2348, timeout
//! and tsize 2349, windowsize 7440). `Repr::parse` and `Repr::emit` are symmetric,
//! after smoltcp's wire module: parse never panics and emit(parse(x)) == x for every
//! packet pirack itself produces.

use std::fmt;

pub const RRQ: u16 = 1;
pub const WRQ: u16 = 2;
pub const DATA: u16 = 3;
pub const ACK: u16 = 4;
pub const ERROR: u16 = 5;
pub const OACK: u16 = 6;

/// RFC 2348 limits.
pub const MIN_BLKSIZE: u16 = 8;
pub const MAX_BLKSIZE: u16 = 65464;
/// Longest file name pirack accepts (the Pi's are far shorter).
pub const MAX_NAME: usize = 255;

/// The options of a request or an OACK; unknown options are dropped, as RFC 2347
/// tells a server to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub blksize: Option<u16>,
    pub tsize: Option<u64>,
    /// Retransmission timeout in seconds.
    pub timeout: Option<u8>,
    pub windowsize: Option<u16>,
}

impl Options {
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }
}

/// Standard TFTP error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Undefined,
    FileNotFound,
    AccessViolation,
    DiskFull,
    IllegalOperation,
    UnknownTid,
    FileExists,
    NoSuchUser,
    /// RFC 2347: the client refuses the negotiated options.
    OptionRefused,
    Other(u16),
}

impl ErrorCode {
    pub fn from_u16(v: u16) -> ErrorCode {
        use ErrorCode::*;
        match v {
            0 => Undefined,
            1 => FileNotFound,
            2 => AccessViolation,
            3 => DiskFull,
            4 => IllegalOperation,
            5 => UnknownTid,
            6 => FileExists,
            7 => NoSuchUser,
            8 => OptionRefused,
            n => Other(n),
        }
    }
    pub fn to_u16(self) -> u16 {
        use ErrorCode::*;
        match self {
            Undefined => 0,
            FileNotFound => 1,
            AccessViolation => 2,
            DiskFull => 3,
            IllegalOperation => 4,
            UnknownTid => 5,
            FileExists => 6,
            NoSuchUser => 7,
            OptionRefused => 8,
            Other(n) => n,
        }
    }
}

/// A TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr<'a> {
    Read {
        filename: &'a str,
        mode: &'a str,
        options: Options,
    },
    Write {
        filename: &'a str,
        mode: &'a str,
    },
    Data {
        block: u16,
        data: &'a [u8],
    },
    Ack {
        block: u16,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
    },
    OptionAck {
        options: Options,
    },
}

/// Why bytes are not a TFTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    Truncated,
    UnknownOpcode(u16),
    /// A string field missing its NUL, or not text.
    BadString,
    BadOption,
    NameTooLong,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated packet"),
            WireError::UnknownOpcode(o) => write!(f, "unknown opcode {o}"),
            WireError::BadString => write!(f, "malformed string field"),
            WireError::BadOption => write!(f, "malformed option"),
            WireError::NameTooLong => write!(f, "file name longer than {MAX_NAME} bytes"),
        }
    }
}

/// Splits off one NUL-terminated text field.
fn cstr(bytes: &[u8]) -> Result<(&str, &[u8]), WireError> {
    let end = bytes
        .iter()
        .position(|b| *b == 0)
        .ok_or(WireError::BadString)?;
    let s = std::str::from_utf8(&bytes[..end]).map_err(|_| WireError::BadString)?;
    Ok((s, &bytes[end + 1..]))
}

fn parse_options(mut rest: &[u8]) -> Result<Options, WireError> {
    let mut o = Options::default();
    while !rest.is_empty() {
        let (name, r) = cstr(rest)?;
        let (value, r) = cstr(r).map_err(|_| WireError::BadOption)?;
        rest = r;
        let num = || value.parse::<u64>().map_err(|_| WireError::BadOption);
        match name.to_ascii_lowercase().as_str() {
            "blksize" => o.blksize = Some(num()?.min(u64::from(u16::MAX)) as u16),
            "tsize" => o.tsize = Some(num()?),
            "timeout" => o.timeout = Some(num()?.min(255) as u8),
            "windowsize" => o.windowsize = Some(num()?.min(u64::from(u16::MAX)) as u16),
            _ => {}
        }
    }
    Ok(o)
}

impl<'a> Repr<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Repr<'a>, WireError> {
        if bytes.len() < 2 {
            return Err(WireError::Truncated);
        }
        let op = u16::from_be_bytes([bytes[0], bytes[1]]);
        let body = &bytes[2..];
        let u16_at = |b: &[u8]| -> Result<u16, WireError> {
            Ok(u16::from_be_bytes(
                b.get(..2)
                    .ok_or(WireError::Truncated)?
                    .try_into()
                    .expect("2 bytes"),
            ))
        };
        match op {
            RRQ | WRQ => {
                let (filename, r) = cstr(body)?;
                if filename.len() > MAX_NAME {
                    return Err(WireError::NameTooLong);
                }
                let (mode, r) = cstr(r)?;
                if op == WRQ {
                    return Ok(Repr::Write { filename, mode });
                }
                Ok(Repr::Read {
                    filename,
                    mode,
                    options: parse_options(r)?,
                })
            }
            DATA => Ok(Repr::Data {
                block: u16_at(body)?,
                data: &body[2..],
            }),
            ACK => Ok(Repr::Ack {
                block: u16_at(body)?,
            }),
            ERROR => {
                let code = ErrorCode::from_u16(u16_at(body)?);
                // Some clients omit the message's NUL; accept what is there.
                let text = &body[2..];
                let text = &text[..text.iter().position(|b| *b == 0).unwrap_or(text.len())];
                let message = std::str::from_utf8(text).map_err(|_| WireError::BadString)?;
                Ok(Repr::Error { code, message })
            }
            OACK => Ok(Repr::OptionAck {
                options: parse_options(body)?,
            }),
            other => Err(WireError::UnknownOpcode(other)),
        }
    }

    /// Appends the packet's bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        let put_options = |out: &mut Vec<u8>, o: &Options| {
            let mut put = |k: &str, v: Option<u64>| {
                if let Some(v) = v {
                    put_str(out, k);
                    put_str(out, &v.to_string());
                }
            };
            put("blksize", o.blksize.map(u64::from));
            put("tsize", o.tsize);
            put("timeout", o.timeout.map(u64::from));
            put("windowsize", o.windowsize.map(u64::from));
        };
        match self {
            Repr::Read {
                filename,
                mode,
                options,
            } => {
                out.extend_from_slice(&RRQ.to_be_bytes());
                put_str(out, filename);
                put_str(out, mode);
                put_options(out, options);
            }
            Repr::Write { filename, mode } => {
                out.extend_from_slice(&WRQ.to_be_bytes());
                put_str(out, filename);
                put_str(out, mode);
            }
            Repr::Data { block, data } => {
                out.extend_from_slice(&DATA.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
                out.extend_from_slice(data);
            }
            Repr::Ack { block } => {
                out.extend_from_slice(&ACK.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Repr::Error { code, message } => {
                out.extend_from_slice(&ERROR.to_be_bytes());
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                put_str(out, message);
            }
            Repr::OptionAck { options } => {
                out.extend_from_slice(&OACK.to_be_bytes());
                put_options(out, options);
            }
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_pi_firmware_request() {
        // FW#1041: RRQ "e1ffda08/start.elf" octet tsize 0
        let bytes = b"\x00\x01e1ffda08/start.elf\x00octet\x00tsize\x000\x00";
        let r = Repr::parse(bytes).unwrap();
        assert_eq!(
            r,
            Repr::Read {
                filename: "e1ffda08/start.elf",
                mode: "octet",
                options: Options {
                    tsize: Some(0),
                    ..Options::default()
                }
            }
        );
        assert_eq!(r.to_vec(), bytes);
        // The ROM's RRQ carries no options: 21 bytes.
        assert_eq!(
            Repr::Read {
                filename: "bootcode.bin",
                mode: "octet",
                options: Options::default()
            }
            .to_vec()
            .len(),
            21
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Repr::parse(b""), Err(WireError::Truncated));
        assert_eq!(Repr::parse(b"\x00\x09"), Err(WireError::UnknownOpcode(9)));
        assert_eq!(Repr::parse(b"\x00\x01name"), Err(WireError::BadString));
        assert_eq!(
            Repr::parse(b"\x00\x01n\x00octet\x00tsize\x00"),
            Err(WireError::BadOption)
        );
        assert_eq!(
            Repr::parse(b"\x00\x01n\x00octet\x00tsize\x00x\x00"),
            Err(WireError::BadOption)
        );
        assert_eq!(Repr::parse(b"\x00\x04\x01"), Err(WireError::Truncated));
        let long = [b"\x00\x01".as_slice(), &[b'a'; 300], b"\x00octet\x00"].concat();
        assert_eq!(Repr::parse(&long), Err(WireError::NameTooLong));
    }

    fn any_options() -> impl Strategy<Value = Options> {
        (
            any::<Option<u16>>(),
            any::<Option<u64>>(),
            any::<Option<u8>>(),
            any::<Option<u16>>(),
        )
            .prop_map(|(blksize, tsize, timeout, windowsize)| Options {
                blksize,
                tsize,
                timeout,
                windowsize,
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = Repr::parse(&bytes);
        }

        #[test]
        fn emit_then_parse_is_identity(
            name in "[a-z0-9/._-]{1,64}", block: u16,
            data in prop::collection::vec(any::<u8>(), 0..600),
            msg in "[ -~]{0,40}", code in 0u16..20, options in any_options(),
        ) {
            let reprs = [
                Repr::Read { filename: &name, mode: "octet", options },
                Repr::Write { filename: &name, mode: "netascii" },
                Repr::Data { block, data: &data },
                Repr::Ack { block },
                Repr::Error { code: ErrorCode::from_u16(code), message: &msg },
                Repr::OptionAck { options },
            ];
            for r in reprs {
                let bytes = r.to_vec();
                prop_assert_eq!(Repr::parse(&bytes), Ok(r));
            }
        }
    }
}
