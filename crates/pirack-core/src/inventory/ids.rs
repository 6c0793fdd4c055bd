//! Identifiers with a fixed syntax: board serials, MAC addresses and slot keys.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Pi board serial as the bootrom uses it: the low 32 bits as 8 lower-case hex
/// digits, which is also the board's TFTP directory name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(u32);

impl Serial {
    pub fn new(value: u32) -> Serial {
        Serial(value)
    }
    pub fn value(self) -> u32 {
        self.0
    }
}

impl FromStr for Serial {
    type Err = String;
    fn from_str(s: &str) -> Result<Serial, String> {
        let ok = s.len() == 8
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match ok {
            true => Ok(Serial(u32::from_str_radix(s, 16).expect("checked hex"))),
            false => Err(format!(
                "malformed serial `{s}`: expected 8 lower-case hex digits, e.g. 7285c0f2"
            )),
        }
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The MAC a Pi 3 derives from its serial: the Raspberry Pi OUI b8:27:eb plus the
    /// serial's low 24 bits.
    pub fn of_pi3(serial: Serial) -> MacAddr {
        let [_, a, b, c] = serial.value().to_be_bytes();
        MacAddr([0xb8, 0x27, 0xeb, a, b, c])
    }
    pub fn is_raspberry_pi_oui(self) -> bool {
        self.0[..3] == [0xb8, 0x27, 0xeb]
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<MacAddr, String> {
        let err = || format!("malformed MAC `{s}`: expected six hex pairs like b8:27:eb:85:c0:f2");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        match parts.next() {
            None => Ok(MacAddr(out)),
            Some(_) => Err(err()),
        }
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A slot's identity: (switch, port), written `switch/port`. Positions are labels and
/// may be relabelled; the key is what allocations are recorded under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SlotKey {
    pub switch: String,
    pub port: u16,
}

impl fmt::Display for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.switch, self.port)
    }
}

impl FromStr for SlotKey {
    type Err = String;
    fn from_str(s: &str) -> Result<SlotKey, String> {
        let (switch, port) = s
            .rsplit_once('/')
            .ok_or_else(|| format!("malformed slot key `{s}`: expected SWITCH/PORT"))?;
        let port = port
            .parse()
            .map_err(|_| format!("malformed slot key `{s}`: port is not a number"))?;
        if switch.is_empty() {
            return Err(format!("malformed slot key `{s}`: empty switch name"));
        }
        Ok(SlotKey {
            switch: switch.to_string(),
            port,
        })
    }
}

impl TryFrom<String> for SlotKey {
    type Error = String;
    fn try_from(s: String) -> Result<SlotKey, String> {
        s.parse()
    }
}

impl From<SlotKey> for String {
    fn from(k: SlotKey) -> String {
        k.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pi3_mac_follows_serial() {
        let s: Serial = "7285c0f2".parse().unwrap();
        assert_eq!(MacAddr::of_pi3(s).to_string(), "b8:27:eb:85:c0:f2");
        assert!("7285C0F2".parse::<Serial>().is_err());
        assert!("7285c0f".parse::<Serial>().is_err());
        assert!("b8:27:eb:85:c0".parse::<MacAddr>().is_err());
        assert!("b8:27:eb:85:c0:f2:00".parse::<MacAddr>().is_err());
        assert!("b8:27:eb:85:c0:+f".parse::<MacAddr>().is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_round_trip(s in "\\PC{0,24}") {
            if let Ok(v) = s.parse::<Serial>() { prop_assert_eq!(v.to_string(), s.clone()); }
            if let Ok(v) = s.parse::<MacAddr>() { prop_assert_eq!(v.to_string(), s.to_lowercase()); }
            if let Ok(v) = s.parse::<SlotKey>() { prop_assert_eq!(v.to_string().parse::<SlotKey>(), Ok(v)); }
        }

        #[test]
        fn formatted_values_parse_back(n: u32, m: [u8; 6]) {
            prop_assert_eq!(Serial::new(n).to_string().parse::<Serial>(), Ok(Serial::new(n)));
            prop_assert_eq!(MacAddr(m).to_string().parse::<MacAddr>(), Ok(MacAddr(m)));
        }
    }
}
