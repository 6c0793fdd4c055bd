//! Garbage never panics or stalls the DHCP and TFTP servers: property tests of the
//! parsers and answers, and live servers on loopback fed random packets that must
//! still answer a good request afterwards.

mod common;

use pirack_core::inventory::{BoardPolicy, MacAddr, Model};
use pirack_core::plan::render::slot::{ImageFiles, cmdline_for, config_txt_for};
use pirack_core::plan::{Ledger, Plan, SlotPlan, plan};
use pirack_lab::sim::frames::{self, Asker};
use pirack_netboot::boards::{Boards, Known};
use pirack_netboot::boots::{Boots, SlotBoot};
use pirack_netboot::dhcp::{self, Request};
use pirack_netboot::events::{Bus, Event};
use pirack_netboot::tftp::{self, wire::Repr};
use pirack_netboot::{Shared, wires};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The boards `plan` places, as the netboot services' table.
fn planned(plan: &Plan) -> Vec<(String, Known)> {
    plan.slots
        .iter()
        .map(|s| (s.position.clone(), Known::planned(s)))
        .collect()
}

fn example() -> (pirack_core::inventory::Site, Plan) {
    let site = common::site("hardware/example-8.yaml");
    let ledger = Ledger::load(Path::new("hardware/example-8.ledger.yaml")).unwrap();
    let (p, _) = plan(&site, &ledger).unwrap();
    (site, p)
}

fn rom_bootp(model: Model) -> Vec<u8> {
    let mac: MacAddr = "b8:27:eb:85:c0:f2".parse().unwrap();
    frames::loader_discover(Asker::Rom(model), mac, "7285c0f2".parse().unwrap())[42..].to_vec()
}

/// Option codes of an encoded reply, in order.
fn codes(reply: &[u8]) -> Vec<u8> {
    let mut o = &reply[240..];
    let mut out = vec![];
    while let Some(&c) = o.first() {
        out.push(c);
        if c == 255 {
            break;
        }
        o = &o[2 + usize::from(o[1])..];
    }
    out
}

fn check_answer(bytes: &[u8], slot: &SlotPlan) -> Result<(), TestCaseError> {
    let Ok(req) = Request::parse(bytes) else {
        return Ok(());
    };
    for known in [false, true] {
        if let Ok(reply) = dhcp::answer(&req, slot, known, &dhcp::Policy::default()) {
            let back = dhcproto::v4::Message::decode(&mut dhcproto::v4::Decoder::new(&reply.bytes));
            let back = back.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.xid(), req.msg.xid());
            prop_assert!(back.yiaddr() == slot.pi_ip || back.yiaddr().is_unspecified());
            let c = codes(&reply.bytes);
            prop_assert_eq!(c.first(), Some(&53));
            prop_assert_eq!(c.last(), Some(&255));
            prop_assert!(!c.contains(&0), "PAD in {:?}", c);
        }
    }
    Ok(())
}

use dhcproto::v4::Decodable;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_dhcp_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        let (_, p) = example();
        check_answer(&bytes, &p.slots[0])?;
    }

    #[test]
    fn damaged_rom_discovers_never_panic(cut in 0usize..400, flips in prop::collection::vec((0usize..400, any::<u8>()), 0..6), extra in prop::collection::vec(any::<u8>(), 0..600)) {
        let (_, p) = example();
        let mut b = rom_bootp(Model::Pi3B);
        for (at, v) in flips {
            let i = at % b.len();
            b[i] = v;
        }
        let mut truncated = b.clone();
        truncated.truncate(cut.min(b.len()));
        check_answer(&truncated, &p.slots[0])?;
        b.extend(extra);
        check_answer(&b, &p.slots[0])?;
    }
}

#[test]
fn every_rom_discover_gets_the_same_offer() {
    let (_, p) = example();
    for model in [Model::Pi3B, Model::Pi3BPlus] {
        let req = Request::parse(&rom_bootp(model)).unwrap();
        let a = dhcp::answer(&req, &p.slots[0], true, &dhcp::Policy::default()).unwrap();
        let b = dhcp::answer(&req, &p.slots[0], true, &dhcp::Policy::default()).unwrap();
        assert_eq!(a, b, "retransmitted DISCOVERs are answered alike");
        assert_eq!(a.delay, Duration::from_secs(1));
    }
}

/// 2000 random datagrams of up to 1500 bytes to 127.0.0.1:`port`, from the
/// returned socket.
async fn send_garbage(port: u16) -> tokio::net::UdpSocket {
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let garbage = prop::collection::vec(any::<u8>(), 0..1500);
    for _ in 0..2000 {
        let bytes = garbage.new_tree(&mut runner).unwrap().current();
        client.send_to(&bytes, ("127.0.0.1", port)).await.unwrap();
    }
    client
}

