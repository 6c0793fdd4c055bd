//! A route's budget of calls: at most `max` in any window of `per` (Prowl
//! allows 1,000 calls an hour per address), so a flapping Pi cannot spend it.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Window {
    max: usize,
    per_ms: u64,
    /// When the calls in the window were made (ms), oldest first.
    sent: VecDeque<u64>,
}

impl Window {
    pub fn new(max: usize, per_ms: u64) -> Window {
        Window {
            max,
            per_ms,
            sent: VecDeque::new(),
        }
    }

    /// Whether a call may be made at `now` (ms); if so it is counted.
    pub fn take(&mut self, now: u64) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= self.per_ms)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= self.max {
            return false;
        }
        self.sent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_in_any_window() {
        let mut w = Window::new(3, 1_000);
        assert!(w.take(0) && w.take(10) && w.take(20));
        assert!(!w.take(999));
        assert!(w.take(1_000));
        assert!(!w.take(1_005));
        assert!(w.take(1_010) && !w.take(1_011));
    }
}
