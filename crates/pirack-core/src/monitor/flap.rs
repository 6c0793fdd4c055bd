//! A flapping fault (a Pi whose link comes and goes) is one alert, not a fire
//! and a recovery per flap: once its cause has opened `opens` times within
//! `window`, its alert stays open until the fault has been gone for `quiet`,
//! and a return within that time is the same alert, told nobody again.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub opens: usize,
    pub window_ms: i64,
    pub quiet_ms: i64,
}

#[derive(Debug, Default)]
pub struct Flaps {
    /// When each cause's alerts opened, within the window, oldest first.
    opened: HashMap<String, VecDeque<i64>>,
    /// Since when each held alert's fault has been gone.
    clear_since: HashMap<String, i64>,
}

impl Flaps {
    /// An alert for `cause` opened at `now` (ms).
    pub fn opened(&mut self, cause: &str, now: i64, rule: Rule) {
        let times = self.opened.entry(cause.to_string()).or_default();
        times.push_back(now);
        while times.len() > rule.opens || times.front().is_some_and(|t| now - t >= rule.window_ms) {
            times.pop_front();
        }
    }

    /// The fault behind `cause`'s alert is there at this look: a pending
    /// resolution starts over.
    pub fn present(&mut self, cause: &str) {
        self.clear_since.remove(cause);
    }

    /// Whether `cause` has opened `opens` times within the window before `now`.
    pub fn flapping(&self, cause: &str, now: i64, rule: Rule) -> bool {
        self.opened.get(cause).is_some_and(|t| {
            t.iter().filter(|at| now - **at < rule.window_ms).count() >= rule.opens
        })
    }

    /// The fault behind `cause`'s alert is gone at `now`: whether the alert
    /// resolves now, or is held while a flapping fault proves it stays away.
    pub fn may_resolve(&mut self, cause: &str, now: i64, rule: Rule) -> bool {
        if !self.flapping(cause, now, rule) {
            self.clear_since.remove(cause);
            return true;
        }
        let since = *self.clear_since.entry(cause.to_string()).or_insert(now);
        if now - since < rule.quiet_ms {
            return false;
        }
        self.clear_since.remove(cause);
        self.opened.remove(cause);
        true
    }

    /// Forgets what is older than the window (causes long settled).
    pub fn prune(&mut self, now: i64, rule: Rule) {
        self.opened.retain(|_, t| {
            t.retain(|at| now - *at < rule.window_ms);
            !t.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        opens: 3,
        window_ms: 60_000,
        quiet_ms: 10_000,
    };

    #[test]
    fn resolves_at_once_until_it_flaps() {
        let mut f = Flaps::default();
        f.opened("slot:a", 0, RULE);
        assert!(f.may_resolve("slot:a", 1_000, RULE));
        f.opened("slot:a", 2_000, RULE);
        assert!(f.may_resolve("slot:a", 3_000, RULE));
        f.opened("slot:a", 4_000, RULE);
        // The third opening within the minute: held until ten quiet seconds.
        assert!(!f.may_resolve("slot:a", 5_000, RULE));
        assert!(!f.may_resolve("slot:a", 9_000, RULE));
        // Back before the quiet time is up: it starts over.
        f.present("slot:a");
        assert!(!f.may_resolve("slot:a", 12_000, RULE));
        assert!(!f.may_resolve("slot:a", 21_000, RULE));
        assert!(f.may_resolve("slot:a", 22_000, RULE));
        // Settled: the next fault is a fresh start.
        f.opened("slot:a", 30_000, RULE);
        assert!(f.may_resolve("slot:a", 31_000, RULE));
    }

    #[test]
    fn openings_out_of_the_window_do_not_count() {
        let mut f = Flaps::default();
        for t in [0, 40_000, 80_000] {
            f.opened("slot:b", t, RULE);
        }
        assert!(!f.flapping("slot:b", 80_001, RULE));
        assert!(f.may_resolve("slot:b", 80_001, RULE));
        assert!(!f.flapping("slot:c", 0, RULE));
        f.prune(200_000, RULE);
        assert!(f.opened.is_empty());
    }
}
