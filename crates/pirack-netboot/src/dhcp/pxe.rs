//! What a Raspberry Pi's DHCP packets look like, and the PXE boot menu it needs in
//! option 43 (pi3-netboot notes §2.1–2.5).

use pirack_core::inventory::{MacAddr, Serial};

/// The vendor class every Pi 3 loader sends (option 60).
pub const ROM_VENDOR_CLASS: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";
/// The xid the Pi 3 ROM and bootcode.bin always use (653460281).
pub const ROM_XID: u32 = 0x26f3_0339;
/// The 3B ROM's constant option 97: type 0 and sixteen 0x44 bytes.
pub const ROM_3B_GUID: [u8; 17] = {
    let mut g = [0x44u8; 17];
    g[0] = 0;
    g
};

/// The menu text the ROM looks for. The 3B ROM mis-measures it and needs three
/// trailing spaces; every later loader does a substring match, so the padded form
/// suits all.
pub const BOOT_MENU_TEXT: &[u8] = b"Raspberry Pi Boot   ";

/// Option 43 as dnsmasq's `pxe-service=0,"Raspberry Pi Boot   "` encodes it: discovery
/// control 3, menu prompt "PXE" with timeout 0, one boot menu item, then 255.
pub fn option_43() -> Vec<u8> {
    let mut v = vec![6, 1, 3, 10, 4, 0, b'P', b'X', b'E', 9];
    v.push(3 + BOOT_MENU_TEXT.len() as u8);
    v.extend_from_slice(&[0, 0, BOOT_MENU_TEXT.len() as u8]);
    v.extend_from_slice(BOOT_MENU_TEXT);
    v.push(255);
    v
}

/// Which loader sent a DHCP packet, as far as the packet tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// A Pi 3B boot ROM: constant GUID, so no serial.
    Rom3B,
    /// A Pi 3B+ ROM or bootcode.bin: the serial is in the GUID.
    PiFirmware(Serial),
    /// Another PXE client (option 60 `PXEClient...`).
    OtherPxe,
    /// An ordinary DHCP client (Linux, a Pi's OS).
    Plain,
}

impl Loader {
    pub fn is_pxe(self) -> bool {
        self != Loader::Plain
    }
    pub fn serial(self) -> Option<Serial> {
        match self {
            Loader::PiFirmware(s) => Some(s),
            _ => None,
        }
    }
}

/// Classifies a client from its vendor class (60), architecture (93) and GUID (97).
pub fn classify(vendor_class: Option<&[u8]>, arch: Option<u16>, guid: Option<&[u8]>) -> Loader {
    let pxe = vendor_class.is_some_and(|v| v.starts_with(b"PXEClient"));
    if !pxe {
        return Loader::Plain;
    }
    let pi_class =
        vendor_class.is_some_and(|v| v.starts_with(b"PXEClient:Arch:00000")) && arch == Some(0);
    match guid {
        Some(g) if pi_class && g == ROM_3B_GUID => Loader::Rom3B,
        Some(g) if pi_class => serial_from_guid(g).map_or(Loader::OtherPxe, Loader::PiFirmware),
        _ => Loader::OtherPxe,
    }
}

/// A serial GUID is type 0 then the serial little-endian, four times over.
pub fn serial_from_guid(g: &[u8]) -> Option<Serial> {
    if g.len() != 17 || g[0] != 0 {
        return None;
    }
    let first: [u8; 4] = g[1..5].try_into().ok()?;
    g[1..]
        .chunks(4)
        .all(|c| c == first)
        .then(|| Serial::new(u32::from_le_bytes(first)))
}

/// The GUID a 3B+ ROM or bootcode.bin sends for a serial.
pub fn guid_for_serial(serial: Serial) -> [u8; 17] {
    let mut g = [0u8; 17];
    for c in g[1..].chunks_mut(4) {
        c.copy_from_slice(&serial.value().to_le_bytes());
    }
    g
}

/// Raspberry Pi 3 MACs carry the OUI b8:27:eb.
pub fn is_pi3_mac(mac: MacAddr) -> bool {
    mac.is_raspberry_pi_oui()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_43_is_the_padded_menu_from_the_notes() {
        let expected = "06 01 03 0a 04 00 50 58 45 09 17 00 00 14 52 61 73 70 62 65 72 72 79 20 50 69 20 42 6f 6f 74 20 20 20 ff";
        let got: Vec<String> = option_43().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got.join(" "), expected);
    }

    #[test]
    fn classifies_rom_and_firmware() {
        let serial: Serial = "b66c4c16".parse().unwrap();
        let guid = guid_for_serial(serial);
        // FW#1605: serial b66c4c16 gives GUID 00:16:4c:6c:b6:16:4c:6c:b6...
        assert_eq!(
            &guid[..9],
            &[0, 0x16, 0x4c, 0x6c, 0xb6, 0x16, 0x4c, 0x6c, 0xb6]
        );
        assert_eq!(
            classify(Some(ROM_VENDOR_CLASS), Some(0), Some(&ROM_3B_GUID)),
            Loader::Rom3B
        );
        assert_eq!(
            classify(Some(ROM_VENDOR_CLASS), Some(0), Some(&guid)),
            Loader::PiFirmware(serial)
        );
        assert_eq!(
            classify(Some(b"PXEClient:Arch:00007"), Some(7), Some(&guid)),
            Loader::OtherPxe
        );
        assert_eq!(classify(Some(b"udhcp 1.35"), None, None), Loader::Plain);
        assert_eq!(classify(None, None, None), Loader::Plain);
    }
}
