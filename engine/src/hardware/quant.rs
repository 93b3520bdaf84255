//! Quantizations: bytes per weight, scale overheads, which tensor-core rate the matmuls use,
//! and the KV-cache dtype.

use serde::{Deserialize, Serialize};

use super::catalog::GpuSpec;

/// Weight precision of the linear layers.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Quant {
    Fp32,
    #[default]
    Fp16,
    Bf16,
    /// FP8 weights (W8A8 where the GPU has FP8 tensor cores, weight-only Marlin otherwise).
    Fp8,
    /// INT8 weights and activations (W8A8, per-channel scales).
    Int8,
    /// INT4 weights, 16-bit activations (W4A16 GPTQ/AWQ with group size 128).
    Int4,
}

/// The KV-cache dtype (`--kv-cache-dtype`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum KvDtype {
    /// The activation dtype: 4 bytes for fp32 models, 2 otherwise.
    #[default]
    Auto,
    Fp8,
}

/// Group size of INT4 scales: GPTQ and AWQ default `group_size=128` (AutoGPTQ/AutoAWQ
/// quantization configs).
pub const INT4_GROUP_SIZE: f64 = 128.0;
/// Per INT4 group: one fp16 scale (2 bytes) and one packed 4-bit zero point (0.5 bytes), as
/// GPTQ stores `scales` (fp16) and `qzeros` (int32 holding eight 4-bit zeros).
pub const INT4_BYTES_PER_GROUP: f64 = 2.5;
/// Per output channel of an INT8/FP8 matrix: one fp32 scale (vLLM's compressed-tensors
/// channel-wise `weight_scale`).
pub const CHANNEL_SCALE_BYTES: f64 = 4.0;

impl Quant {
    pub const ALL: [Quant; 6] = [Quant::Fp32, Quant::Fp16, Quant::Bf16, Quant::Fp8, Quant::Int8, Quant::Int4];

    pub fn name(self) -> &'static str {
        match self {
            Quant::Fp32 => "fp32",
            Quant::Fp16 => "fp16",
            Quant::Bf16 => "bf16",
            Quant::Fp8 => "fp8",
            Quant::Int8 => "int8",
            Quant::Int4 => "int4",
        }
    }

    /// Bytes per linear-layer weight, before scales.
    pub fn weight_bytes_per_param(self) -> f64 {
        match self {
            Quant::Fp32 => 4.0,
            Quant::Fp16 | Quant::Bf16 => 2.0,
            Quant::Fp8 | Quant::Int8 => 1.0,
            Quant::Int4 => 0.5,
        }
    }

    /// Bytes of activations, embeddings, norms and the default KV cache: quantized models
    /// keep these in 16 bits; an fp32 model keeps everything in 32.
    pub fn activation_bytes(self) -> u64 {
        match self {
            Quant::Fp32 => 4,
            _ => 2,
        }
    }

    /// Scale bytes for a linear matrix of `params` weights and `out_channels` rows.
    pub fn scale_bytes(self, params: f64, out_channels: f64) -> f64 {
        match self {
            Quant::Int4 => params / INT4_GROUP_SIZE * INT4_BYTES_PER_GROUP,
            Quant::Int8 | Quant::Fp8 => out_channels * CHANNEL_SCALE_BYTES,
            _ => 0.0,
        }
    }

    /// Dense peak in FLOP/s for this precision's matmuls. PyTorch runs fp32 matmuls on CUDA
    /// cores (TF32 is off by default, `torch.backends.cuda.matmul.allow_tf32 = False`); W4A16
    /// kernels dequantize to fp16 and use the fp16 rate; FP8/INT8 fall back to the fp16 rate on
    /// GPUs without such tensor cores (weight-only kernels).
    pub fn matmul_peak_flops(self, gpu: &GpuSpec) -> f64 {
        let t = &gpu.tflops;
        let tflops = match self {
            Quant::Fp32 => t.fp32,
            Quant::Fp16 | Quant::Bf16 | Quant::Int4 => t.fp16_bf16,
            Quant::Fp8 => t.fp8.unwrap_or(t.fp16_bf16),
            Quant::Int8 => t.int8.unwrap_or(t.fp16_bf16),
        };
        tflops * 1e12
    }

    /// Whether vLLM runs this precision's linear layers as weight-only kernels on `gpu`
    /// (Marlin and the like: weights dequantized to 16 bits): INT4 always, FP8 and INT8 on GPUs
    /// without tensor cores for them.
    pub fn weight_only(self, gpu: &GpuSpec) -> bool {
        match self {
            Quant::Int4 => true,
            Quant::Fp8 => gpu.tflops.fp8.is_none(),
            Quant::Int8 => gpu.tflops.int8.is_none(),
            Quant::Fp32 | Quant::Fp16 | Quant::Bf16 => false,
        }
    }

    /// Peak for attention, which runs in the activation dtype.
    pub fn attention_peak_flops(self, gpu: &GpuSpec) -> f64 {
        match self {
            Quant::Fp32 => gpu.tflops.fp32 * 1e12,
            _ => gpu.tflops.fp16_bf16 * 1e12,
        }
    }
}

impl KvDtype {
    pub fn bytes(self, quant: Quant) -> u64 {
        match self {
            KvDtype::Auto => quant.activation_bytes(),
            KvDtype::Fp8 => 1,
        }
    }
}

impl std::fmt::Display for Quant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
