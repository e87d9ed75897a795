//! Latency summaries: percentiles over all samples (no histogram rounding),
//! and a down-sampled CDF for the plots.

use serde::Serialize;

/// Percentiles of round-trip times, in microseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub n: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// (percentile, microseconds) points for a CDF plot.
    pub cdf: Vec<(f64, f64)>,
}

/// The `p`-th percentile (0..=100) of sorted `v`, nearest-rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // (the epsilon keeps 0.99 * 1000 from rounding up to rank 991)
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises samples in microseconds (sorted in place).
pub fn summarize(samples: &mut [f64]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_unstable_by(|a, b| a.total_cmp(b));
    let n = samples.len();
    let mut cdf: Vec<(f64, f64)> = (0..=990)
        .map(|i| i as f64 / 10.0)
        .map(|p| (p, percentile(samples, p)))
        .collect();
    for p in [99.5, 99.9, 99.95, 99.99, 100.0] {
        cdf.push((p, percentile(samples, p)));
    }
    Summary {
        n,
        mean_us: samples.iter().sum::<f64>() / n as f64,
        p50_us: percentile(samples, 50.0),
        p90_us: percentile(samples, 90.0),
        p99_us: percentile(samples, 99.0),
        p999_us: percentile(samples, 99.9),
        max_us: samples[n - 1],
        cdf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        let s = summarize(&mut v);
        assert_eq!(
            (s.p50_us, s.p99_us, s.p999_us, s.max_us),
            (500.0, 990.0, 999.0, 1000.0)
        );
        assert_eq!(s.n, 1000);
        assert!(summarize(&mut []).n == 0);
    }
}
