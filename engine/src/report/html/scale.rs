//! Axes and numbers for the charts: which scale a set of values needs (log once they span
//! more than [`LOG_SPAN`]), where its ticks go, and how a value is written with its unit.
//! Pure functions; every number is formatted with fixed rules, so the page is byte-identical
//! for the same report.

/// Values whose largest is more than this many times their smallest (1.5 decades) go on a
/// log axis: on a linear one the small bars vanish (phase 1's TTFT runs from 5 ms to 258 s).
pub const LOG_SPAN: f64 = 31.622_776_601_683_793;

/// The unit of a charted quantity, which decides how its numbers are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds, written as µs, ms, s or h as the value needs.
    Ms,
    /// Seconds of simulated time.
    Seconds,
    /// A rate or count with its unit name (`req/s`, `tok/s`, `requests`), k/M for large values.
    Count(&'static str),
    /// A fraction 0..1, written as a percentage.
    Fraction,
    /// Concurrency multiples (`12.3x`).
    Times,
}

/// A value axis: the range it shows and whether it is logarithmic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub min: f64,
    pub max: f64,
    pub log: bool,
}

impl Scale {
    /// The axis for `values` (non-finite ones ignored): log from the decade below the smallest
    /// positive value to the decade above the largest when they span more than [`LOG_SPAN`],
    /// else linear from zero to a rounded maximum.
    pub fn choose(values: &[f64]) -> Scale {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let positive: Vec<f64> = finite.iter().copied().filter(|&v| v > 0.0).collect();
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lo_pos = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let negative = finite.iter().any(|&v| v < 0.0);
        if !negative && !positive.is_empty() && hi / lo_pos > LOG_SPAN {
            let min = 10f64.powf(lo_pos.log10().floor());
            let max = 10f64.powf(hi.log10().ceil()).max(min * 10.0);
            return Scale { min, max, log: true };
        }
        let lo = finite.iter().copied().fold(0.0, f64::min);
        let hi = if hi.is_finite() && hi > 0.0 { hi } else { 1.0 };
        let step = nice_step((hi - lo) / 5.0);
        Scale { min: (lo / step).floor() * step, max: (hi / step).ceil() * step, log: false }
    }

    /// A linear axis over a fixed range (fractions, CDFs).
    pub fn linear(min: f64, max: f64) -> Scale {
        Scale { min, max, log: false }
    }

    /// Where `value` falls, 0 at `min` and 1 at `max`, clamped (a log axis puts zero and
    /// negative values at its left end).
    pub fn fraction(&self, value: f64) -> f64 {
        let f = if self.log {
            if value <= 0.0 {
                return 0.0;
            }
            (value.log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (value - self.min) / (self.max - self.min)
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Tick positions: each decade on a log axis (with 2 and 5 between when it spans at most
    /// two decades), five or so round steps on a linear one.
    pub fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (first, last) = (self.min.log10().round() as i32, self.max.log10().round() as i32);
            let fine = last - first <= 2;
            let mut ticks = Vec::new();
            for exp in first..=last {
                let decade = 10f64.powi(exp);
                ticks.push(decade);
                if fine && exp < last {
                    ticks.extend([2.0 * decade, 5.0 * decade]);
                }
            }
            return ticks;
        }
        let step = nice_step((self.max - self.min) / 5.0);
        let n = ((self.max - self.min) / step).round() as i64;
        (0..=n.clamp(0, 20)).map(|i| self.min + step * i as f64).collect()
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let decade = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * decade).find(|&s| s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * decade)
}

/// `value` with three significant digits, no exponent, trailing zeros dropped.
pub fn sig3(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value.is_finite() { "0".into() } else { "-".into() };
    }
    let digits = value.abs().log10().floor() as i32;
    let decimals = (2 - digits).clamp(0, 9) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A count with k/M/G above ten thousand: `577k`, `1.2M`.
fn short(value: f64) -> String {
    let abs = value.abs();
    match abs {
        a if a >= 1e9 => format!("{}G", sig3(value / 1e9)),
        a if a >= 1e6 => format!("{}M", sig3(value / 1e6)),
        a if a >= 1e4 => format!("{}k", sig3(value / 1e3)),
        _ => sig3(value),
    }
}

/// `value` written with its unit: `5.3 ms`, `2.29 s`, `577k tok/s`, `93%`, `12.3x`.
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms => format_ms(value),
        Unit::Seconds => format_ms(value * 1e3),
        Unit::Count("") => short(value),
        Unit::Count(name) => format!("{} {name}", short(value)),
        Unit::Fraction => format!("{}%", sig3(value * 100.0)),
        Unit::Times => format!("{}x", sig3(value)),
    }
}

