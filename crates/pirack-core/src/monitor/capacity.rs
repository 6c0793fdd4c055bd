//! When a filesystem will be full, from how its free space has moved: a least
//! squares line through recent samples, so one large write or delete does not
//! swing the date as much as a two-point estimate would.

/// Seconds from the last sample until `free` reaches zero at the recent rate,
/// or `None` when it is not falling (or there are too few samples, over too
/// short a time, to say).
pub fn seconds_to_full(samples: &[(f64, f64)], min_span_s: f64) -> Option<f64> {
    if samples.len() < 3 {
        return None;
    }
    let (first, last) = (samples[0].0, samples[samples.len() - 1].0);
    if last - first < min_span_s {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_f = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let cov: f64 = samples
        .iter()
        .map(|(t, f)| (t - mean_t) * (f - mean_f))
        .sum();
    let var: f64 = samples.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    if var == 0.0 {
        return None;
    }
    let slope = cov / var;
    if slope >= 0.0 {
        return None;
    }
    // The line's value now, not the last sample's: noise does not move the date.
    let now_free = mean_f + slope * (last - mean_t);
    Some((now_free / -slope).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_fall_projects_to_zero() {
        // 1 GB a day off 10 GB: ten days left.
        let day = 86_400.0;
        let s: Vec<(f64, f64)> = (0..5)
            .map(|d| (d as f64 * day, 14e9 - d as f64 * 1e9))
            .collect();
        let left = seconds_to_full(&s, day).unwrap();
        assert!((left / day - 10.0).abs() < 1e-6, "{}", left / day);
    }

    #[test]
    fn no_date_when_rising_flat_or_too_soon() {
        let rising = [(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)];
        assert_eq!(seconds_to_full(&rising, 1.0), None);
        let flat = [(0.0, 5.0), (10.0, 5.0), (20.0, 5.0)];
        assert_eq!(seconds_to_full(&flat, 1.0), None);
        let falling = [(0.0, 3.0), (10.0, 2.0), (20.0, 1.0)];
        assert_eq!(seconds_to_full(&falling, 3600.0), None);
        assert_eq!(seconds_to_full(&falling[..2], 1.0), None);
        assert!(seconds_to_full(&falling, 1.0).is_some());
    }
}
