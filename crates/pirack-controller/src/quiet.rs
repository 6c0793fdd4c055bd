//! What a Pi's wire can make the controller write, bounded. A customer with root
//! on a Pi can send thousands of requests a second; each kind of record about a
//! slot (a refused or failed transfer, an unexpected step, an alert) goes to the
//! store up to a burst per interval, and what is held back becomes one summary
//! event with its count when the interval ends. Unknown boards are remembered
//! per slot in a bounded table, so one MAC is recorded once however often it asks.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a window of one kind of record about one slot lasts.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Unknown boards remembered per slot.
const BOARDS_PER_SLOT: usize = 16;

/// What may pass per window: `burst` records, then a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    pub burst: u32,
}

/// Boot files served: a boot is about ten, a Pi fetching in a loop is not.
pub const TFTP_FILES: Kind = Kind {
    name: "TFTP transfers",
    burst: 32,
};
/// Refused and failed transfers.
pub const TFTP_REFUSALS: Kind = Kind {
    name: "TFTP refusals and failures",
    burst: 8,
};
/// Steps a slot's state does not expect.
pub const UNEXPECTED: Kind = Kind {
    name: "unexpected steps",
    burst: 8,
};
/// Alerts: one per cause and slot per window.
pub const ALERTS: Kind = Kind {
    name: "alerts",
    burst: 1,
};

#[derive(Debug)]
struct Window {
    opened: Instant,
    passed: u32,
    held: u64,
    /// The record kind and detail of the last one held back.
    last: (String, String),
}

/// Records held back in a window now ended: one summary event each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub slot: String,
    pub kind: Kind,
    /// The event kind of the records held (`observed`, `alert`, ...).
    pub record: String,
    pub count: u64,
    pub last: String,
}

/// A window's key: the slot, the kind's name, and the kind's own key.
type WindowKey = (String, &'static str, String);

#[derive(Debug, Default)]
pub struct Quiet {
    windows: Mutex<HashMap<WindowKey, (Kind, Window)>>,
    boards: Mutex<HashMap<String, VecDeque<String>>>,
}

impl Quiet {
    /// Whether a `kind` record about `slot` goes to the store now; if not, it is
    /// counted for the window's summary. `key` splits a kind further (an alert's
    /// cause), `record` and `detail` are what the summary says of the last one.
    pub fn admit(&self, slot: &str, kind: Kind, key: &str, record: &str, detail: &str) -> bool {
        self.admit_at(Instant::now(), slot, kind, key, record, detail)
    }

    fn admit_at(
        &self,
        now: Instant,
        slot: &str,
        kind: Kind,
        key: &str,
        record: &str,
        detail: &str,
    ) -> bool {
        let mut windows = self.windows.lock().expect("not poisoned");
        let (_, w) = windows
            .entry((slot.to_string(), kind.name, key.to_string()))
            .or_insert_with(|| {
                (
                    kind,
                    Window {
                        opened: now,
                        passed: 0,
                        held: 0,
                        last: Default::default(),
                    },
                )
            });
        if w.passed < kind.burst {
            w.passed += 1;
            return true;
        }
        w.held += 1;
        w.last = (record.to_string(), detail.to_string());
        false
    }

    /// Ends the windows older than [`INTERVAL`]: those that held records back,
    /// as summaries.
    pub fn due(&self) -> Vec<Held> {
        self.due_at(Instant::now())
    }

    fn due_at(&self, now: Instant) -> Vec<Held> {
        let mut windows = self.windows.lock().expect("not poisoned");
        let mut out = Vec::new();
        windows.retain(|(slot, _, _), (kind, w)| {
            if now.duration_since(w.opened) < INTERVAL {
                return true;
            }
            if w.held > 0 {
                out.push(Held {
                    slot: slot.clone(),
                    kind: *kind,
                    record: w.last.0.clone(),
                    count: w.held,
                    last: w.last.1.clone(),
                });
            }
            false
        });
        out
    }

    /// Whether board `id` is new in `slot` (not among the last few seen there);
    /// remembers it.
    pub fn new_board(&self, slot: &str, id: &str) -> bool {
        let mut boards = self.boards.lock().expect("not poisoned");
        let seen = boards.entry(slot.to_string()).or_default();
        if seen.iter().any(|b| b == id) {
            return false;
        }
        if seen.len() >= BOARDS_PER_SLOT {
            seen.pop_front();
        }
        seen.push_back(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_passes_its_burst_then_becomes_one_count() {
        let q = Quiet::default();
        let t0 = Instant::now();
        let passed = (0..20_000)
            .filter(|i| {
                q.admit_at(
                    t0,
                    "A-01",
                    TFTP_REFUSALS,
                    "",
                    "observed",
                    &format!("refused {i}"),
                )
            })
            .count();
        assert_eq!(passed, 8);
        assert!(
            q.admit_at(t0, "A-02", TFTP_REFUSALS, "", "observed", "x"),
            "per slot"
        );
        assert!(
            q.due_at(t0 + Duration::from_secs(1)).is_empty(),
            "window still open"
        );
        let held = q.due_at(t0 + INTERVAL);
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].count, 20_000 - 8);
        assert_eq!(held[0].last, "refused 19999");
        assert!(q.admit_at(t0 + INTERVAL, "A-01", TFTP_REFUSALS, "", "o", "again"));
    }

    #[test]
    fn alerts_pass_once_per_cause_and_boards_once_per_mac() {
        let q = Quiet::default();
        let t0 = Instant::now();
        assert!(q.admit_at(t0, "A-01", ALERTS, "isolation", "alert", "a"));
        assert!(!q.admit_at(t0, "A-01", ALERTS, "isolation", "alert", "a"));
        assert!(q.admit_at(t0, "A-01", ALERTS, "hold", "alert", "b"));
        assert!(q.new_board("A-01", "aa:bb"));
        assert!(!q.new_board("A-01", "aa:bb"));
        for i in 0..100 {
            q.new_board("A-01", &format!("m{i}"));
        }
        assert_eq!(q.boards.lock().unwrap()["A-01"].len(), BOARDS_PER_SLOT);
    }
}
