//! A check's verdict with hysteresis: one lost ping is not an outage, and one
//! answer after an outage is not a recovery.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not yet seen long enough to say.
    #[default]
    Unknown,
    Up,
    Down,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Down => "down",
        }
    }
}

/// How many results in a row change the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub down_after: u32,
    pub up_after: u32,
}

/// One check's run of results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub status: Status,
    /// Failures in a row (0 after a success).
    pub fails: u32,
    /// Successes in a row (0 after a failure).
    pub oks: u32,
}

impl Health {
    /// Takes one result; the new status when it changed.
    pub fn observe(&mut self, ok: bool, t: Thresholds) -> Option<Status> {
        if ok {
            self.oks = self.oks.saturating_add(1);
            self.fails = 0;
        } else {
            self.fails = self.fails.saturating_add(1);
            self.oks = 0;
        }
        let next = if self.fails >= t.down_after.max(1) {
            Status::Down
        } else if self.oks >= t.up_after.max(1) {
            Status::Up
        } else {
            self.status
        };
        (next != self.status).then(|| {
            self.status = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        down_after: 3,
        up_after: 2,
    };

    fn run(h: &mut Health, results: &[bool]) -> Vec<Status> {
        results.iter().filter_map(|ok| h.observe(*ok, T)).collect()
    }

    #[test]
    fn down_after_n_failures_in_a_row_up_after_m_successes() {
        let mut h = Health::default();
        assert_eq!(run(&mut h, &[true, true]), [Status::Up]);
        // Two lost, one answered, two lost: never three in a row.
        assert!(run(&mut h, &[false, false, true, false, false]).is_empty());
        assert_eq!(run(&mut h, &[false]), [Status::Down]);
        assert!(run(&mut h, &[false, true, false, true]).is_empty());
        assert_eq!(run(&mut h, &[true]), [Status::Up]);
    }

    #[test]
    fn a_slot_failing_from_the_start_goes_down() {
        let mut h = Health::default();
        assert_eq!(run(&mut h, &[false, false, false]), [Status::Down]);
    }
}
