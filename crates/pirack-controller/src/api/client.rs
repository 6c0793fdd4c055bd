//! A small blocking client of the API, for the CLI and the labs: one HTTP/1.1
//! request per call on a fresh connection, the JSON answer back, and an API error
//! (status and message) as an error.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{host}: {source}")]
    Io {
        host: String,
        source: std::io::Error,
    },
    #[error("{0}: no HTTP answer")]
    NoAnswer(String),
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

/// An API connection: `host:port` and a token.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    token: String,
}

impl Client {
    /// A client of the API at `host:port` with `token`.
    pub fn new(host: String, token: String) -> Client {
        Client { host, token }
    }

    /// One request; the JSON answer, or the API's error as an error.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let io = |source| ClientError::Io {
            host: self.host.clone(),
            source,
        };
        let mut s = TcpStream::connect(&self.host).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(io)?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host,
            self.token,
            body.len()
        );
        if !body.is_empty() {
            req += "Content-Type: application/json\r\n";
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).map_err(io)?;
        s.write_all(body.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(io)?;
        let text = String::from_utf8_lossy(&raw);
        let no_answer = || ClientError::NoAnswer(self.host.clone());
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(no_answer)?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(no_answer)?;
        let value: Value = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
        if status >= 400 {
            return Err(ClientError::Api {
                method: method.into(),
                path: path.into(),
                status,
                message: value["message"].as_str().unwrap_or(body).to_string(),
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
