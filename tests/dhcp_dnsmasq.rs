//! Differential: the Pi 3 ROM's DISCOVER, byte for byte, to dnsmasq configured as
//! the official netboot tutorial does (plus a static address for the slot) and to
//! `pirack serve`; every boot-relevant field of the two OFFERs agrees (needs root
//! and dnsmasq).

mod common;

use common::{Child, SlotLink, can_use_netns, have};
use dhcproto::v4::{DhcpOption, OptionCode};
use pirack_core::inventory::{MacAddr, Model};
use pirack_lab::sim::frames::{self, Asker, Reply};
use pirack_lab::sim::link::RawLink;
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const MAC: &str = "b8:27:eb:85:c0:f2";

/// Sends the ROM DISCOVER from the Pi's namespace; returns the first OFFER's
/// frame, retrying like the ROM while the server starts.
fn rom_exchange(pi_netns: &str, model: Model) -> Vec<u8> {
    let ns = pi_netns.to_string();
    std::thread::spawn(move || {
        pirack_lab::testbed::netns::enter(&ns).unwrap();
        let link = RawLink::open("eth0").unwrap();
        let mac: MacAddr = MAC.parse().unwrap();
        let frame = frames::loader_discover(Asker::Rom(model), mac, "7285c0f2".parse().unwrap());
        for _ in 0..10 {
            link.send(&frame).unwrap();
            let got = link
                .recv_until(Duration::from_secs(2), &AtomicBool::new(false), |f| {
                    frames::parse_reply(f).map(|_| f.to_vec())
                })
                .unwrap();
            if let Some(f) = got {
                return f;
            }
        }
        panic!("no OFFER");
    })
    .join()
    .unwrap()
}

/// Option codes in wire order, walking the TLVs after the cookie.
fn option_codes(frame: &[u8]) -> Vec<u8> {
    let bootp = &frame[14 + 20 + 8..];
    let mut opts = &bootp[240..];
    let mut codes = Vec::new();
    while let Some(&code) = opts.first() {
        codes.push(code);
        if code == 255 || code == 0 {
            opts = &opts[1..];
            continue;
        }
        let len = usize::from(opts[1]);
        opts = &opts[2 + len..];
    }
    codes
}

fn bytes(r: &Reply, code: OptionCode) -> Vec<u8> {
    match r.msg.opts().get(code) {
        Some(
            DhcpOption::VendorExtensions(v)
            | DhcpOption::ClassIdentifier(v)
            | DhcpOption::ClientMachineIdentifier(v),
        ) => v.clone(),
        Some(
            DhcpOption::SubnetMask(m)
            | DhcpOption::BroadcastAddr(m)
            | DhcpOption::ServerIdentifier(m),
        ) => m.octets().to_vec(),
        Some(DhcpOption::Router(r)) => r.iter().flat_map(|a| a.octets()).collect(),
        other => panic!("option {code:?}: {other:?}"),
    }
}

#[test]
fn pirack_and_dnsmasq_offer_the_same_boot() {
    let name = "pirack_and_dnsmasq_offer_the_same_boot";
    if !can_use_netns(name) || !have(name, "dnsmasq") {
        return;
    }
    let link = SlotLink::new("dhcp", None);
    let boot = common::boot_files(1024);

    let dnsmasq = Child(
        link.ctl
            .command("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=eth0.10",
                "--bind-interfaces",
            ])
            .args([
                "--dhcp-range=10.46.189.2,static,255.255.255.252,12h",
                &format!("--dhcp-host={MAC},10.46.189.2"),
            ])
            .args([
                "--pxe-service=0,\"Raspberry Pi Boot\"",
                "--log-dhcp",
                "--leasefile-ro",
                "--no-ping",
                "--user=root",
            ])
            .args([
                "--enable-tftp",
                &format!("--tftp-root={}", boot.path().display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let theirs_frame = rom_exchange(link.pi.name(), Model::Pi3B);
    drop(dnsmasq);

    let no_images = tempfile::tempdir().unwrap();
    let server = common::serve(
        &link.ctl,
        std::path::Path::new("hardware/example-8.yaml"),
        boot.path(),
        no_images.path(),
    );
    let ours_frame = rom_exchange(link.pi.name(), Model::Pi3B);
    drop(server);

    let theirs = frames::parse_reply(&theirs_frame).unwrap();
    let ours = frames::parse_reply(&ours_frame).unwrap();
    assert_eq!(
        ours.ip_src, theirs.ip_src,
        "the reply comes from the fileserver address"
    );
    assert_eq!(ours.server_id(), theirs.server_id());
    assert_eq!(ours.server_id(), Some(ours.ip_src), "option 54 = IP source");
    for (what, a, b) in [
        (
            "op",
            u32::from(u8::from(ours.msg.opcode())),
            u32::from(u8::from(theirs.msg.opcode())),
        ),
        ("xid", ours.msg.xid(), theirs.msg.xid()),
        (
            "yiaddr",
            u32::from(ours.msg.yiaddr()),
            u32::from(theirs.msg.yiaddr()),
        ),
        (
            "siaddr",
            u32::from(ours.msg.siaddr()),
            u32::from(theirs.msg.siaddr()),
        ),
        (
            "hops",
            u32::from(ours.msg.hops()),
            u32::from(theirs.msg.hops()),
        ),
    ] {
        assert_eq!(a, b, "{what}");
    }
    assert_eq!(ours.msg.chaddr(), theirs.msg.chaddr());
    for code in [
        OptionCode::SubnetMask,
        OptionCode::BroadcastAddr,
        OptionCode::ClassIdentifier,
        OptionCode::ClientMachineIdentifier,
    ] {
        assert_eq!(bytes(&ours, code), bytes(&theirs, code), "option {code:?}");
    }
    assert_eq!(bytes(&ours, OptionCode::ClassIdentifier), b"PXEClient");
    // dnsmasq leaves out the router the ROM did not ask for; bootcode.bin does ask.
    assert_eq!(bytes(&ours, OptionCode::Router), [10, 46, 189, 1]);
    assert_eq!(
        bytes(&ours, OptionCode::ClientMachineIdentifier),
        pirack_netboot::dhcp::pxe::ROM_3B_GUID,
        "97 echoed"
    );
    let menu = |r: &Reply, text: &[u8]| {
        bytes(r, OptionCode::VendorExtensions)
            .windows(text.len())
            .any(|w| w == text)
    };
    assert!(
        menu(&theirs, b"Raspberry Pi Boot") && menu(&ours, b"Raspberry Pi Boot   "),
        "ours is padded for the 3B"
    );
    assert!(
        ours.msg.opts().get(OptionCode::AddressLeaseTime).is_some()
            && theirs
                .msg
                .opts()
                .get(OptionCode::AddressLeaseTime)
                .is_some()
    );

    // Both: 53 first, END last, no PAD anywhere.
    for (who, f) in [("pirack", &ours_frame), ("dnsmasq", &theirs_frame)] {
        let codes = option_codes(f);
        assert_eq!(codes.first(), Some(&53), "{who}: {codes:?}");
        assert_eq!(codes.last(), Some(&255), "{who}: {codes:?}");
        assert!(!codes.contains(&0), "{who} sent a PAD: {codes:?}");
    }
}
