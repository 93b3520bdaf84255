//! Models named by Hugging Face files: wherever a model name is taken, a model folder as
//! downloaded from the Hub (`config.json`, `generation_config.json`, `tokenizer_config.json`)
//! or the path of its `config.json` works too, read as vLLM reads them:
//!
//! - the architecture from `config.json` (its `text_config` for multimodal wrappers), for the
//!   architectures the catalog can represent: Llama, Mistral, Qwen2, Qwen3 and the MoE models
//!   Mixtral, Qwen2-MoE and Qwen3-MoE; anything else is an error naming the field;
//! - the context limit as vLLM derives it ([`derived_max_len`]);
//! - the sampling defaults from `generation_config.json` beside `config.json`, with a warning
//!   naming the assumption when it is missing.

use std::path::Path;

use serde_json::Value;

use super::catalog::{Catalog, GenerationDefaults, ModelSpec};
use super::user_catalog::{warn_once, Origin};

/// The `model_type`s whose config.json fields map onto a catalog entry.
const DENSE_TYPES: [&str; 4] = ["llama", "mistral", "qwen2", "qwen3"];
const MOE_TYPES: [&str; 3] = ["mixtral", "qwen2_moe", "qwen3_moe"];

/// The model `name` stands for: a Hugging Face folder or config.json (a path relative to
/// `base_dir`), or a catalog name. Errors say what to fix.
pub fn resolve_model(name: &str, base_dir: &Path, catalog: &Catalog) -> Result<ModelSpec, String> {
    let path = base_dir.join(name);
    if name.ends_with(".json") {
        return read_hf(&path, name);
    }
    if path.join("config.json").is_file() {
        return read_hf(&path.join("config.json"), name);
    }
    catalog.model(name).cloned().map_err(|e| {
        if path.is_dir() {
            format!("{e}; the folder {} holds no config.json", path.display())
        } else {
            e.to_string()
        }
    })
}

/// A model from a `config.json` and the files vLLM reads beside it; `label` names it in reports.
pub fn read_hf(config: &Path, label: &str) -> Result<ModelSpec, String> {
    let shown = config.display();
    let bytes = std::fs::read(config).map_err(|e| {
        format!("cannot read {shown}: {e}; give a Hugging Face model folder or the path of its config.json")
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    // Duplicate keys and bad JSON get from_hf_config's messages; check the architecture first
    // so that an unsupported model says so rather than naming a field it lacks.
    if let Ok(root) = serde_json::from_str::<Value>(text) {
        check_supported(&root).map_err(|e| format!("{shown}: {e}"))?;
    }
    let mut model = ModelSpec::from_hf_config(text, label).map_err(|e| format!("{shown}: {e}"))?;
    let root: Value = serde_json::from_str(text).map_err(|e| format!("{shown}: not valid JSON: {e}"))?;
    let c = root.get("text_config").unwrap_or(&root);
    let beside = |file: &str| config.with_file_name(file);
    let tokenizer_max = read_optional(&beside("tokenizer_config.json"))?
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|t| t.get("model_max_length").and_then(Value::as_f64));
    let (max_len, how) = derived_max_len(c, tokenizer_max).map_err(|e| format!("{shown}: {e}"))?;
    model.max_position_embeddings = max_len;
    model.sources.insert("max_position_embeddings".into(), how);
    apply_moe_and_window(c, &mut model);
    let generation = beside("generation_config.json");
    match read_optional(&generation)? {
        Some(text) => {
            model.generation_config =
                GenerationDefaults::from_json(&text).map_err(|e| format!("{}: {e}", generation.display()))?;
        }
        None => warn_once(format!(
            "{shown}: no generation_config.json beside it, so requests get vLLM's neutral sampling defaults \
             (temperature 1, top_p 1, top_k off: no logit sort); put the model's generation_config.json there \
             if it has one"
        )),
    }
    model.origin = Some(Origin::of(config, &bytes));
    Ok(model)
}

fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Refuses what the catalog cannot represent, naming the field.
fn check_supported(root: &Value) -> Result<(), String> {
    let supported = || format!("symbiote reads {} and {}", DENSE_TYPES.join(", "), MOE_TYPES.join(", "));
    if root.get("vision_config").is_some_and(|v| !v.is_null()) {
        return Err(format!(
            "`vision_config`: the vision tower of a multimodal model is not modelled; {}, or add a catalog file",
            supported()
        ));
    }
    let c = root.get("text_config").unwrap_or(root);
    let model_type = c.get("model_type").or_else(|| root.get("model_type")).and_then(Value::as_str);
    let Some(model_type) = model_type else {
        return Err(format!("no `model_type`; {} (as config.json names them)", supported()));
    };
    if !DENSE_TYPES.contains(&model_type) && !MOE_TYPES.contains(&model_type) {
        return Err(format!(
            "`model_type` is `{}`, an architecture the catalog cannot represent; {}",
            crate::text::clip(model_type),
            supported()
        ));
    }
    let truthy = |key: &str| c.get(key).is_some_and(|v| v.as_bool() == Some(true));
    if truthy("use_sliding_window") {
        return Err("`use_sliding_window` is true: per-layer sliding windows are not modelled".into());
    }
    if truthy("mlp_bias") {
        return Err("`mlp_bias` is true: MLP biases are not modelled".into());
    }
    if c.get("mlp_only_layers").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        return Err("`mlp_only_layers` is not empty: a mix of dense and MoE layers is not modelled".into());
    }
    if c.get("decoder_sparse_step").and_then(Value::as_u64).is_some_and(|s| s != 1) {
        return Err("`decoder_sparse_step` is not 1: a mix of dense and MoE layers is not modelled".into());
    }
    let int = |key: &str| c.get(key).and_then(Value::as_u64);
    if let (Some(shared), Some(expert)) = (int("shared_expert_intermediate_size"), int("moe_intermediate_size")) {
        // The user catalog's bound on shared experts (parameter counts stay far from overflow).
        if shared.checked_div(expert).is_some_and(|n| n > 1024) {
            return Err(format!(
                "`shared_expert_intermediate_size` ({shared}) is over 1024 times `moe_intermediate_size` ({expert}); \
                 it must be a realistic size"
            ));
        }
        if shared > 0 && (expert == 0 || shared % expert != 0) {
            return Err(format!(
                "`shared_expert_intermediate_size` ({shared}) is not a multiple of `moe_intermediate_size` ({expert}): \
                 the catalog counts shared experts in routed-expert sizes"
            ));
        }
    }
    Ok(())
}

