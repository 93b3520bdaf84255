//! Parameter counts of a transformer from its config, split the way memory and step time need
//! them: linear layers (quantized, sharded by TP), embeddings and LM head (kept 16-bit),
//! norms and biases.

use super::catalog::ModelSpec;
use super::quant::Quant;

/// Parameter counts of one model, whole (before tensor parallelism).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamBreakdown {
    pub num_layers: u64,
    /// Input embedding table: vocab x hidden.
    pub embedding: u64,
    /// Output projection; 0 when tied to the embedding.
    pub lm_head: u64,
    /// All linear weights of all layers (every expert of an MoE).
    pub linear: u64,
    /// Linear weights one token passes through (attention + top-k experts + router).
    pub linear_active: u64,
    /// Output rows of all linear matrices (for per-channel scales).
    pub linear_out_channels: u64,
    /// Norm weights and attention biases.
    pub other: u64,
    /// Attention linear weights of all layers (q, k, v, o).
    pub attention_linear: u64,
}

impl ParamBreakdown {
    pub fn of(model: &ModelSpec) -> ParamBreakdown {
        let h = model.hidden_size;
        let q_out = model.num_attention_heads * model.head_dim;
        let kv_out = model.num_kv_heads * model.head_dim;
        let attention = h * (q_out + 2 * kv_out) + q_out * h;
        let attention_out_channels = q_out + 2 * kv_out + h;
        let (mlp, mlp_active, mlp_out_channels) = match &model.moe {
            None => (3 * h * model.intermediate_size, 3 * h * model.intermediate_size, 2 * model.intermediate_size + h),
            Some(moe) => {
                let expert = 3 * h * moe.expert_intermediate_size;
                let router = h * moe.num_experts as u64;
                let all = (moe.num_experts + moe.shared_experts) as u64;
                let active = (moe.experts_per_token + moe.shared_experts) as u64;
                (
                    expert * all + router,
                    expert * active + router,
                    (2 * moe.expert_intermediate_size + h) * all + moe.num_experts as u64,
                )
            }
        };
        let bias = if model.attention_qkv_bias { q_out + 2 * kv_out } else { 0 };
        let layers = model.num_layers;
        let embedding = model.vocab_size * h;
        ParamBreakdown {
            num_layers: layers,
            embedding,
            lm_head: if model.tie_word_embeddings { 0 } else { embedding },
            linear: layers * (attention + mlp),
            linear_active: layers * (attention + mlp_active),
            linear_out_channels: layers * (attention_out_channels + mlp_out_channels),
            other: layers * (2 * h + bias) + h,
            attention_linear: layers * attention,
        }
    }

    pub fn total(&self) -> u64 {
        self.embedding + self.lm_head + self.linear + self.other
    }

    /// Weight bytes on one of `tp` ranks: linear layers, embedding and LM head are sharded
    /// (vLLM's column/row-parallel linears and `VocabParallelEmbedding`); norms are replicated.
    pub fn weight_bytes_per_rank(&self, quant: Quant, tp: u64) -> f64 {
        let tp = tp as f64;
        let dense = quant.activation_bytes() as f64;
        let linear = self.linear as f64 * quant.weight_bytes_per_param()
            + quant.scale_bytes(self.linear as f64, self.linear_out_channels as f64);
        (linear + (self.embedding + self.lm_head) as f64 * dense) / tp + self.other as f64 * dense
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::catalog::Catalog;

    /// Totals computed in shared/reference/models.json, which match the published counts.
    #[test]
    fn parameter_counts_match_the_reference() {
        let expect = [
            ("qwen2.5-0.5b", 494_032_768u64),
            ("llama-2-7b", 6_738_415_616),
            ("llama-2-13b", 13_015_864_320),
            ("llama-3.1-8b", 8_030_261_248),
            ("llama-3.1-70b", 70_553_706_496),
            ("mistral-7b", 7_241_732_096),
            ("mixtral-8x7b", 46_702_792_704),
            ("qwen2.5-7b", 7_615_616_512),
            ("phi-3-mini", 3_821_079_552),
        ];
        for (name, total) in expect {
            let model = Catalog::builtin().model(name).unwrap();
            assert_eq!(ParamBreakdown::of(model).total(), total, "{name}");
        }
    }

    #[test]
    fn mixtral_active_parameters_match_the_reference() {
        let p = ParamBreakdown::of(Catalog::builtin().model("mixtral-8x7b").unwrap());
        // 12,879,925,248 active per models.json, which counts embeddings, LM head and norms.
        assert_eq!(p.linear_active + p.embedding + p.lm_head + p.other, 12_879_925_248);
    }

    #[test]
    fn int4_weights_are_an_eighth_of_fp32_up_to_embeddings_and_scales() {
        let p = ParamBreakdown::of(Catalog::builtin().model("llama-2-7b").unwrap());
        let fp32 = p.weight_bytes_per_rank(Quant::Fp32, 1);
        let int4 = p.weight_bytes_per_rank(Quant::Int4, 1);
        let embeddings_16bit = (p.embedding + p.lm_head + p.other) as f64 * 2.0;
        let scales = p.linear as f64 / 128.0 * 2.5;
        let linear_fp32 = p.linear as f64 * 4.0;
        assert!((int4 - (linear_fp32 / 8.0 + embeddings_16bit + scales)).abs() < 1.0);
        assert!(int4 / fp32 > 0.125 && int4 / fp32 < 0.16, "ratio {}", int4 / fp32);
    }
}
