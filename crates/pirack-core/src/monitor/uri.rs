//! Alert routes as URIs, in the schemes people know from the original service
//! (`prowl:KEY`, `nma:KEY`) and from Apprise (`ntfy://`, `pover://`,
//! `gotify://`, `json://`), plus `mailto:` and Prometheus Alertmanager. A
//! route names where an alert goes; the providers' own base URLs are site
//! settings, so tests and compatible servers can stand in for them.

use serde::Serialize;
use std::fmt;

/// Where one route delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// Prowl's `publicapi/add`, up to five API keys.
    Prowl { keys: Vec<String> },
    /// NMA's `publicapi/notify` (its public service closed in 2018).
    Nma { keys: Vec<String> },
    /// An ntfy server: `POST {base}/{topic}`.
    Ntfy { base: String, topic: String },
    /// Pushover's `messages.json`.
    Pushover { user: String, token: String },
    /// A Gotify server: `POST {base}/message?token=`.
    Gotify { base: String, token: String },
    /// A JSON document posted to a URL.
    Webhook { url: String },
    /// Mail over the site's SMTP relay.
    Mail { to: String },
    /// Alertmanager's v2 API: `POST {base}/api/v2/alerts`.
    Alertmanager { base: String },
}

/// A parsed route: its target, and what validation wants people to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub target: Target,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route `{shown}`: {why}")]
pub struct UriError {
    /// The route as given, its secrets hidden.
    pub shown: String,
    pub why: String,
}

/// NMA's public host, gone since 2018.
pub const NMA_GONE: &str = "NMA's public service (notifymyandroid.com) closed in 2018: set monitor.providers.nma to a compatible server";

/// Parses `uri`.
pub fn parse(uri: &str) -> Result<Route, UriError> {
    let fail = |why: &str| UriError {
        shown: redact(uri),
        why: why.into(),
    };
    let uri = uri.trim();
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail("a route has no spaces or control characters"));
    }
    let (scheme, rest) = uri
        .split_once(':')
        .ok_or_else(|| fail("no scheme (such as `ntfy://` or `prowl:`)"))?;
    let scheme = scheme.to_ascii_lowercase();
    // `prowl:KEY` and `prowl://KEY` alike.
    let opaque = rest.strip_prefix("//").unwrap_or(rest);
    let mut warnings = Vec::new();
    let target = match scheme.as_str() {
        "prowl" => Target::Prowl {
            keys: keys(opaque, 5, 64).map_err(|w| fail(&w))?,
        },
        "nma" => {
            warnings.push(NMA_GONE.to_string());
            Target::Nma {
                keys: keys(opaque, 5, 48).map_err(|w| fail(&w))?,
            }
        }
        "ntfy" | "ntfys" => {
            let secure = scheme == "ntfys";
            match opaque.split_once('/') {
                // `ntfy://topic`: the public ntfy.sh.
                None => Target::Ntfy {
                    base: "https://ntfy.sh".into(),
                    topic: topic(opaque).map_err(|w| fail(&w))?,
                },
                Some((host, t)) => Target::Ntfy {
                    base: base(secure, host).map_err(|w| fail(&w))?,
                    topic: topic(t).map_err(|w| fail(&w))?,
                },
            }
        }
        "pover" => {
            let (user, token) = opaque
                .split_once('@')
                .ok_or_else(|| fail("write it `pover://USER@TOKEN`"))?;
            Target::Pushover {
                user: word(user, 64)
                    .map_err(|w| fail(&format!("the user key {w}")))?
                    .to_string(),
                token: word(token.trim_end_matches('/'), 64)
                    .map_err(|w| fail(&format!("the token {w}")))?
                    .to_string(),
            }
        }
        "gotify" | "gotifys" => {
            let (host, token) = opaque
                .trim_end_matches('/')
                .rsplit_once('/')
                .ok_or_else(|| fail("write it `gotify://HOST/TOKEN`"))?;
            Target::Gotify {
                base: under(scheme == "gotifys", host).map_err(|w| fail(&w))?,
                token: word(token, 128)
                    .map_err(|w| fail(&format!("the token {w}")))?
                    .to_string(),
            }
        }
        "json" | "jsons" => {
            let (host, path) = opaque.split_once('/').unwrap_or((opaque, ""));
            Target::Webhook {
                url: format!(
                    "{}/{path}",
                    base(scheme == "jsons", host).map_err(|w| fail(&w))?
                ),
            }
        }
        "http" | "https" => {
            let host = rest
                .strip_prefix("//")
                .ok_or_else(|| fail("write it `https://HOST/PATH`"))?;
            let (host, path) = host.split_once('/').unwrap_or((host, ""));
            Target::Webhook {
                url: format!(
                    "{}/{path}",
                    base(scheme == "https", host).map_err(|w| fail(&w))?
                ),
            }
        }
        "alertmanager" | "alertmanagers" => Target::Alertmanager {
            base: under(scheme == "alertmanagers", opaque.trim_end_matches('/'))
                .map_err(|w| fail(&w))?,
        },
        "mailto" => {
            let to = rest;
            let ok = to.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && to
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"<>,;\"".contains(&b))
            });
            if !ok {
                return Err(fail("write it `mailto:someone@example.com`"));
            }
            Target::Mail { to: to.into() }
        }
        _ => {
            return Err(fail(
                "unknown scheme: prowl, nma, ntfy(s), pover, gotify(s), json(s), http(s), mailto or alertmanager(s)",
            ));
        }
    };
    Ok(Route { target, warnings })
}

