//! A blocking client of the API, for the CLI and the labs: ureq over HTTP or
//! HTTPS (rustls; the system's web roots, or only the CA a `--ca-file` names),
//! the JSON answer back (chunked or not), and an API error (status and message)
//! as an error. Path segments go through [`segment`], so a slot key such as
//! `sw-a/7` stays one segment.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{0}: the URL must start with http:// or https://")]
    Url(String),
    #[error("CA file {path}: {message}")]
    Ca { path: String, message: String },
    /// The API answered with an error.
    #[error("{method} {path}: {status}: {message}")]
    Api {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("no operation id in {0}")]
    NoOperation(Value),
    /// An operation the client waited for failed.
    #[error("{kind}: {detail}")]
    Failed { kind: Value, detail: Value },
}

/// What a path segment may hold as it is: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` percent-encoded as one path segment or query value.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// An API connection: its base URL and a token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the API at `url` (`http://host:port` or `https://...`) with
    /// `token`; over HTTPS the server is checked against the web roots, or only
    /// against the CA in `ca_file` when given.
    pub fn new(url: &str, token: String, ca_file: Option<&Path>) -> Result<Client, ClientError> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::Url(url.into()));
        }
        let roots = match ca_file {
            None => RootCerts::WebPki,
            Some(path) => {
                let ca = |message: String| ClientError::Ca {
                    path: path.display().to_string(),
                    message,
                };
                let pem = std::fs::read(path).map_err(|e| ca(e.to_string()))?;
                let certs = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<Vec<Certificate<'static>>, _>>()
                    .map_err(|e| ca(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ca("no PEM certificate in it".into()));
                }
                RootCerts::new_with_certs(&certs)
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        Ok(Client {
            base: url.trim_end_matches('/').to_string(),
            token,
            agent,
        })
    }

    /// One request to `path` (its segments made with [`segment`]); the JSON
    /// answer, or the API's error as an error.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let http = |message: String| ClientError::Http {
            url: url.clone(),
            message,
        };
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let req = req
            .body(body.map(Value::to_string).unwrap_or_default())
            .map_err(|e| http(e.to_string()))?;
        let mut res = self.agent.run(req).map_err(|e| http(e.to_string()))?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| http(e.to_string()))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if status >= 400 {
            return Err(ClientError::Api {
                method: method.into(),
                path: path.into(),
                status,
                message: value["message"].as_str().unwrap_or(&text).to_string(),
            });
        }
        Ok(value)
    }

    /// Polls an operation until it ends; fails if it failed.
    pub fn wait(&self, op: &Value) -> Result<Value, ClientError> {
        let id = op["id"]
            .as_str()
            .ok_or_else(|| ClientError::NoOperation(op.clone()))?;
        loop {
            let now = self.call("GET", &format!("/v1/operations/{id}"), None)?;
            match now["status"].as_str() {
                Some("running") => std::thread::sleep(Duration::from_millis(250)),
                Some("succeeded") => return Ok(now),
                _ => {
                    return Err(ClientError::Failed {
                        kind: now["kind"].clone(),
                        detail: now["detail"].clone(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn a_segment_keeps_only_unreserved_characters() {
        assert_eq!(segment("sw-a/7"), "sw-a%2F7");
        assert_eq!(segment("A-07_x.y~z"), "A-07_x.y~z");
        assert_eq!(segment("a b?c#d&e"), "a%20b%3Fc%23d%26e");
    }
}
