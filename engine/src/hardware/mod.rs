//! What it costs: GPU and LLM specs (data under `models/`, folders given with `--catalog`,
//! Hugging Face model folders), quantization, the start-up memory model, the step-time models,
//! the host's share of a step, and the price of a GPU-hour. Nothing here sees time or events.

pub mod catalog;
pub mod cuda_allocator;
pub mod hf_generate_replay;
pub mod hf_memory;
pub mod hf_model;
pub mod hf_step_time;
pub mod host;
pub mod kernels;
pub mod link;
pub mod memory;
pub mod prices;
pub mod quant;
pub mod shape;
pub mod step_time;
pub mod sustained;
pub mod transfer;
pub mod user_catalog;

pub use catalog::{Catalog, GenerationDefaults, GpuSpec, ModelSpec};
pub use hf_model::resolve_model;
pub use host::HostParams;
pub use kernels::KernelStepTime;
pub use memory::{MemoryBreakdown, MemoryConfig, StartupFailure};
pub use prices::{Price, PriceBook, PriceQuote};
pub use quant::{KvDtype, Quant};
pub use step_time::{ConstantStepTime, Roofline, SeqWork, StepTimeModel};
pub use user_catalog::active as active_catalog;
