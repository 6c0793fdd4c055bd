//! The slots' wires: each slot's storage interface, whether it is up with the
//! fileserver's address, and its index. DHCP and TFTP take a datagram as a slot's
//! only when it came in on that slot's interface (IP_PKTINFO) and from that slot's
//! Pi address: a customer with root on a Pi can claim any address, but cannot
//! change the wire its packets arrive on. What arrives otherwise is dropped,
//! counted, and reported on the slot whose wire it came from.

use crate::Shared;
use crate::events::{Bus, Event};
use crate::links::Links;
use pirack_core::plan::SlotPlan;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Which slot's interface has which index, while up.
#[derive(Debug, Default)]
pub struct Wires {
    by_index: RwLock<HashMap<u32, String>>,
    index_of: RwLock<HashMap<String, u32>>,
}

impl Wires {
    /// The slot (by position) whose interface has index `ifindex`.
    pub fn slot_on(&self, ifindex: u32) -> Option<String> {
        self.by_index
            .read()
            .expect("not poisoned")
            .get(&ifindex)
            .cloned()
    }

    /// The index of the slot's interface, while it is up.
    pub fn index_of(&self, position: &str) -> Option<u32> {
        self.index_of
            .read()
            .expect("not poisoned")
            .get(position)
            .copied()
    }

    fn set(&self, position: &str, index: Option<u32>) {
        let mut by_index = self.by_index.write().expect("not poisoned");
        let mut index_of = self.index_of.write().expect("not poisoned");
        if let Some(old) = index_of.remove(position) {
            by_index.remove(&old);
        }
        if let Some(i) = index {
            by_index.insert(i, position.to_string());
            index_of.insert(position.to_string(), i);
        }
    }
}

/// Watches the host's interfaces (listing them again at least every
/// `fallback`) and keeps `slots`' wires in step with them.
pub async fn keep(slots: Vec<SlotPlan>, net: std::sync::Arc<Shared>, fallback: Duration) {
    let (links, follow) = crate::links::start(fallback);
    tokio::join!(follow, watch(slots, net, links));
}

/// Keeps every slot's entry in `wires` in step with its interface as `links`
/// lists them, and reports each change on the bus (a missing one once per
/// reason).
async fn watch(slots: Vec<SlotPlan>, net: std::sync::Arc<Shared>, mut links: Links) {
    let (wires, bus) = (&net.wires, &net.bus);
    let mut last: HashMap<String, Result<u32, String>> = HashMap::new();
    loop {
        let now = std::sync::Arc::clone(&links.borrow_and_update());
        for slot in &slots {
            let state = now.check(&slot.interface, slot.fileserver_ip);
            if last.get(&slot.position) == Some(&state) {
                continue;
            }
            let interface = slot.interface.clone();
            let event = match &state {
                Ok(i) => {
                    wires.set(&slot.position, Some(*i));
                    Event::InterfaceUp { interface }
                }
                Err(reason) => {
                    wires.set(&slot.position, None);
                    Event::InterfaceDown {
                        interface,
                        reason: reason.clone(),
                    }
                }
            };
            bus.publish(Some(&slot.position), event);
            last.insert(slot.position.clone(), state);
        }
        if links.changed().await.is_err() {
            return;
        }
    }
}

/// Datagrams dropped for coming in on the wrong wire, reported at most once a
/// second per (wire, claimed address): a flood costs a counter, not the bus.
#[derive(Debug, Default)]
pub struct Spoofs {
    seen: Mutex<HashMap<SpoofKey, Reported>>,
}

/// A wire, the address claimed on it, and the protocol.
type SpoofKey = (u32, IpAddr, &'static str);
/// The last report, and what was dropped since.
type Reported = (Option<Instant>, u64);

impl Spoofs {
    /// Counts one `protocol` datagram that came in on `ifindex` claiming `claimed`,
    /// and reports what was dropped since the last report when one is due.
    pub fn drop(
        &self,
        wires: &Wires,
        bus: &Bus,
        ifindex: u32,
        claimed: IpAddr,
        protocol: &'static str,
    ) {
        let now = Instant::now();
        let dropped = {
            let mut seen = self.seen.lock().expect("not poisoned");
            let (last, pending) = seen.entry((ifindex, claimed, protocol)).or_default();
            *pending += 1;
            if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
                return;
            }
            *last = Some(now);
            std::mem::take(pending)
        };
        bus.publish(
            wires.slot_on(ifindex).as_deref(),
            Event::Spoofed {
                ifindex,
                claimed,
                protocol: protocol.to_string(),
                dropped,
            },
        );
    }
}