/// A TFTP server for slot A-01 with its Pi at 127.0.0.1, on an ephemeral port of
/// `rt`; returns the port.
fn tftp_on_loopback(rt: &tokio::runtime::Runtime, boot: &Path) -> u16 {
    let (site, p) = example();
    let mut slot = p.slots[0].clone();
    slot.interface = "lo".into();
    slot.pi_ip = Ipv4Addr::LOCALHOST;
    slot.fileserver_ip = Ipv4Addr::LOCALHOST;
    let one = Plan {
        site: p.site.clone(),
        slots: vec![slot.clone()],
    };
    let boards = Arc::new(Boards::new(BoardPolicy::Hold, planned(&one)));
    let boots = Arc::new(Boots::default());
    boots.set_bootcode(Some(boot.join("bootcode.bin")));
    boots.set(
        &slot.position,
        Some(SlotBoot {
            image: "tiny-1".into(),
            dir: boot.to_path_buf(),
            cmdline: cmdline_for(&site, &slot, "").into_bytes().into(),
            config: config_txt_for(
                &site,
                &slot,
                Some(ImageFiles {
                    kernel: "kernel8.img",
                    initramfs: None,
                }),
            )
            .into_bytes()
            .into(),
        }),
    );
    let net = Arc::new(Shared::new(boards, boots, Bus::default()));
    let cfg = tftp::Config {
        port: 0,
        ..tftp::Config::default()
    };
    let server = Arc::new(tftp::Server::new(
        std::slice::from_ref(&slot),
        Arc::clone(&net),
        cfg,
    ));
    let _guard = rt.enter();
    let sock = server.bind().unwrap();
    let port = sock.local_addr().unwrap().port();
    rt.spawn(wires::keep(
        vec![slot.clone()],
        Arc::clone(&net),
        Duration::from_millis(100),
    ));
    // The slot's wire (loopback here) is known before requests come.
    while net.wires.index_of(&slot.position).is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.spawn(server.run(sock));
    port
}

/// Random datagrams at a live TFTP server, then a real request must still work.
#[test]
fn tftp_server_survives_garbage() {
    let boot = common::boot_files(4096);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = tftp_on_loopback(&rt, boot.path());
    rt.block_on(async {
        send_garbage(port).await;
        for (name, len) in [
            ("bootcode.bin", 52_456usize),
            ("7285c0f2/bcm2710-rpi-3-b.dtb", 24_621),
        ] {
            let rrq = Repr::Read {
                filename: name,
                mode: "octet",
                options: Default::default(),
            }
            .to_vec();
            let fresh = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            fresh.send_to(&rrq, ("127.0.0.1", port)).await.unwrap();
            let mut buf = [0u8; 600];
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), fresh.recv_from(&mut buf))
                .await
                .expect("server still answers")
                .unwrap();
            assert_eq!(
                Repr::parse(&buf[..n]),
                Ok(Repr::Data {
                    block: 1,
                    data: &std::fs::read(boot.path().join(name.rsplit('/').next().unwrap()))
                        .unwrap()[..512]
                }),
                "{name} ({len})"
            );
        }
    });
}

/// Random datagrams at a live DHCP socket (on loopback), then a ROM DISCOVER must
/// still be seen and answered.
#[test]
fn dhcp_server_survives_garbage() {
    let (_, p) = example();
    let mut slot = p.slots[0].clone();
    slot.interface = "lo".into();
    slot.fileserver_ip = Ipv4Addr::LOCALHOST;
    // The garbage and the DISCOVER come from loopback's address, as the Pi's.
    slot.pi_ip = Ipv4Addr::LOCALHOST;
    let one = Plan {
        site: p.site.clone(),
        slots: vec![slot.clone()],
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let bus = Bus::default();
        let mut events = bus.subscribe();
        let boards = Arc::new(Boards::new(BoardPolicy::Hold, planned(&one)));
        let port = {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let cfg = Arc::new(dhcp::server::Config {
            server_port: port,
            client_port: port + 1,
            retry: Duration::from_millis(100),
            ..Default::default()
        });
        let net = Arc::new(Shared::new(boards, Arc::default(), bus));
        let sock = dhcp::server::bind(&cfg).unwrap();
        tokio::spawn(wires::keep(vec![slot.clone()], Arc::clone(&net), cfg.retry));
        tokio::spawn(dhcp::server::run(sock, vec![slot], net, cfg));
        loop {
            if matches!(
                events.recv().await.unwrap().event,
                Event::InterfaceUp { .. }
            ) {
                break;
            }
        }
        let client = send_garbage(port).await;
        client
            .send_to(&rom_bootp(Model::Pi3B), ("127.0.0.1", port))
            .await
            .unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Event::DhcpDiscover { mac, .. } = &events.recv().await.unwrap().event {
                    return mac.clone();
                }
            }
        })
        .await
        .expect("the server still answers after 2000 garbage packets");
        assert_eq!(seen, "b8:27:eb:85:c0:f2");
    });
}

/// A file past 65535 blocks of 512 bytes (a kernel over 32 MiB) wraps the block
/// number and still arrives whole, to the simulator's lock-step client.
#[test]
fn tftp_block_numbers_wrap_for_big_files() {
    let boot = common::boot_files(65_536 * 512 + 700);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = tftp_on_loopback(&rt, boot.path());
    let handle = std::thread::spawn(move || {
        let mut c =
            pirack_lab::sim::tftp_client::Client::new(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 0);
        c.set_server_port(port);
        c.request(
            "7285c0f2/kernel8.img",
            true,
            false,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap()
    });
    let got = rt.block_on(async {
        tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap()
    });
    let want = std::fs::read(boot.path().join("kernel8.img")).unwrap();
    assert_eq!(got, pirack_lab::sim::tftp_client::Fetch::Got(want));
}
