//! What arrives: arrival processes, length distributions and prompt content, pulled lazily.
//!
//! A [`Workload`] hands the loop one request at a time: open-loop sources produce the next
//! arrival when the current one is handled; closed-loop clients produce their next request when
//! the previous one finishes. Memory grows with requests in flight, never with the workload's
//! length.

pub mod arrivals;
pub mod lengths;
pub mod prefixes;
pub mod shared_prefix;
pub mod source;
pub mod trace;

pub use arrivals::{ArrivalProcess, ArrivalSpec, RateProfile};
pub use lengths::LengthDist;
pub use prefixes::Content;
pub use shared_prefix::SharedPrefixSpec;
pub use source::{ClosedLoopSpec, Ticket, Workload, WorkloadSpec};

use crate::sim::SimTime;

/// A run of prompt tokens with one identity: tokens `0..len` of segment `id`. Two prompts that
/// start with the same segments have the same tokens, so their KV blocks hash alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub id: u64,
    pub len: u32,
}

/// One request as the workload generates it, before any serving state.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSpec {
    /// Position in the workload: 0 for the first request generated.
    pub index: u64,
    pub arrival: SimTime,
    pub prompt_tokens: u32,
    /// Tokens generated before the request stops (benchmarks run with ignore_eos).
    pub output_tokens: u32,
    /// The prompt's content, as segments whose lengths sum to `prompt_tokens`.
    pub segments: Vec<Segment>,
    /// Identity of the generated tokens, so a later turn that quotes them hits the cache.
    pub output_segment: u64,
    /// The closed-loop client that sent it, if any.
    pub client: Option<u32>,
    /// The multi-turn session it belongs to, if any.
    pub session: Option<u32>,
    /// The first prompt token from which this request's tokens are its own by construction:
    /// no other request holds them after the same tokens, so a KV block holding any of them
    /// (or a later token) can be hit by no other request, only by this one after a preemption
    /// (issue 15: such blocks need not be registered in the prefix cache while it runs).
    /// [`RequestSpec::SHARED`] when that is not known.
    pub private_from: u32,
}

impl RequestSpec {
    /// `private_from` of a request whose every token may be shared with another.
    pub const SHARED: u32 = u32::MAX;
}
