//! The deterministic core: integer time, the event queue, seeded random streams and the loop.
//!
//! Invariants kept here:
//! - time is `u64` nanoseconds ([`SimTime`]); durations computed in `f64` are converted once,
//!   by [`Nanos::from_secs_f64`];
//! - events pop in `(time, seq)` order, `seq` bumped on every push, so ties are FIFO;
//! - every random draw comes from a named ChaCha stream derived from `(seed, stream)`.

pub mod bounds;
pub mod queue;
pub mod rng;
pub mod run;
pub mod time;

pub use queue::EventQueue;
pub use rng::{Stream, Streams};
pub use time::{Nanos, SimTime};
