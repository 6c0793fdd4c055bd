//! The server name a TLS connection asks for, read from its ClientHello without
//! terminating TLS. A ClientHello may span several TCP segments (post-quantum
//! key shares make it about 2 KB) and several TLS records: the handshake bytes
//! are gathered from consecutive handshake records until the whole message is
//! there, then tls-parser reads it.

use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_message_handshake,
};

/// The most bytes read before giving up on a ClientHello.
pub const MAX_HELLO: usize = 16 * 1024;

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const RECORD_HEADER: usize = 5;

/// What the bytes so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// Not enough bytes yet.
    More,
    /// A whole ClientHello: its server name, if it gives one.
    Sni(Option<String>),
    /// Not a TLS ClientHello, or one beyond the bound.
    Bad(&'static str),
}

/// Reads `buf` (the connection's first bytes) as TLS records carrying a
/// ClientHello.
pub fn client_hello(buf: &[u8]) -> Hello {
    let mut handshake = Vec::new();
    let mut at = 0;
    loop {
        if let Some(len) = message_len(&handshake)
            && handshake.len() >= len
        {
            return sni(&handshake[..len]);
        }
        let Some(header) = buf.get(at..at + RECORD_HEADER) else {
            return more(buf);
        };
        if header[0] != HANDSHAKE {
            return Hello::Bad("not a TLS handshake record");
        }
        if header[1] != 3 {
            return Hello::Bad("not a TLS record version");
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_HELLO {
            return Hello::Bad("a TLS record of impossible length");
        }
        let Some(body) = buf.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else {
            return more(buf);
        };
        if handshake.is_empty() && body[0] != CLIENT_HELLO {
            return Hello::Bad("the first handshake message is not a ClientHello");
        }
        handshake.extend_from_slice(body);
        at += RECORD_HEADER + len;
    }
}

fn more(buf: &[u8]) -> Hello {
    if buf.len() >= MAX_HELLO {
        Hello::Bad("no whole ClientHello within 16 KB")
    } else {
        Hello::More
    }
}

/// The whole handshake message's length, once its header is there.
fn message_len(handshake: &[u8]) -> Option<usize> {
    let h = handshake.get(..4)?;
    Some(4 + (usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3])))
}

fn sni(message: &[u8]) -> Hello {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)))) =
        parse_tls_message_handshake(message)
    else {
        return Hello::Bad("a malformed ClientHello");
    };
    let Some(ext) = hello.ext else {
        return Hello::Sni(None);
    };
    let Ok((_, exts)) = parse_tls_client_hello_extensions(ext) else {
        return Hello::Bad("malformed ClientHello extensions");
    };
    for e in exts {
        if let TlsExtension::SNI(names) = e {
            let host = names
                .iter()
                .find(|(t, _)| *t == SNIType::HostName)
                .and_then(|(_, n)| std::str::from_utf8(n).ok());
            return match host {
                Some(h) => match crate::routes::normal(h) {
                    Some(h) => Hello::Sni(Some(h)),
                    None => Hello::Bad("a server name that is not a host name"),
                },
                None => Hello::Sni(None),
            };
        }
    }
    Hello::Sni(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A ClientHello for `name` padded with an extension of `pad` bytes (a
    /// post-quantum key share's size), as one handshake message.
    pub fn hello_message(name: Option<&str>, pad: usize) -> Vec<u8> {
        let mut ext = Vec::new();
        if let Some(n) = name {
            let n = n.as_bytes();
            let list_len = 3 + n.len();
            ext.extend_from_slice(&[0, 0]);
            ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
            ext.extend_from_slice(&(list_len as u16).to_be_bytes());
            ext.push(0);
            ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
            ext.extend_from_slice(n);
        }
        // padding (21)
        ext.extend_from_slice(&[0, 21]);
        ext.extend_from_slice(&(pad as u16).to_be_bytes());
        ext.extend(std::iter::repeat_n(0u8, pad));
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut m = vec![CLIENT_HELLO];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(&body);
        m
    }

    /// `message` cut into TLS records of at most `size` bytes each.
    pub fn records(message: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in message.chunks(size) {
            out.extend_from_slice(&[HANDSHAKE, 3, 1]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn a_split_post_quantum_hello_is_read_whole() {
        let wire = records(&hello_message(Some("WWW.Example.com"), 1800), 512);
        for cut in [0, 3, 5, 100, 600, wire.len() - 1] {
            assert_eq!(client_hello(&wire[..cut]), Hello::More, "cut at {cut}");
        }
        assert_eq!(
            client_hello(&wire),
            Hello::Sni(Some("www.example.com".into()))
        );
    }

    #[test]
    fn no_sni_and_not_tls() {
        let wire = records(&hello_message(None, 10), 16_000);
        assert_eq!(client_hello(&wire), Hello::Sni(None));
        assert!(matches!(client_hello(b"GET / HTTP/1.1\r\n"), Hello::Bad(_)));
        let mut other = records(&hello_message(Some("a.example"), 10), 16_000);
        other[5] = 2; // a ServerHello
        assert!(matches!(client_hello(&other), Hello::Bad(_)));
    }

    proptest! {
        /// Any bytes give an answer, never a panic, and never ask for more past the bound.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = client_hello(&bytes);
        }

        #[test]
        fn hellos_survive_any_record_size(size in 1usize..2000, pad in 0usize..3000) {
            let wire = records(&hello_message(Some("a.example.net"), pad), size);
            prop_assert_eq!(client_hello(&wire), Hello::Sni(Some("a.example.net".into())));
        }
    }
}
