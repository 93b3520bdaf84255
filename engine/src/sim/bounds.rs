//! The largest (and smallest) value every number from a file may take, so that validation
//! accepts exactly what a run can run: sizes stay within their integer types, memory stays
//! bounded, and simulated time stays far from the clock's `u64` limit (584 years).
//!
//! Each bound sits well beyond any real deployment and is named in the error a file gets when
//! it crosses it, so a user knows both the limit and why it is there.

/// Most tokens in one length: a prompt, an output, a prefix, `max_model_len`, a step's token
/// budget. 2^24 = 16,777,216 is above every model's context window (Llama 4 Scout: 10M) and
/// keeps sums of a few lengths inside `u32`.
pub const MAX_TOKENS: u32 = 1 << 24;

/// Most requests running at once on one replica (`max_num_seqs`) and rows in one static batch.
pub const MAX_SEQS: u32 = 1 << 20;

/// Most KV blocks in one replica's cache (`num_gpu_blocks_override` or the memory plan): block
/// ids are `u32`, and 2^31 blocks of 16 tokens hold 34 billion tokens, a thousand times a real
/// GPU's cache.
pub const MAX_BLOCKS: u64 = 1 << 31;

/// Fastest arrival rate, requests per second, after multipliers: one request per 100 ns.
pub const MAX_RATE: f64 = 1e7;

/// Slowest non-zero arrival rate, requests per second: one request per 11.6 days.
pub const MIN_RATE: f64 = 1e-6;

/// Longest span of simulated time a file may name (a duration, a start-up time, a think time,
/// a time limit): about 31.7 years, so that any sum of a few such spans stays below
/// [`HORIZON_S`].
pub const MAX_SECONDS: f64 = 1e9;

/// The simulated clock's horizon: a run whose next event falls beyond it ends with outcome
/// `time_overflow` instead of letting the `u64` nanosecond clock saturate (at 584 years) and
/// report meaningless latencies.
pub const HORIZON_S: f64 = 1e10;

/// Largest coefficient of variation of a length or gap distribution; beyond it the log-normal
/// and gamma parameters overflow `f64`.
pub const MAX_CV: f64 = 100.0;

/// Smallest coefficient of variation of a gamma arrival process (its shape is 1 / cv^2); a
/// process that regular is `constant`.
pub const MIN_GAMMA_CV: f64 = 1e-3;

/// Most prefix groups, shared-prefix prompts, or sessions a workload may define (each holds a
/// few bytes for the whole run).
pub const MAX_GROUPS: u64 = 10_000_000;

/// Largest rate multiplier (a spike of 10,000x).
pub const MAX_FACTOR: f64 = 1e4;
