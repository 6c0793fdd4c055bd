//! A slot's last day of round trips and draw for the rack view's chart. A
//! probe every 10 s is 8,640 samples a day; averaged into one point a minute
//! it is 1,440, which a thousand slots keep in a few tens of MB.

use serde::Serialize;
use std::collections::VecDeque;

/// One minute's point: its start (Unix ms), mean round trip (ms), mean draw (W).
pub type Point = (i64, Option<f64>, Option<f64>);

const MINUTE_MS: i64 = 60_000;
/// A day of minutes.
const POINTS: usize = 24 * 60;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Chart {
    points: VecDeque<Point>,
    /// The open minute's sums and counts, folded into its point on each sample.
    #[serde(skip)]
    open: Sums,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    rtt: (f64, u32),
    watts: (f64, u32),
}

fn mean((sum, n): (f64, u32)) -> Option<f64> {
    (n > 0).then(|| sum / f64::from(n))
}

impl Chart {
    /// Adds a sample taken at `t_ms`; a missing value (a lost echo, an
    /// unread port) leaves its minute's mean alone.
    pub fn push(&mut self, t_ms: i64, rtt_ms: Option<f64>, watts: Option<f64>) {
        let minute = t_ms - t_ms.rem_euclid(MINUTE_MS);
        match self.points.back() {
            Some(p) if p.0 == minute => {}
            // A clock stepped back: the sample joins the newest minute.
            Some(p) if p.0 > minute => return self.fold(rtt_ms, watts),
            _ => {
                self.open = Sums::default();
                self.points.push_back((minute, None, None));
                while self.points.len() > POINTS
                    || self
                        .points
                        .front()
                        .is_some_and(|p| minute - p.0 >= POINTS as i64 * MINUTE_MS)
                {
                    self.points.pop_front();
                }
            }
        }
        self.fold(rtt_ms, watts);
    }

    fn fold(&mut self, rtt_ms: Option<f64>, watts: Option<f64>) {
        let o = &mut self.open;
        for (v, acc) in [(rtt_ms, &mut o.rtt), (watts, &mut o.watts)] {
            if let Some(v) = v {
                acc.0 += v;
                acc.1 += 1;
            }
        }
        if let Some(p) = self.points.back_mut() {
            p.1 = mean(o.rtt);
            p.2 = mean(o.watts);
        }
    }

    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_a_minute_with_its_means() {
        let mut c = Chart::default();
        c.push(60_000, Some(1.0), Some(3.0));
        c.push(70_000, Some(3.0), None);
        c.push(125_000, None, Some(4.0));
        let p: Vec<_> = c.points().copied().collect();
        assert_eq!(
            p,
            vec![(60_000, Some(2.0), Some(3.0)), (120_000, None, Some(4.0))]
        );
    }

    #[test]
    fn keeps_a_day() {
        let mut c = Chart::default();
        for i in 0..3_000 {
            c.push(i * 10_000, Some(1.0), None);
        }
        let p: Vec<_> = c.points().collect();
        let span = p.last().unwrap().0 - p[0].0;
        assert!(p.len() <= POINTS && span < 24 * 3_600_000, "{}", p.len());
        // A gap of more than a day leaves only the new minute.
        c.push(10 * 86_400_000, Some(5.0), None);
        assert_eq!(c.points().count(), 1);
    }

    #[test]
    fn a_clock_stepped_back_joins_the_newest_minute() {
        let mut c = Chart::default();
        c.push(120_000, Some(2.0), None);
        c.push(30_000, Some(4.0), None);
        assert_eq!(
            c.points().copied().collect::<Vec<_>>(),
            vec![(120_000, Some(3.0), None)]
        );
    }
}