/// `uri` with everything after its scheme's first four characters hidden: a
/// route holds its provider's key.
pub fn redact(uri: &str) -> String {
    let uri = uri.trim();
    match uri.split_once(':') {
        Some((scheme, rest))
            if scheme.len() <= 16 && scheme.bytes().all(|b| b.is_ascii_alphabetic()) =>
        {
            let rest = rest.strip_prefix("//").map_or(rest, |r| r);
            let sep = if uri[scheme.len() + 1..].starts_with("//") {
                "://"
            } else {
                ":"
            };
            let shown: String = rest.chars().take(4).collect();
            format!("{scheme}{sep}{shown}…")
        }
        _ => "…".into(),
    }
}

/// Comma-separated keys of letters and digits.
fn keys(s: &str, most: usize, longest: usize) -> Result<Vec<String>, String> {
    let keys: Vec<String> = s
        .trim_end_matches('/')
        .split(',')
        .map(|k| word(k, longest).map(str::to_string))
        .collect::<Result<_, _>>()
        .map_err(|w| format!("an API key {w}"))?;
    if keys.len() > most {
        return Err(format!("at most {most} keys"));
    }
    Ok(keys)
}

/// A key or token: 1..=`longest` letters, digits, `-` or `_`.
fn word(s: &str, longest: usize) -> Result<&str, String> {
    if s.is_empty() || s.len() > longest {
        return Err(format!("must be 1 to {longest} characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("may hold only letters, digits, `-` and `_`".into());
    }
    Ok(s)
}

fn topic(s: &str) -> Result<String, String> {
    word(s.trim_end_matches('/'), 64)
        .map(str::to_string)
        .map_err(|w| format!("the topic {w}"))
}

/// `http(s)://host[:port][/path]`: a server under a path (behind a reverse proxy).
fn under(secure: bool, host_path: &str) -> Result<String, String> {
    match host_path.split_once('/') {
        Some((host, path)) => Ok(format!("{}/{path}", base(secure, host)?)),
        None => base(secure, host_path),
    }
}

/// `http(s)://host[:port]` for a host part of a route.
fn base(secure: bool, host: &str) -> Result<String, String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && !p.contains(']') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        // Not quoted: a mistyped route may run its secret into the host part.
        return Err("its port is not a number from 1 to 65535".into());
    }
    let ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        }
    };
    if !ok {
        return Err("its host is not a host name or address".into());
    }
    let scheme = if secure { "https" } else { "http" };
    Ok(format!("{scheme}://{host}"))
}

impl Target {
    /// The host a route connects to itself (its URL's), for the checks on
    /// where customers' routes may point; `None` for the providers' own
    /// services and for mail (the site's relay).
    pub fn host(&self) -> Option<&str> {
        let url = match self {
            Target::Ntfy { base, .. } | Target::Gotify { base, .. } => base,
            Target::Alertmanager { base } => base,
            Target::Webhook { url } => url,
            _ => return None,
        };
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        Some(match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => authority.split(':').next().unwrap_or(authority),
        })
    }
}

