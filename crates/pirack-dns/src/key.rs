//! The site's TSIG key, read when it is needed from where the inventory says.

use crate::DnsError;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as Algorithm;
use pirack_core::inventory::model::{TsigAlgorithm, TsigKey};

/// Seconds of clock difference the servers accept (BIND's and RFC 8945's 300).
const FUDGE: u16 = 300;

/// A signer for `key`: its secret read now, as base64 text or inside the `key`
/// clause `tsig-keygen` prints.
pub fn signer(key: &TsigKey) -> Result<TSigner, DnsError> {
    let err = |reason: String| DnsError::Secret {
        key: key.name.clone(),
        reason,
    };
    let raw = key.secret.read().map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8(raw).map_err(|_| err("the secret is not text".into()))?;
    let secret = decode(&text).map_err(err)?;
    let algorithm = match key.algorithm {
        TsigAlgorithm::HmacSha256 => Algorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => Algorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => Algorithm::HmacSha512,
    };
    let name = crate::wire::name(&key.name)?;
    TSigner::new(secret, algorithm, name, FUDGE).map_err(|e| err(e.to_string()))
}

/// The key bytes of a secret: base64, alone or as `secret "...";` in a clause.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let b64 = match text.find("secret") {
        Some(at) => text[at..]
            .split('"')
            .nth(1)
            .ok_or("a `secret` with no quoted value")?,
        None => text.trim(),
    };
    let bytes = data_encoding::BASE64
        .decode(b64.trim().as_bytes())
        .map_err(|e| format!("the secret is not base64: {e}"))?;
    if bytes.len() < 16 {
        return Err(format!(
            "a {}-byte secret is too short to sign with",
            bytes.len()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn secrets_are_read_bare_or_from_a_tsig_keygen_clause() {
        let bare = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\n";
        let clause = "key \"pirack\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\";\n};\n";
        assert_eq!(decode(bare).unwrap(), b"secret-secret-secret-secret!");
        assert_eq!(decode(clause).unwrap(), decode(bare).unwrap());
        assert!(decode("not base64!").unwrap_err().contains("not base64"));
        assert!(decode("c2hvcnQ=").unwrap_err().contains("too short"));
        assert!(decode("secret;").is_err());
    }
}
