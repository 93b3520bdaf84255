//! Simulated time: `u64` nanoseconds in a newtype, and the one place where `f64` seconds become
//! integer nanoseconds.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in simulated time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanos(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn from_secs_f64(secs: f64) -> SimTime {
        SimTime(Nanos::from_secs_f64(secs).0)
    }

    /// Time elapsed since `earlier`; `earlier` must not be later than `self`.
    pub fn since(self, earlier: SimTime) -> Nanos {
        debug_assert!(earlier <= self, "time went backwards: {earlier:?} > {self:?}");
        Nanos(self.0 - earlier.0)
    }
}

impl Nanos {
    pub const ZERO: Nanos = Nanos(0);

    /// Converts a duration computed in seconds to integer nanoseconds, rounding to the nearest
    /// nanosecond. This is the only rounding point between the `f64` cost models and the clock.
    /// Negative and NaN inputs are programmer errors: they are clamped to zero in release builds.
    pub fn from_secs_f64(secs: f64) -> Nanos {
        debug_assert!(secs >= 0.0 && secs.is_finite(), "bad duration {secs}");
        if secs.is_nan() || secs <= 0.0 {
            return Nanos(0);
        }
        let ns = (secs * 1e9).round();
        if ns >= u64::MAX as f64 {
            Nanos(u64::MAX)
        } else {
            Nanos(ns as u64)
        }
    }

    pub fn from_millis(ms: u64) -> Nanos {
        Nanos(ms * 1_000_000)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Add<Nanos> for SimTime {
    type Output = SimTime;
    fn add(self, rhs: Nanos) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign<Nanos> for SimTime {
    fn add_assign(&mut self, rhs: Nanos) {
        *self = *self + rhs;
    }
}

impl Add for Nanos {
    type Output = Nanos;
    fn add(self, rhs: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(rhs.0))
    }
}

impl Sub for SimTime {
    type Output = Nanos;
    fn sub(self, rhs: SimTime) -> Nanos {
        self.since(rhs)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_to_nearest_nanosecond() {
        assert_eq!(Nanos::from_secs_f64(1.5e-9), Nanos(2));
        assert_eq!(Nanos::from_secs_f64(0.0123), Nanos(12_300_000));
        assert_eq!(Nanos::from_secs_f64(0.0), Nanos(0));
    }

    #[test]
    fn adding_saturates_instead_of_wrapping() {
        assert_eq!(SimTime(u64::MAX - 1) + Nanos(5), SimTime::MAX);
    }
}