/// Whether `ip` is an address of the public Internet: not loopback, private,
/// shared (CGN), link-local, unique-local, documentation, multicast or
/// unspecified; IPv4 in IPv6 judged as IPv4.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0xdb8)
            }
        },
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Target::Prowl { .. } => "prowl",
            Target::Nma { .. } => "nma",
            Target::Ntfy { .. } => "ntfy",
            Target::Pushover { .. } => "pushover",
            Target::Gotify { .. } => "gotify",
            Target::Webhook { .. } => "webhook",
            Target::Mail { .. } => "mail",
            Target::Alertmanager { .. } => "alertmanager",
        };
        f.write_str(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Target {
        parse(uri).unwrap_or_else(|e| panic!("{e}")).target
    }

    #[test]
    fn the_originals_and_apprise_schemes() {
        let key = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            target(&format!("prowl:{key}")),
            Target::Prowl {
                keys: vec![key.into()]
            }
        );
        assert_eq!(
            target(&format!("prowl://{key}")),
            target(&format!("prowl:{key}"))
        );
        let nma = parse("nma:abc,def").unwrap();
        assert_eq!(
            nma.target,
            Target::Nma {
                keys: vec!["abc".into(), "def".into()]
            }
        );
        assert_eq!(nma.warnings, [NMA_GONE]);
        assert_eq!(
            target("ntfy://127.0.0.1:8088/pis"),
            Target::Ntfy {
                base: "http://127.0.0.1:8088".into(),
                topic: "pis".into()
            }
        );
        assert_eq!(
            target("ntfy://pis"),
            Target::Ntfy {
                base: "https://ntfy.sh".into(),
                topic: "pis".into()
            }
        );
        assert_eq!(
            target("pover://u123@t456"),
            Target::Pushover {
                user: "u123".into(),
                token: "t456".into()
            }
        );
        assert_eq!(
            target("gotifys://push.example.com/path/Atok"),
            Target::Gotify {
                base: "https://push.example.com/path".into(),
                token: "Atok".into()
            }
        );
        assert_eq!(
            target("json://[::1]:9000/hook"),
            Target::Webhook {
                url: "http://[::1]:9000/hook".into()
            }
        );
        assert_eq!(
            target("https://hooks.example.com/a/b"),
            Target::Webhook {
                url: "https://hooks.example.com/a/b".into()
            }
        );
        assert_eq!(
            target("mailto:noc@example.com"),
            Target::Mail {
                to: "noc@example.com".into()
            }
        );
        assert_eq!(
            target("alertmanager://127.0.0.1:9093"),
            Target::Alertmanager {
                base: "http://127.0.0.1:9093".into()
            }
        );
    }

    #[test]
    fn hosts_and_public_addresses() {
        assert_eq!(target("json://[::1]:9000/hook").host(), Some("::1"));
        assert_eq!(
            target("ntfy://ntfy.example.net:8080/t").host(),
            Some("ntfy.example.net")
        );
        assert_eq!(
            target("https://hooks.example.com/a").host(),
            Some("hooks.example.com")
        );
        assert_eq!(target("prowl:abc").host(), None);
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["192.0.2.0", "8.8.8.8", "2a00:1450::1", "::ffff:8.8.8.8"] {
            let ip: std::net::IpAddr = public.parse().unwrap();
            // 192.0.2.0/24 is documentation space: not public either.
            assert_eq!(is_public(ip), public != "192.0.2.0", "{public}");
        }
    }

    #[test]
    fn garbage_is_refused_with_its_secrets_hidden() {
        for bad in [
            "",
            "prowl",
            "prowl:",
            "prowl:a,b,c,d,e,f",
            "prowl:key with space",
            "pover://nouser",
            "ntfy://host:99999/t",
            "ntfy://ho st/t",
            "gotify://host",
            "mailto:nobody",
            "mailto:a@b.c,d@e.f",
            "telnet://x",
            "http:/x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let e = parse("pover://secretuser").unwrap_err();
        assert!(!e.to_string().contains("secretuser"), "{e}");
        assert_eq!(redact("prowl:0123456789"), "prowl:0123…");
        assert_eq!(redact("pover://user@token"), "pover://user…");
    }
}
