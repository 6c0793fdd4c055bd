//! The status of an HTTP/1 response, read from its first line: all the HTTP
//! check needs of what a customer's server (or the proxy) answers.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StatusError {
    #[error("no complete status line in the first {0} bytes")]
    Incomplete(usize),
    #[error("not an HTTP/1 status line: {0:?}")]
    Malformed(String),
}

/// The status code of the response beginning `head`.
pub fn status(head: &[u8]) -> Result<u16, StatusError> {
    let end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(StatusError::Incomplete(head.len()))?;
    let line = &head[..end];
    let malformed = || {
        StatusError::Malformed(String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned())
    };
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
        .ok_or_else(malformed)?;
    match rest {
        [a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', tail @ ..]
            if tail.is_empty() || tail[0] == b' ' =>
        {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code() {
        assert_eq!(status(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), Ok(200));
        assert_eq!(status(b"HTTP/1.0 404\r\n"), Ok(404));
        assert_eq!(status(b"HTTP/1.1 503 Service Unavailable\r\n"), Ok(503));
    }

    #[test]
    fn refuses_what_is_not_one() {
        assert_eq!(status(b"HTTP/1.1 200 OK"), Err(StatusError::Incomplete(15)));
        for bad in [
            &b"HTTP/2 200\r\n"[..],
            b"HTTP/1.1 20\r\n",
            b"HTTP/1.1 2000\r\n",
            b"HTTP/1.1 600 x\r\n",
            b"SSH-2.0-OpenSSH\r\n",
            b"\r\n",
        ] {
            assert!(
                matches!(status(bad), Err(StatusError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
