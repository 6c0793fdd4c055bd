//! The host a plain HTTP request asks for, read from its head with httparse;
//! and the pages the proxy answers itself with when it cannot pass one on.

use crate::routes::normal;

/// The most bytes of request head read before answering 431.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    More,
    /// The request's host (lower-case, port removed).
    Host(String),
    /// Not a request, or no usable host: answered with `status`.
    Bad {
        status: u16,
        why: &'static str,
    },
}

/// Reads `buf` (the connection's first bytes) as an HTTP/1 request head.
pub fn request_host(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Head::Bad {
            status: 431,
            why: "request head over 16 KB",
        },
        Ok(httparse::Status::Partial) => Head::More,
        Err(httparse::Error::TooManyHeaders) => Head::Bad {
            status: 431,
            why: "too many header fields",
        },
        Err(_) => Head::Bad {
            status: 400,
            why: "not an HTTP/1 request",
        },
        Ok(httparse::Status::Complete(_)) => {
            let hosts: Vec<&[u8]> = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("host"))
                .map(|h| h.value)
                .collect();
            let [host] = hosts.as_slice() else {
                return Head::Bad {
                    status: 400,
                    why: "no Host, or more than one",
                };
            };
            let Some(host) = std::str::from_utf8(host).ok().and_then(authority_host) else {
                return Head::Bad {
                    status: 400,
                    why: "a Host that is not a host name",
                };
            };
            // An absolute-form target naming another host than Host (RFC 9112 §3.2.2
            // makes the target win; a proxy that routes on Host must refuse).
            let path = req.path.unwrap_or_default();
            if let Some(rest) = path
                .strip_prefix("http://")
                .or_else(|| path.strip_prefix("https://"))
            {
                let target = rest.split(['/', '?']).next().unwrap_or_default();
                if authority_host(target).as_deref() != Some(host.as_str()) {
                    return Head::Bad {
                        status: 421,
                        why: "the request's target names another host than its Host",
                    };
                }
            }
            Head::Host(host)
        }
    }
}

/// The host of an `authority` (`host[:port]`, `[v6]:port` refused: the proxy
/// routes names), normalised.
fn authority_host(authority: &str) -> Option<String> {
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    normal(host)
}

/// A page of the proxy's own, closing the connection.
pub fn page(status: u16, detail: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        408 => "Request Timeout",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = format!(
        "<!doctype html><title>{status} {reason}</title><h1>{status} {reason}</h1><p>{}</p>\n",
        escape(detail)
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts_and_refusals() {
        let get = |s: &str| request_host(s.as_bytes());
        assert_eq!(
            get("GET /.well-known/acme-challenge/x HTTP/1.1\r\nHost: WWW.Example.com:80\r\n\r\n"),
            Head::Host("www.example.com".into())
        );
        assert_eq!(get("GET / HTTP/1.1\r\nHost: a.example"), Head::More);
        assert!(matches!(
            get("GET / HTTP/1.1\r\n\r\n"),
            Head::Bad { status: 400, .. }
        ));
        assert!(matches!(
            get("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"),
            Head::Bad { status: 400, .. }
        ));
        assert!(matches!(
            get("GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            Head::Bad { status: 421, .. }
        ));
        assert!(matches!(
            get("\x16\x03\x01\x02\x00"),
            Head::Bad { status: 400, .. }
        ));
        assert!(matches!(
            get("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            Head::Bad { status: 400, .. }
        ));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(get(&long), Head::Bad { status: 431, .. }));
    }

    #[test]
    fn pages_escape_what_they_echo() {
        let p = String::from_utf8(page(404, "no route for <script>")).unwrap();
        assert!(p.starts_with("HTTP/1.1 404 Not Found\r\n") && p.contains("&lt;script&gt;"));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = request_host(&bytes);
        }
    }
}
