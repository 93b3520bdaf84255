//! Statistics over seeds: mean, sample standard deviation, min, max and the 95% confidence
//! interval of the mean (Student t). Computed serially, in seed order.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedStats {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Half-width of the 95% confidence interval of the mean: t(0.975, n-1) x std / sqrt(n).
    pub ci95: f64,
}

/// Two-sided 95% quantiles of Student's t, t(0.975, df) for df = 1..=30 (standard tables,
/// e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// t(0.975, df); beyond the table, the normal 1.960 plus the first-order correction 2.4/df.
pub fn t_975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T_975[df - 1],
        _ => 1.960 + 2.4 / df as f64,
    }
}

pub fn seed_stats(values: &[f64]) -> Option<SeedStats> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let std =
        if n > 1 { (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    let ci95 = if n > 1 { t_975(n - 1) * std / (n as f64).sqrt() } else { 0.0 };
    Some(SeedStats {
        n,
        mean,
        std,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ci95,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values 10, 12, 14, 16: mean 13, sample std sqrt(20/3) = 2.5820, t(0.975, 3) = 3.182,
    /// half-width 3.182 x 2.5820 / 2 = 4.1080.
    #[test]
    fn confidence_interval_matches_the_hand_calculation() {
        let s = seed_stats(&[10.0, 12.0, 14.0, 16.0]).unwrap();
        assert_eq!((s.n, s.mean, s.min, s.max), (4, 13.0, 10.0, 16.0));
        assert!((s.std - (20.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((s.ci95 - 4.1080).abs() < 1e-3, "{}", s.ci95);
    }

    #[test]
    fn one_seed_has_no_spread() {
        let s = seed_stats(&[5.0]).unwrap();
        assert_eq!((s.std, s.ci95), (0.0, 0.0));
        assert!(seed_stats(&[]).is_none());
    }
}
