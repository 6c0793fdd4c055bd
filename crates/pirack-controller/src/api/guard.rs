//! What every answer carries and every request must fit: security headers (the
//! rack view runs only its own script and style, hashed in its CSP, and nothing
//! may frame it), a bound on bodies and URIs, and errors that are JSON whatever
//! refused the request.

use super::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The largest request body the API reads (the largest it takes is a few hundred
/// bytes of JSON).
pub const MAX_BODY: usize = 64 * 1024;
/// The longest request target (path and query) the API takes.
pub const MAX_URI: usize = 8 * 1024;

/// The rack view, one page with its style and script inline.
pub const RACK: &str = include_str!("web/rack.html");

/// For everything but the page: nothing to load, nothing to frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The page's CSP: its one style and one script by hash, the API by fetch.
pub fn rack_csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash_of(RACK, "<script>", "</script>"),
            hash_of(RACK, "<style>", "</style>"),
        )
    })
}

/// The CSP source of the first element's text between `open` and `close`.
fn hash_of(page: &str, open: &str, close: &str) -> String {
    let start = page.find(open).map_or(0, |i| i + open.len());
    let end = page[start..].find(close).map_or(start, |i| start + i);
    format!(
        "sha256-{}",
        base64(&Sha256::digest(&page.as_bytes()[start..end]))
    )
}

/// Standard base64 with padding (RFC 4648), as CSP hashes are written.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(match i <= chunk.len() {
                true => char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]),
                false => '=',
            });
        }
    }
    out
}

/// Refuses an over-long URI with a JSON 414, and sets the security headers on
/// every answer (the page's own CSP stays).
pub async fn guard(req: Request, next: Next) -> Response {
    let long = req
        .uri()
        .path_and_query()
        .is_some_and(|pq| pq.as_str().len() > MAX_URI);
    let mut res = match long {
        true => ApiError::uri_too_long(format!("the request target is over {MAX_URI} bytes"))
            .into_response(),
        false => next.run(req).await,
    };
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(h, header::CONTENT_SECURITY_POLICY, API_CSP);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_follows_rfc4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn the_page_csp_hashes_its_one_script_and_style() {
        let csp = rack_csp();
        assert_eq!(RACK.matches("<script>").count(), 1, "one inline script");
        assert_eq!(RACK.matches("<style>").count(), 1, "one inline style");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("script-src 'sha256-") && csp.contains("frame-ancestors 'none'"));
    }
}
