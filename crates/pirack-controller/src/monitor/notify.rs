//! Telling one route about an alert: the request each provider expects
//! ([`outgoing`], a pure function, so every provider's shape is tested without
//! a network), then [`send`] it: HTTP through ureq, mail over a plain SMTP
//! dialogue with the site's relay.

use crate::store::alerts::AlertRow;
use crate::store::lease::rfc3339;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use pirack_core::inventory::SiteMonitor;
use pirack_core::inventory::model::{Providers, Smtp};
use pirack_core::monitor::uri::Target;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What is being said about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Fire,
    Repeat,
    Resolve,
}

impl Notice {
    pub fn name(self) -> &'static str {
        match self {
            Notice::Fire => "fire",
            Notice::Repeat => "repeat",
            Notice::Resolve => "resolve",
        }
    }
}

/// One request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Http {
        url: String,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
        /// NMA answers 200 with an XML error inside.
        xml_success: bool,
    },
    Mail {
        to: String,
        subject: String,
        body: String,
    },
}

/// The title and text of a notice about `a` (as its reader may see it).
pub fn words(site: &str, a: &AlertRow, notice: Notice) -> (String, String) {
    let title = match notice {
        Notice::Fire => format!("pirack {site}: {}", a.summary),
        Notice::Repeat => format!("pirack {site}: still: {}", a.summary),
        Notice::Resolve => format!("pirack {site}: resolved: {}", a.summary),
    };
    let mut text = String::new();
    for s in &a.slots {
        text += &format!("{} ({}): {}\n", s.position, s.key, s.why);
    }
    text += &format!("alert {} since {}", a.id, rfc3339(a.opened_at));
    (title, text)
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The request that tells `target` of `notice` about `a`.
pub fn outgoing(
    target: &Target,
    providers: &Providers,
    site: &str,
    a: &AlertRow,
    notice: Notice,
) -> Outgoing {
    let (title, text) = words(site, a, notice);
    let urgent = notice != Notice::Resolve;
    let http = |url: String, content_type, headers, body| Outgoing::Http {
        url,
        content_type,
        headers,
        body,
        xml_success: false,
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    match target {
        Target::Prowl { keys } => http(
            format!("{}/publicapi/add", providers.prowl.trim_end_matches('/')),
            FORM,
            Vec::new(),
            form(&[
                ("apikey", &keys.join(",")),
                ("application", "pirack"),
                ("event", &title),
                ("description", &text),
                ("priority", if urgent { "1" } else { "0" }),
            ]),
        ),
        Target::Nma { keys } => Outgoing::Http {
            url: format!("{}/publicapi/notify", providers.nma.trim_end_matches('/')),
            content_type: FORM,
            headers: Vec::new(),
            body: form(&[
                ("apikey", &keys.join(",")),
                ("application", "pirack"),
                ("event", &title),
                ("description", &text),
                ("priority", if urgent { "1" } else { "0" }),
            ]),
            xml_success: true,
        },
        Target::Pushover { user, token } => http(
            format!(
                "{}/1/messages.json",
                providers.pushover.trim_end_matches('/')
            ),
            FORM,
            Vec::new(),
            form(&[
                ("token", token),
                ("user", user),
                ("title", &title),
                ("message", &text),
                ("priority", if urgent { "1" } else { "0" }),
            ]),
        ),
        Target::Ntfy { base, topic } => http(
            format!("{base}/{topic}"),
            "text/plain; charset=utf-8",
            vec![
                ("Title", title),
                ("Priority", if urgent { "high" } else { "default" }.into()),
                (
                    "Tags",
                    if urgent {
                        "rotating_light"
                    } else {
                        "white_check_mark"
                    }
                    .into(),
                ),
            ],
            text,
        ),
        Target::Gotify { base, token } => http(
            format!("{base}/message?token={token}"),
            JSON,
            Vec::new(),
            json!({"title": title, "message": text, "priority": if urgent { 8 } else { 4 }})
                .to_string(),
        ),
        Target::Webhook { url } => http(
            url.clone(),
            JSON,
            Vec::new(),
            json!({
                "source": "pirack",
                "site": site,
                "alert": a.id,
                "notice": notice.name(),
                "cause": a.cause,
                "summary": a.summary,
                "title": title,
                "slots": a.slots,
                "opened_at": rfc3339(a.opened_at),
            })
            .to_string(),
        ),
        Target::Alertmanager { base } => {
            let mut alert = json!({
                "labels": {"alertname": "PirackAlert", "site": site, "cause": a.cause, "severity": "critical"},
                "annotations": {"summary": a.summary, "description": text},
                "startsAt": rfc3339(a.opened_at),
                "generatorURL": format!("pirack://{site}/alerts/{}", a.id),
            });
            if let (Some(slot), true) = (a.slots.first(), a.slots.len() == 1) {
                alert["labels"]["slot"] = json!(slot.position);
            }
            if notice == Notice::Resolve {
                alert["endsAt"] = json!(rfc3339(a.resolved_at.unwrap_or(a.opened_at)));
            }
            http(
                format!("{base}/api/v2/alerts"),
                JSON,
                Vec::new(),
                json!([alert]).to_string(),
            )
        }
        Target::Mail { to } => Outgoing::Mail {
            to: to.clone(),
            subject: title,
            body: text,
        },
    }
}

/// Whether a customer's route to `target` may be called: every address its
/// host resolves to is public or in the site's allowed networks (checked when
/// the route is added and again before each call, as a name can change).
pub fn customer_may_call(m: &SiteMonitor, target: &Target) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let Some(host) = target.host() else {
        return Ok(());
    };
    let addrs = (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("{host} does not resolve: {e}"))?;
    for a in addrs {
        if !m.customer_may_reach(a.ip()) {
            return Err(format!(
                "{host} is {}, not a public address: customers' routes may not reach it",
                a.ip()
            ));
        }
    }
    Ok(())
}

/// Makes the request; `Err` says why it did not go through.
pub fn send(out: &Outgoing, smtp: Option<&Smtp>, within: Duration) -> Result<(), String> {
    match out {
        Outgoing::Http {
            url,
            content_type,
            headers,
            body,
            xml_success,
        } => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(within))
                .build()
                .into();
            let mut req = ureq::http::Request::builder()
                .method("POST")
                .uri(url)
                .header("Content-Type", *content_type)
                .header("User-Agent", "pirack");
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let req = req.body(body.clone()).map_err(|e| e.to_string())?;
            let mut res = agent.run(req).map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let text = res
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            if !(200..300).contains(&status) {
                return Err(format!("HTTP {status}: {}", first_line(&text)));
            }
            if *xml_success && !text.contains("<success") {
                return Err(format!("the server refused it: {}", first_line(&text)));
            }
            Ok(())
        }
        Outgoing::Mail { to, subject, body } => {
            let smtp = smtp.ok_or("no smtp relay is set")?;
            mail(smtp, to, subject, body, within)
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// One message through an SMTP relay (RFC 5321), without authentication.
fn mail(smtp: &Smtp, to: &str, subject: &str, body: &str, within: Duration) -> Result<(), String> {
    let stream = TcpStream::connect(&smtp.server).map_err(|e| format!("{}: {e}", smtp.server))?;
    stream
        .set_read_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut w = stream;
    let expect = |want: &str, reader: &mut BufReader<TcpStream>| -> Result<(), String> {
        // Multi-line replies: `250-...` lines until `250 ...`.
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if !line.starts_with(want) {
                return Err(format!("the relay said `{}`", line.trim_end()));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    let say = |w: &mut TcpStream, line: &str| {
        w.write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| e.to_string())
    };
    expect("220", &mut reader)?;
    say(&mut w, "EHLO pirack")?;
    expect("250", &mut reader)?;
    say(&mut w, &format!("MAIL FROM:<{}>", smtp.from))?;
    expect("250", &mut reader)?;
    say(&mut w, &format!("RCPT TO:<{to}>"))?;
    expect("250", &mut reader)?;
    say(&mut w, "DATA")?;
    expect("354", &mut reader)?;
    let subject: String = subject.chars().filter(|c| !c.is_control()).collect();
    let mut message = format!(
        "From: <{}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        smtp.from
    );
    for line in body.lines() {
        // Dot-stuffing: a line starting with `.` gets another.
        if line.starts_with('.') {
            message.push('.');
        }
        message += line;
        message += "\r\n";
    }
    message += ".";
    say(&mut w, &message)?;
    expect("250", &mut reader)?;
    let _ = say(&mut w, "QUIT");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::alerts::Covered;

    fn alert() -> AlertRow {
        AlertRow {
            id: 7,
            cause: "slot:sw-a/1".into(),
            summary: "A-01 is down".into(),
            slots: vec![Covered {
                key: "sw-a/1".into(),
                position: "A-01".into(),
                owner: Some("acme".into()),
                why: "ping: no answer within 1s".into(),
            }],
            opened_at: 1_796_223_669_000,
            resolved_at: None,
            sent_at: None,
            repeats: 0,
        }
    }

    fn http(t: &str, notice: Notice) -> (String, String, Vec<(&'static str, String)>) {
        let target = pirack_core::monitor::uri::parse(t).unwrap().target;
        let providers = Providers {
            prowl: "http://127.0.0.1:1/p".into(),
            ..Providers::default()
        };
        match outgoing(&target, &providers, "lab", &alert(), notice) {
            Outgoing::Http {
                url, body, headers, ..
            } => (url, body, headers),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_provider_gets_its_own_shape() {
        let (url, body, _) = http("prowl:abc,def", Notice::Fire);
        assert_eq!(url, "http://127.0.0.1:1/p/publicapi/add");
        assert!(
            body.starts_with(
                "apikey=abc%2Cdef&application=pirack&event=pirack%20lab%3A%20A%2D01%20is%20down"
            ),
            "{body}"
        );
        assert!(body.ends_with("&priority=1"));
        let (url, body, headers) = http("ntfy://127.0.0.1:9/pis", Notice::Resolve);
        assert_eq!(url, "http://127.0.0.1:9/pis");
        assert!(body.starts_with("A-01 (sw-a/1): ping"), "{body}");
        assert_eq!(
            headers[0],
            ("Title", "pirack lab: resolved: A-01 is down".into())
        );
        let (url, body, _) = http("pover://u1@t1", Notice::Repeat);
        assert_eq!(url, "https://api.pushover.net/1/messages.json");
        assert!(
            body.starts_with("token=t1&user=u1&title=pirack%20lab%3A%20still"),
            "{body}"
        );
        let (url, body, _) = http("alertmanager://127.0.0.1:9093", Notice::Fire);
        assert_eq!(url, "http://127.0.0.1:9093/api/v2/alerts");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["labels"]["slot"], "A-01");
        assert_eq!(v[0]["startsAt"], "2026-12-02T15:01:09.000Z");
        assert!(v[0].get("endsAt").is_none());
        let (_, body, _) = http("json://127.0.0.1:9/hook", Notice::Fire);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["slots"][0]["owner"], "acme");
        assert_eq!(v["notice"], "fire");
    }
}
