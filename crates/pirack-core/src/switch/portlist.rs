//! Q-BRIDGE-MIB PortList bitmaps (RFC 4363 §5): one bit per bridge port, bridge
//! port 1 the most significant bit of the first octet.

use super::Profile;
use std::collections::BTreeSet;

/// Octets in the PortLists written to a switch of `port_count` front-panel ports.
pub fn octets(profile: &Profile, port_count: u16) -> usize {
    let needed = (profile.ports.bridge_port(port_count) as usize).div_ceil(8);
    profile.ports.port_list_octets.unwrap_or(needed).max(needed)
}

/// The bitmap of these bridge ports, at least `octets` long.
pub fn encode(bridge_ports: impl IntoIterator<Item = u32>, octets: usize) -> Vec<u8> {
    let mut bits = vec![0u8; octets];
    for p in bridge_ports {
        let b = p as usize - 1;
        if bits.len() <= b / 8 {
            bits.resize(b / 8 + 1, 0);
        }
        bits[b / 8] |= 0x80 >> (b % 8);
    }
    bits
}

/// The bridge ports a bitmap names.
pub fn decode(bits: &[u8]) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for (i, byte) in bits.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                out.insert((i * 8 + b + 1) as u32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_port_1_as_the_top_bit() {
        let set: BTreeSet<u32> = [1, 8, 9, 97].into_iter().collect();
        let bits = encode(set.iter().copied(), 13);
        assert_eq!(bits.len(), 13);
        assert_eq!(&bits[..2], &[0x81, 0x80]);
        assert_eq!(decode(&bits), set);
        assert_eq!(encode([17], 1), vec![0, 0, 0x80]);
    }
}