/// Qwen2-MoE's shared expert, one MLP `shared_expert_intermediate_size` wide, counted as that
/// many routed-expert widths (the same parameters and FLOPs; its one-output gate is left out);
/// Mistral's sliding window, which every layer uses.
fn apply_moe_and_window(c: &Value, model: &mut ModelSpec) {
    let int = |key: &str| c.get(key).and_then(Value::as_u64);
    if let (Some(moe), Some(shared), Some(expert)) =
        (model.moe.as_mut(), int("shared_expert_intermediate_size"), int("moe_intermediate_size"))
    {
        if let Some(count) = shared.checked_div(expert) {
            moe.shared_experts = count as u32;
        }
    }
    let model_type = c.get("model_type").and_then(Value::as_str).unwrap_or("");
    if matches!(model_type, "mistral" | "mixtral") {
        model.sliding_window = int("sliding_window");
    }
}

/// The context limit vLLM derives from a config.json when `--max-model-len` is not given
/// (`_get_and_verify_max_len` in vllm/config/model.py, vLLM commit 0052a5b8): the smallest of
/// the length keys present, `model_max_length` when set, capped by tokenizer_config.json's
/// `model_max_length`, 2048 when no key is present; then RoPE scaling multiplies it by
/// `factor`, except for the `su`, `longrope` and `llama3` types (whose `max_position_embeddings`
/// is already the scaled length), and `yarn` scales `original_max_position_embeddings`.
/// Returns the length and a sentence saying how it was found.
pub fn derived_max_len(c: &Value, tokenizer_max: Option<f64>) -> Result<(u64, String), String> {
    const KEYS: [&str; 9] = [
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "seq_length",
        "model_max_length",
        "max_target_positions",
        "max_sequence_length",
        "max_seq_length",
        "seq_len",
    ];
    let number = |key: &str| c.get(key).and_then(Value::as_f64).filter(|v| *v > 0.0);
    let mut found: Option<(f64, &str)> = None;
    for key in KEYS {
        if let Some(v) = number(key) {
            if found.is_none_or(|(best, _)| v < best) {
                found = Some((v, key));
            }
        }
    }
    if let Some(v) = number("model_max_length") {
        found = Some((v, "model_max_length"));
    }
    let (mut len, mut how) = match found {
        Some((v, key)) => (v, format!("`{key}` {v}")),
        None => {
            warn_once(format!(
                "config.json gives none of {}: assumes a context limit of 2048 tokens, as vLLM does",
                KEYS.join(", ")
            ));
            (2048.0, "2048, vLLM's default when config.json gives no length".to_string())
        }
    };
    if let Some(t) = tokenizer_max.filter(|t| *t > 0.0 && *t < len) {
        len = t;
        how = format!("tokenizer_config.json's `model_max_length` {t}");
    }
    let rope = c.get("rope_scaling").or_else(|| c.get("rope_parameters")).filter(|v| v.is_object());
    let params: Vec<&Value> = match rope {
        Some(r) if r.get("rope_type").is_some() || r.get("type").is_some() => vec![r],
        Some(r) => r.as_object().map(|o| o.values().filter(|v| v.is_object()).collect()).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut factor = 1.0;
    for p in &params {
        let kind = p.get("rope_type").or_else(|| p.get("type")).and_then(Value::as_str).unwrap_or("default");
        if matches!(kind, "su" | "longrope" | "llama3") {
            continue;
        }
        factor = p.get("factor").and_then(Value::as_f64).unwrap_or(factor);
        if kind == "yarn" {
            let original = p.get("original_max_position_embeddings").and_then(Value::as_f64).ok_or(
                "`rope_scaling` of type yarn has no `original_max_position_embeddings`; add it as the model's card gives it",
            )?;
            len = original;
            how = format!("yarn's `original_max_position_embeddings` {original}");
        }
    }
    if factor != 1.0 {
        how = format!("{how} x RoPE scaling `factor` {factor}");
        len *= factor;
    }
    let len = len.floor();
    if !(2.0..=(1u64 << 30) as f64).contains(&len) {
        return Err(format!("the context limit derived from it ({how}) is {len}; it must be within 2..{}", 1u64 << 30));
    }
    Ok((len as u64, format!("as vLLM derives it from config.json (_get_and_verify_max_len): {how}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn len(c: Value) -> u64 {
        derived_max_len(&c, None).unwrap().0
    }

    #[test]
    fn the_context_limit_is_derived_as_vllm_derives_it() {
        // CodeLlama-34B: RoPE theta 1e6 but no rope_scaling, 16,384 positions.
        assert_eq!(len(json!({"max_position_embeddings": 16384, "rope_theta": 1000000})), 16384);
        // Qwen2.5-7B-Instruct's card for long contexts: yarn x4 over 32,768.
        let yarn = json!({"max_position_embeddings": 32768,
            "rope_scaling": {"factor": 4.0, "original_max_position_embeddings": 32768, "type": "yarn"}});
        assert_eq!(len(yarn), 131_072);
        // Llama 3.1's llama3 type is already counted in max_position_embeddings.
        let llama3 = json!({"max_position_embeddings": 131072,
            "rope_scaling": {"factor": 8.0, "rope_type": "llama3", "original_max_position_embeddings": 8192}});
        assert_eq!(len(llama3), 131_072);
        // Linear scaling multiplies.
        assert_eq!(
            len(json!({"max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}})),
            8192
        );
        // The smallest key wins; a tokenizer limit below it wins.
        assert_eq!(len(json!({"max_position_embeddings": 4096, "seq_length": 2048})), 2048);
        assert_eq!(derived_max_len(&json!({"max_position_embeddings": 4096}), Some(1000.0)).unwrap().0, 1000);
        // The tokenizer's "no limit" sentinel (about 1e30) changes nothing.
        assert_eq!(derived_max_len(&json!({"max_position_embeddings": 4096}), Some(1e30)).unwrap().0, 4096);
        assert_eq!(len(json!({})), 2048);
    }

    #[test]
    fn what_the_catalog_cannot_represent_is_named() {
        let refuse = |c: Value, words: &str| {
            let e = check_supported(&c).unwrap_err();
            assert!(e.contains(words), "{e}");
        };
        refuse(json!({"model_type": "deepseek_v3"}), "`model_type` is `deepseek_v3`");
        refuse(json!({"hidden_size": 1}), "no `model_type`");
        refuse(json!({"model_type": "qwen2", "use_sliding_window": true}), "`use_sliding_window`");
        refuse(json!({"model_type": "qwen3_moe", "mlp_only_layers": [0]}), "`mlp_only_layers`");
        refuse(
            json!({"model_type": "qwen2_moe", "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 1000}),
            "`shared_expert_intermediate_size`",
        );
        refuse(
            json!({"model_type": "llava", "vision_config": {}, "text_config": {"model_type": "llama"}}),
            "`vision_config`",
        );
        assert!(check_supported(&json!({"model_type": "qwen3", "use_sliding_window": false})).is_ok());
    }
}
