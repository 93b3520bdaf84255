//! symbiote: a deterministic discrete-event simulator of LLM inference serving (vLLM V1
//! replicas, the way a Ray Data + vLLM deployment runs them).
//!
//! ```text
//!   scenario file ──► scenario::validate ──► Case (every default resolved)
//!                                              │
//!            ┌─────────────────────────────────┼──────────────────────────┐
//!            ▼                                 ▼                          ▼
//!   workload::Workload               hardware (memory plan,       serving::Replica
//!   (arrivals, lengths, prefixes,    roofline or kernel-table     (scheduler, KV cache)
//!    pulled one request ahead)       steps)    │                          │
//!            └──────────────► sim::run (THE LOOP: (time, seq) events) ◄───┘
//!                                              │
//!                                              ▼
//!                           report (metrics ─► summary ─► JSON / Markdown / CSV, atomic writes)
//!                              │
//!              runner (rayon over (case, seed), resume, shards) ─► cli (commands) ─► main
//! ```
//!
//! Beside `main`: the Python package (`python/`, pyo3) calls the same `cli` and `runner`
//! functions as `main` does; no simulation or report logic lives in the binding.
//!
//! Above the runner: `plan` searches deployments (GPU, quantization, TP, batch limits, router,
//! replicas) for the cheapest that meets an SLO, running many short simulations through
//! `sim::run` with SLO attainment watched so that failing runs stop early.
//!
//! Beside the main flow: `report::phases` turns the six phase scenarios' runs into findings,
//! `report::check` compares a report with a baseline, `report::fidelity` compares simulated with
//! measured runs (`scenario::measurements`) and calibrates a GPU's step-time parameters.
//!
//! Invariant: time is `u64` nanoseconds; `f64` durations are rounded once, in `Nanos::from_secs_f64`.
//! Invariant: events pop in `(time, seq)` order, ties FIFO; one event per replica step, never per token.
//! Invariant: a replica's decode fast path (`serving::replica::decode_run`) changes no byte of any
//! output against planning every step in full (`Limits::step_by_step`); `tests/it/fast_path.rs`.
//! Invariant: every random draw comes from a per-purpose ChaCha stream derived from `(seed, stream)`.
//! Invariant: no HashMap iteration reaches an output or a decision (BTreeMap / Vec only).
//! Invariant: serving code never reads files; scenario code never touches time; report code never changes state.
//! Invariant: the same scenario and seed give byte-identical reports at any thread count.
//! Invariant: nothing is written or removed outside `--out`: names become file names only through `scenario::names`.
//! Invariant: every arrival ends completed, rejected or unfinished, and every KV block is free,
//! cached or used; each run checks both at its end, in every build (a violation is an internal
//! error, exit 2).
//!
//! Dependency rules: `sim::{time, queue, rng}` are leaves; only `sim::run` imports serving,
//! workload and metrics together; hardware never sees time or events. Files are read by
//! `scenario` (scenario and measurement files, HF config.json), `workload::trace` (traces),
//! `hardware::prices` (a `--prices` file) and the runner (finished runs, for `--resume` and
//! `merge`, and their timeline and request CSVs for report.html's charts); written by
//! `report::write` and, for
//! `symbiote calibrate --write`, by `cli`. The GPU and LLM catalogs are embedded at build time;
//! `hardware::user_catalog` reads `--catalog` folders and `hardware::hf_model` Hugging Face model
//! folders at run time.
//! Invariant: the catalog is installed once, before any run, and never changes under one.

pub mod cli;
pub mod hardware;
pub mod plan;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod serving;
pub mod sim;
pub mod text;
pub mod verbosity;
pub mod workload;
