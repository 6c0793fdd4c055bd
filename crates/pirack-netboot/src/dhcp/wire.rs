//! A structural check of a DHCP packet before dhcproto decodes it. dhcproto reads
//! fixed-size options without checking their length (a debug assertion at best), so
//! a wrong length would panic a debug build or silently shift every later option:
//! every option's bounds and every fixed size are verified here first.

/// Fixed-size options as dhcproto decodes them (RFC 2132 and successors):
/// (code, exact length).
const FIXED: &[(u8, usize)] = &[
    (13, 2),
    (19, 1),
    (20, 1),
    (22, 2),
    (23, 1),
    (24, 4),
    (26, 2),
    (27, 1),
    (29, 1),
    (30, 1),
    (31, 1),
    (34, 1),
    (35, 4),
    (36, 1),
    (37, 1),
    (38, 4),
    (39, 1),
    (46, 1),
    (51, 4),
    (52, 1),
    (53, 1),
    (57, 2),
    (58, 4),
    (59, 4),
    (80, 0),
    (91, 4),
    (93, 2),
    (94, 3),
    (106, 4),
    (116, 1),
    (152, 4),
    (153, 4),
    (154, 4),
    (155, 4),
    (156, 1),
    (157, 1),
];

/// Options dhcproto splits after a fixed head: (code, minimum length).
const MINIMUM: &[(u8, usize)] = &[(81, 3), (151, 1)];

/// BOOTP fixed part plus the magic cookie.
pub const HEADER_LEN: usize = 240;
const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];

/// Ok when the packet is whole and every option is well formed.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than a BOOTP header",
            bytes.len()
        ));
    }
    if bytes[236..240] != COOKIE {
        return Err("no DHCP magic cookie".into());
    }
    let mut rest = &bytes[HEADER_LEN..];
    while let Some(&code) = rest.first() {
        match code {
            0 => rest = &rest[1..],
            255 => return Ok(()),
            _ => {
                let len = usize::from(*rest.get(1).ok_or(format!("option {code} has no length"))?);
                if rest.len() < 2 + len {
                    return Err(format!("option {code} runs past the packet"));
                }
                if let Some((_, want)) = FIXED.iter().find(|(c, _)| *c == code)
                    && len != *want
                {
                    return Err(format!("option {code} is {len} bytes, not {want}"));
                }
                if let Some((_, min)) = MINIMUM.iter().find(|(c, _)| *c == code)
                    && len < *min
                {
                    return Err(format!("option {code} is {len} bytes, under {min}"));
                }
                rest = &rest[2 + len..];
            }
        }
    }
    Err("options end without END".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 236];
        p.extend(COOKIE);
        p.extend(options);
        p
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(check(&packet(&[53, 1, 1, 0, 255])), Ok(()));
        assert!(
            check(&packet(&[53, 2, 1, 1, 255]))
                .unwrap_err()
                .contains("not 1")
        );
        assert!(
            check(&packet(&[94, 2, 1, 2, 255]))
                .unwrap_err()
                .contains("not 3")
        );
        assert!(
            check(&packet(&[151, 0, 255]))
                .unwrap_err()
                .contains("under 1")
        );
        assert!(
            check(&packet(&[60, 9, b'P']))
                .unwrap_err()
                .contains("past the packet")
        );
        assert!(
            check(&packet(&[53, 1, 1]))
                .unwrap_err()
                .contains("without END")
        );
        assert!(check(&packet(&[53])).unwrap_err().contains("no length"));
        assert!(check(&[0u8; 100]).is_err());
        let mut bad_cookie = packet(&[255]);
        bad_cookie[239] = 0;
        assert!(check(&bad_cookie).unwrap_err().contains("cookie"));
    }
}