/// A tick label: the same as [`format_value`] but without a count's unit name (the axis
/// title carries it).
pub fn format_tick(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Count(_) => short(value),
        other => format_value(value, other),
    }
}

fn format_ms(ms: f64) -> String {
    let abs = ms.abs();
    match abs {
        0.0 => "0 s".into(),
        a if a < 1.0 => format!("{} µs", sig3(ms * 1e3)),
        a if a < 1e3 => format!("{} ms", sig3(ms)),
        a if a < 1e7 => format!("{} s", sig3(ms / 1e3)),
        _ => format!("{} h", sig3(ms / 3.6e6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 16
    /// Phase 1's TTFT (5 ms to 258 s) needs a log axis; values within 1.5 decades do not.
    #[test]
    fn log_scale_only_beyond_one_and_a_half_decades() {
        let ttft = Scale::choose(&[5.3, 1034.7, 97665.0, 258569.3]);
        assert!(ttft.log);
        assert_eq!((ttft.min, ttft.max), (1.0, 1e6));
        let tpot = Scale::choose(&[1.43, 4.9, 50.6]);
        assert!(tpot.log, "1.43..50.6 spans 1.55 decades");
        let narrow = Scale::choose(&[1.43, 4.9, 39.0]);
        assert!(!narrow.log, "1.43..39 spans 1.44 decades");
        assert_eq!(narrow.min, 0.0);
        assert!(narrow.max >= 39.0 && narrow.max <= 50.0, "{narrow:?}");
        // Zeros and non-finite values do not force or break a log axis.
        assert!(!Scale::choose(&[0.0, 3.0, f64::NAN]).log);
        assert!(Scale::choose(&[0.0, 1.0, 100.0]).log);
        assert_eq!(Scale::choose(&[]), Scale { min: 0.0, max: 1.0, log: false });
        assert!(!Scale::choose(&[-1.0, 100.0]).log, "negative values stay linear");
    }

    #[test]
    fn fractions_and_ticks_follow_the_scale() {
        let log = Scale { min: 1.0, max: 1000.0, log: true };
        assert!((log.fraction(10.0) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(log.fraction(0.0), 0.0);
        assert_eq!(log.fraction(1e9), 1.0);
        assert_eq!(log.ticks(), vec![1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(Scale { min: 1.0, max: 100.0, log: true }.ticks(), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        let lin = Scale::choose(&[0.0, 93.0]);
        assert_eq!(lin.ticks(), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(lin.fraction(50.0), 0.5);
    }

    #[test]
    fn numbers_carry_their_units() {
        assert_eq!(format_value(5.3, Unit::Ms), "5.3 ms");
        assert_eq!(format_value(258_569.3, Unit::Ms), "259 s");
        assert_eq!(format_value(0.25, Unit::Ms), "250 µs");
        assert_eq!(format_value(2287.5, Unit::Ms), "2.29 s");
        assert_eq!(format_value(577_284.0, Unit::Count("tok/s")), "577k tok/s");
        assert_eq!(format_value(1397.06, Unit::Count("req/s")), "1397 req/s");
        assert_eq!(format_value(0.926, Unit::Fraction), "92.6%");
        assert_eq!(format_value(430.6, Unit::Times), "431x");
        assert_eq!(format_value(17.5, Unit::Seconds), "17.5 s");
        assert_eq!(format_tick(2e6, Unit::Count("tok/s")), "2M");
        assert_eq!(sig3(0.001234), "0.00123");
        assert_eq!(sig3(120.0), "120");
    }
}
