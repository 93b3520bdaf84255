//! symbiote: a deterministic discrete-event simulator of LLM inference serving (vLLM V1
//! replicas, the way a Ray Data + vLLM deployment runs them).
//!
//! ```text
//!   scenario file ──► scenario::validate ──► Case (every default resolved)
//!                                              │
//!            ┌─────────────────────────────────┼──────────────────────────┐
//!            ▼                                 ▼                          ▼
//!   workload::Workload               hardware (memory plan,       serving::Replica
//!   (arrivals, lengths, prefixes,    roofline step time)          (scheduler, KV cache)
//!    pulled one request ahead)                 │                          │
//!            └──────────────► sim::run (THE LOOP: (time, seq) events) ◄───┘
//!                                              │
//!                                              ▼
//!                           report (metrics ─► summary ─► JSON / Markdown, atomic writes)
//! ```
//!
//! Invariant: time is `u64` nanoseconds; `f64` durations are rounded once, in `Nanos::from_secs_f64`.
//! Invariant: events pop in `(time, seq)` order, ties FIFO; one event per replica step, never per token.
//! Invariant: every random draw comes from a per-purpose ChaCha stream derived from `(seed, stream)`.
//! Invariant: no HashMap iteration reaches an output or a decision (BTreeMap / Vec only).
//! Invariant: serving code never reads files; scenario code never touches time; report code never changes state.
//! Invariant: the same scenario and seed give byte-identical reports at any thread count.
//!
//! Dependency rules: `sim::{time, queue, rng}` are leaves; only `sim::run` imports serving,
//! workload and metrics together; hardware never sees time or events; only `scenario`,
//! `hardware::catalog` (embedded data) and `report::write` touch the file system.

pub mod cli;
pub mod hardware;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod serving;
pub mod sim;
pub mod workload;
