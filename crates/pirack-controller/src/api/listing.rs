//! `GET /v1/slots` as bytes, made once per change of the slots: provisioning
//! systems and rack views poll it, and between two changes every caller of one
//! scope reads the same JSON.

use super::model::Slot;
use crate::Controller;
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;

/// The JSON listing per scope (`None`: staff, every slot), with the mirror's
/// generation it was made from.
#[derive(Debug, Default)]
pub struct Listings {
    made: Mutex<HashMap<Option<String>, (u64, Bytes)>>,
}

/// Scopes kept at most: one per customer polling, and staff.
const SCOPES: usize = 4096;

impl Listings {
    /// The listing of `owner`'s slots (every slot for `None`).
    pub fn get(&self, ctl: &Controller, owner: Option<&str>) -> Bytes {
        let mirror = ctl.store.mirror();
        // Read before the rows: a change while they are read makes this stale at once.
        let generation = mirror.generation();
        let key = owner.map(str::to_string);
        if let Some((g, bytes)) = self.made.lock().expect("not poisoned").get(&key)
            && *g == generation
        {
            return bytes.clone();
        }
        let slots: Vec<Slot> = mirror
            .slots(owner)
            .into_iter()
            .map(|r| Slot::new(ctl, r))
            .collect();
        let bytes = Bytes::from(serde_json::to_vec(&slots).unwrap_or_default());
        let mut made = self.made.lock().expect("not poisoned");
        if made.len() >= SCOPES {
            made.clear();
        }
        made.insert(key, (generation, bytes.clone()));
        bytes
    }
}
