//! What it costs: GPU and LLM specs (data under `models/`), quantization, the start-up memory
//! model, and the step-time model. Nothing here sees time or events.

pub mod catalog;
pub mod kernels;
pub mod memory;
pub mod quant;
pub mod shape;
pub mod step_time;

pub use catalog::{Catalog, GenerationDefaults, GpuSpec, ModelSpec};
pub use kernels::KernelStepTime;
pub use memory::{MemoryBreakdown, MemoryConfig, StartupFailure};
pub use quant::{KvDtype, Quant};
pub use step_time::{ConstantStepTime, Roofline, SeqWork, StepTimeModel};
