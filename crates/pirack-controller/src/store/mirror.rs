//! What the API reads on every request, kept in memory in step with the store:
//! the slots (every write of a slot goes through [`Store`] and lands here after
//! its commit), the live tokens (reloaded every second, since `pirack token`
//! writes them from another process), and a broadcast of every event committed.
//! The store stays the truth: a restart loads the mirror from it.

use super::events::EventRow;
use super::slots::SlotRow;
use super::tokens::TokenRow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How many events a slow stream may fall behind before it reads the store.
const EVENT_BACKLOG: usize = 4096;
/// Token lookups the store may take per second for tokens the mirror lacks
/// (one just made by `pirack token create`): a flood of bad tokens costs the
/// store nothing beyond this.
const MISSES_PER_SECOND: u32 = 20;

pub struct Mirror {
    /// Every slot by key.
    slots: RwLock<BTreeMap<String, SlotRow>>,
    /// Bumped on every slot change: what a cached listing was made from.
    generation: AtomicU64,
    /// Live tokens by hash.
    tokens: RwLock<HashMap<String, TokenRow>>,
    /// When the reload the live tokens came from started (Unix ms).
    tokens_at: std::sync::atomic::AtomicI64,
    /// One reload at a time; those who wait share it.
    pub(super) reloading: tokio::sync::Mutex<()>,
    /// Store lookups of unknown tokens in the current second.
    misses: Mutex<(Instant, u32)>,
    events: broadcast::Sender<Arc<EventRow>>,
}

impl Default for Mirror {
    fn default() -> Mirror {
        Mirror {
            slots: RwLock::default(),
            generation: AtomicU64::new(0),
            tokens: RwLock::default(),
            tokens_at: std::sync::atomic::AtomicI64::new(0),
            reloading: tokio::sync::Mutex::new(()),
            misses: Mutex::new((Instant::now(), 0)),
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }
}

impl Mirror {
    pub(super) fn load_slots(&self, rows: Vec<SlotRow>) {
        let mut slots = self.slots.write().expect("not poisoned");
        *slots = rows.into_iter().map(|r| (r.key.clone(), r)).collect();
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub(super) fn slot_changed(&self, row: &SlotRow) {
        let mut slots = self.slots.write().expect("not poisoned");
        // Writes of one slot may finish out of order: the newer version stays.
        if slots
            .get(&row.key)
            .is_none_or(|old| old.version <= row.version)
        {
            slots.insert(row.key.clone(), row.clone());
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// A slot by key or position.
    pub fn slot(&self, key: &str) -> Option<SlotRow> {
        let slots = self.slots.read().expect("not poisoned");
        slots
            .get(key)
            .or_else(|| slots.values().find(|s| s.position == key))
            .cloned()
    }

    /// The slots still in the inventory, by position; only `owner`'s when given.
    pub fn slots(&self, owner: Option<&str>) -> Vec<SlotRow> {
        let slots = self.slots.read().expect("not poisoned");
        let mut out: Vec<SlotRow> = slots
            .values()
            .filter(|s| s.in_inventory && owner.is_none_or(|o| s.owner.as_deref() == Some(o)))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.position.cmp(&b.position));
        out
    }

    /// Changes with every slot write.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The live tokens as a reload that started at `at` (Unix ms) read them.
    pub(super) fn load_tokens(&self, rows: Vec<(String, TokenRow)>, at: i64) {
        *self.tokens.write().expect("not poisoned") = rows.into_iter().collect();
        self.tokens_at.fetch_max(at, Ordering::AcqRel);
    }

    /// When the reload the live tokens came from started (Unix ms).
    pub(super) fn tokens_at(&self) -> i64 {
        self.tokens_at.load(Ordering::Acquire)
    }

    pub(super) fn token(&self, hash: &str) -> Option<TokenRow> {
        self.tokens.read().expect("not poisoned").get(hash).cloned()
    }

    pub(super) fn add_token(&self, hash: String, row: TokenRow) {
        self.tokens.write().expect("not poisoned").insert(hash, row);
    }

    /// Whether token `id` is live as far as the mirror knows.
    pub fn token_live(&self, id: &str) -> bool {
        self.tokens
            .read()
            .expect("not poisoned")
            .values()
            .any(|t| t.id == id)
    }

    /// Whether the store may be asked about an unknown token now.
    pub(super) fn may_look_up(&self) -> bool {
        let mut m = self.misses.lock().expect("not poisoned");
        if m.0.elapsed() >= Duration::from_secs(1) {
            *m = (Instant::now(), 0);
        }
        m.1 += 1;
        m.1 <= MISSES_PER_SECOND
    }

    pub(super) fn publish(&self, e: EventRow) {
        // No subscriber is no error: nobody is streaming.
        let _ = self.events.send(Arc::new(e));
    }

    /// Every event committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRow>> {
        self.events.subscribe()
    }
}
