//! Text that came from the network (a TFTP file name, a client's ERROR message, a
//! DHCP field), made safe to show: control characters (ESC sequences, CR, LF,
//! NUL) and Unicode direction overrides become visible escapes, so none reaches a
//! terminal or forges a log line, and a backslash is doubled so an escape cannot
//! be faked.

/// `s` with every control character and direction override as `\u{..}`.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// How long ago `elapsed_ms` was, as people say it: `12 s ago`, `5 min ago`,
/// `3 h ago`, `2 d ago`; a time to come is `in 5 min`.
pub fn ago(elapsed_ms: i64) -> String {
    let secs = elapsed_ms.unsigned_abs() / 1000;
    let span = match secs {
        0..60 => format!("{secs} s"),
        60..3_600 => format!("{} min", secs / 60),
        3_600..86_400 => format!("{} h", secs / 3_600),
        _ => format!("{} d", secs / 86_400),
    };
    if elapsed_ms < 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// Characters that reorder what follows them on screen (Trojan Source).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spans_as_people_say_them() {
        assert_eq!(ago(12_500), "12 s ago");
        assert_eq!(ago(5 * 60_000 + 1), "5 min ago");
        assert_eq!(ago(3 * 3_600_000), "3 h ago");
        assert_eq!(ago(49 * 3_600_000), "2 d ago");
        assert_eq!(ago(-5 * 60_000), "in 5 min");
    }

    #[test]
    fn escapes_what_a_terminal_or_a_log_would_act_on() {
        assert_eq!(printable("bootcode.bin"), "bootcode.bin");
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\r\nINFO forged"), "x\\u{d}\\u{a}INFO forged");
        assert_eq!(
            printable("\\u{1b}"),
            "\\\\u{1b}",
            "a typed escape stays visibly typed"
        );
        assert_eq!(printable("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(printable("Grüße"), "Grüße");
    }

    proptest! {
        #[test]
        fn nothing_printable_is_left_to_act(s in ".*") {
            let p = printable(&s);
            prop_assert!(!p.chars().any(|c| c.is_control() || is_bidi_control(c)));
        }
    }
}
