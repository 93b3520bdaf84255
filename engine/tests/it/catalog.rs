//! Models and GPUs as files at run time (issue 16 item 2): `--catalog DIR` and
//! `SYMBIOTE_CATALOG` add or replace catalog entries; a Hugging Face model folder works wherever
//! a model name does, and a run without `max_model_len` gets the model's own limit (issue 12
//! item 5). The catalog is installed once per process, so these tests drive the binary.
// See: issue 16, issue 12

use std::path::Path;

use serde_json::{json, Value};
use symbiote::hardware::Catalog;

use crate::{symbiote, temp_dir};

/// CodeLlama-34B as a catalog file. The architecture is that of codellama/CodeLlama-34b-hf's
/// config.json (hidden 8192, 48 layers, 64 heads, 8 KV heads, FFN 22016, vocabulary 32000,
/// 16,384 positions, RoPE theta 1e6 without rope_scaling), written from the published file
/// as a test fixture: it is not a shipped catalog entry.
fn codellama_file() -> Value {
    let mut m = serde_json::to_value(Catalog::builtin().model("llama-2-7b").unwrap()).unwrap();
    for (key, value) in [
        ("name", json!("codellama-34b")),
        ("display_name", json!("CodeLlama-34B")),
        ("aliases", json!([])),
        ("hf_id", json!("codellama/CodeLlama-34b-hf")),
        ("hidden_size", json!(8192)),
        ("intermediate_size", json!(22016)),
        ("num_layers", json!(48)),
        ("num_attention_heads", json!(64)),
        ("num_kv_heads", json!(8)),
        ("head_dim", json!(128)),
        ("max_position_embeddings", json!(16384)),
        ("num_params_published", json!("34B")),
        ("generation_config", json!({})),
        ("sources", json!({"config": "test fixture: codellama/CodeLlama-34b-hf config.json"})),
    ] {
        m[key] = value;
    }
    m
}

/// The built-in H100 under another name, as a user adds a GPU of their own.
fn lab_gpu_file() -> Value {
    let mut g = serde_json::to_value(Catalog::builtin().gpu("h100-80gb").unwrap()).unwrap();
    g["name"] = json!("h100-lab");
    g["display_name"] = json!("Our lab's H100");
    g["aliases"] = json!([]);
    g
}

fn write_json(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

fn scenario(dir: &Path, model: &str, gpu: &str, tp: u64) -> String {
    let text = json!({"name": "cat", "base": {"model": model, "gpu": gpu, "tp": tp,
        "workload": {"arrival": {"rate": 2}, "num_requests": 10,
            "prompt": {"dist": "fixed", "value": 512}, "output": {"dist": "fixed", "value": 64}}}});
    let path = dir.join("s.json");
    write_json(&path, &text);
    path.display().to_string()
}

fn report(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("cat/report.json")).unwrap()).unwrap()
}

/// Runs the binary with `SYMBIOTE_CATALOG` set (or removed).
fn symbiote_env(args: &[&str], catalog: Option<&Path>) -> (i32, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_symbiote"));
    command.args(args);
    match catalog {
        Some(dir) => command.env("SYMBIOTE_CATALOG", dir),
        None => command.env_remove("SYMBIOTE_CATALOG"),
    };
    let out = command.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_catalog_folder_adds_a_gpu_and_a_model_and_the_report_names_their_files() {
    let dir = temp_dir("catalog-add");
    let cat = dir.join("cat");
    write_json(&cat.join("gpu/h100-lab.json"), &lab_gpu_file());
    write_json(&cat.join("llm/codellama-34b.json"), &codellama_file());
    let file = scenario(&dir, "codellama-34b", "h100-lab", 2);
    let (out, cat_arg) = (dir.join("out"), cat.display().to_string());

    // Without the folder both names are unknown, and the hint says how to add them.
    let (code, _, stderr) = symbiote_env(&["validate", &file], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown model `codellama-34b`") && stderr.contains("--catalog DIR"), "{stderr}");
    assert!(stderr.contains("unknown gpu `h100-lab`") && stderr.contains("add DIR/gpu/NAME.json"), "{stderr}");

    let (code, _, stderr) = symbiote(&["run", &file, "--catalog", &cat_arg, "--out", out.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{stderr}");
    // Adding entries replaces nothing, so nothing is announced.
    assert!(!stderr.contains("replaces the built-in"), "{stderr}");
    let config = &report(&out)["cases"][0]["config"];
    // No max_model_len given: the model's own 16,384, as vLLM does, not an assumed 32,768.
    assert_eq!(config["max_model_len"], 16384);
    let model_file = config["model_file"]["file"].as_str().unwrap();
    assert!(model_file.ends_with("llm/codellama-34b.json"), "{config}");
    let bytes = std::fs::read(cat.join("llm/codellama-34b.json")).unwrap();
    assert_eq!(config["model_file"]["fnv1a"], format!("{:016x}", symbiote::scenario::fnv1a(&bytes)));
    assert!(config["gpu_file"]["file"].as_str().unwrap().ends_with("gpu/h100-lab.json"), "{config}");
    assert_eq!(report(&out)["cases"][0]["runs"][0]["metrics"]["completed"], 10);

    // The same through SYMBIOTE_CATALOG; the flag wins over the variable.
    let (code, stdout, stderr) = symbiote_env(&["list", "models"], Some(&cat));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("codellama-34b") && stdout.contains("llama-2-7b"), "{stdout}");
    let (code, _, stderr) = symbiote_env(&["list", "models", "--catalog", "/nonexistent-catalog"], Some(&cat));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent-catalog: is not a folder") && stderr.contains("named by --catalog"),
        "{stderr}"
    );
    let (code, stdout, stderr) = symbiote(&[
        "memory",
        "--model",
        "codellama-34b",
        "--gpu",
        "h100-lab",
        "--tp",
        "2",
        "--json",
        "--catalog",
        &cat_arg,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let memory: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((memory["max_model_len"].as_u64(), memory["fits"].as_bool()), (Some(16384), Some(true)));
}

#[test]
fn an_override_replaces_the_built_in_entry_and_is_announced_once() {
    let dir = temp_dir("catalog-override");
    let cat = dir.join("cat");
    let mut h100 = serde_json::to_value(Catalog::builtin().gpu("h100-80gb").unwrap()).unwrap();
    // Ten times the fitted per-step overhead: steps get slower, so the run must too.
    let overhead = h100["step_time"]["step_overhead_us"].as_f64().unwrap();
    h100["step_time"]["step_overhead_us"] = json!(overhead * 10.0);
    write_json(&cat.join("gpu/h100-80gb.json"), &h100);
    let file = scenario(&dir, "llama-3.1-8b", "h100", 1);
    let run = |extra: &[&str], out: &str| {
        let out = dir.join(out);
        let mut args = vec!["run", &file, "--out", out.to_str().unwrap(), "-q"];
        args.extend_from_slice(extra);
        let (code, _, stderr) = symbiote(&args);
        assert_eq!(code, 0, "{stderr}");
        (report(&out), stderr)
    };
    let (built_in, stderr) = run(&[], "a");
    assert!(stderr.is_empty(), "{stderr}");
    let cat_arg = cat.display().to_string();
    let (overridden, stderr) = run(&["--catalog", &cat_arg], "b");
    assert_eq!(stderr.matches("replaces the built-in entry").count(), 1, "{stderr}");
    assert!(stderr.contains("catalog: gpu `h100-80gb` from ") && stderr.contains("gpu/h100-80gb.json"), "{stderr}");
    let config = |r: &Value| r["cases"][0]["config"].clone();
    assert!(config(&built_in).get("gpu_file").is_none());
    assert!(config(&overridden)["gpu_file"]["file"].as_str().unwrap().ends_with("gpu/h100-80gb.json"));
    let e2e = |r: &Value| r["cases"][0]["runs"][0]["metrics"]["mean_e2el_ms"].as_f64().unwrap();
    assert!(e2e(&overridden) > e2e(&built_in), "{} vs {}", e2e(&overridden), e2e(&built_in));

    // Of two folders naming the same GPU, the first wins, as in PATH.
    let second = dir.join("second");
    write_json(
        &second.join("gpu/h100-80gb.json"),
        &serde_json::to_value(Catalog::builtin().gpu("h100").unwrap()).unwrap(),
    );
    let list = format!("{}:{}", cat.display(), second.display());
    let (code, stdout, stderr) = symbiote(&["list", "gpus", "--json", "--catalog", &list]);
    assert_eq!(code, 0, "{stderr}");
    let gpus: Value = serde_json::from_str(&stdout).unwrap();
    let listed = gpus.as_array().unwrap().iter().find(|g| g["name"] == "h100-80gb").unwrap();
    assert_eq!(listed["step_time"]["step_overhead_us"].as_f64(), Some(overhead * 10.0));
    assert_eq!(gpus.as_array().unwrap().len(), Catalog::builtin().gpus.len());
}

#[test]
fn bad_catalog_files_name_the_file_the_field_and_the_fix() {
    let dir = temp_dir("catalog-bad");
    let check = |name: &str, files: &[(&str, String)], words: &[&str]| {
        let cat = dir.join(name);
        for (path, text) in files {
            std::fs::create_dir_all(cat.join(path).parent().unwrap()).unwrap();
            std::fs::write(cat.join(path), text).unwrap();
        }
        let (code, _, stderr) = symbiote(&["list", "gpus", "--catalog", cat.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        for w in words {
            assert!(stderr.contains(w), "{name}: `{w}` not in {stderr}");
        }
    };
    let gpu = lab_gpu_file();
    let without = |key: &str| {
        let mut g = gpu.clone();
        g.as_object_mut().unwrap().remove(key);
        g.to_string()
    };
    check(
        "missing",
        &[("gpu/lab.json", without("memory_visible_gib"))],
        &["gpu/lab.json: missing field `memory_visible_gib`", "follow the format of models/gpu/h100-80gb.json"],
    );
    let mut typo = gpu.clone();
    typo["step_time"]["matmul_eficiency"] = json!(0.5);
    check(
        "typo",
        &[("gpu/lab.json", typo.to_string())],
        &["at step_time.matmul_eficiency: unknown field `matmul_eficiency`, expected one of `matmul_efficiency`"],
    );
    let mut range = gpu.clone();
    range["step_time"]["matmul_efficiency"] = json!(1.5);
    range["memory_gib"] = json!(0);
    check(
        "range",
        &[("gpu/lab.json", range.to_string())],
        &[
            "gpu/lab.json: at step_time.matmul_efficiency: is 1.5; it must be a number with 0 < x <= 1",
            "at memory_gib: is 0",
        ],
    );
    let mut upper = gpu.clone();
    upper["name"] = json!("Lab H100");
    check(
        "name",
        &[("gpu/lab.json", upper.to_string())],
        &["at name: `Lab H100` is looked up as `lab-h100`; write it that way"],
    );
    let mut alias = gpu.clone();
    alias["aliases"] = json!(["h100"]);
    check(
        "alias",
        &[("gpu/lab.json", alias.to_string())],
        &["at aliases: `h100` already finds the built-in gpu `h100-80gb`"],
    );
    check(
        "twice",
        &[("gpu/a.json", gpu.to_string()), ("gpu/b.json", gpu.to_string())],
        &["gpu/b.json: at name: `h100-lab` is already the name of", "gpu/a.json; rename one of them"],
    );
    check("syntax", &[("gpu/lab.json", "{\"name\": ".into())], &["gpu/lab.json: not valid JSON"]);
    check("empty", &[("notes.txt", String::new())], &["holds neither gpu/ nor llm/"]);
    let mut model = codellama_file();
    model["num_kv_heads"] = json!(5);
    check(
        "kv",
        &[("llm/m.json", model.to_string())],
        &["llm/m.json: at num_kv_heads: (5) must divide num_attention_heads (64)"],
    );
}

/// A Hugging Face folder as downloaded from the Hub: config.json and, optionally,
/// generation_config.json (this one is CodeLlama-34B-Instruct's config with test sampling defaults).
fn hf_folder(dir: &Path, generation: Option<Value>) -> std::path::PathBuf {
    let folder = dir.join("hf/CodeLlama-34b-Instruct-hf");
    let _ = std::fs::remove_dir_all(&folder);
    write_json(
        &folder.join("config.json"),
        &json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8192,
            "intermediate_size": 22016, "num_hidden_layers": 48, "num_attention_heads": 64,
            "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 16384,
            "rope_theta": 1000000, "rope_scaling": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}),
    );
    if let Some(generation) = generation {
        write_json(&folder.join("generation_config.json"), &generation);
    }
    folder
}

#[test]
fn a_hugging_face_folder_works_wherever_a_model_name_does() {
    let dir = temp_dir("catalog-hf");
    let folder = hf_folder(&dir, Some(json!({"bos_token_id": 1, "eos_token_id": 2, "top_p": 0.9, "temperature": 0.6})));
    // In a scenario, relative to the file: the folder, or its config.json.
    for model in ["hf/CodeLlama-34b-Instruct-hf", "hf/CodeLlama-34b-Instruct-hf/config.json"] {
        let file = scenario(&dir, model, "h100", 2);
        let out = dir.join("out");
        let (code, _, stderr) = symbiote(&["run", &file, "--out", out.to_str().unwrap(), "-q"]);
        assert_eq!(code, 0, "{model}: {stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
        let config = &report(&out)["cases"][0]["config"];
        // See: issue 12 (a CodeLlama-34B run was refused because 32768 was assumed).
        assert_eq!(config["max_model_len"], 16384, "{model}");
        assert!(config["model_file"]["file"].as_str().unwrap().ends_with("CodeLlama-34b-Instruct-hf/config.json"));
        // top_p 0.9 from generation_config.json reaches the engine: its requests sort logits.
        let parsed = symbiote::scenario::load(Path::new(&file)).unwrap();
        assert_eq!(parsed.cases[0].model.generation_config.top_p, Some(0.9));
        assert_eq!(parsed.cases[0].model.max_position_embeddings, 16384);
    }
    // On the command line, relative to the current folder.
    let (code, stdout, stderr) =
        symbiote(&["memory", "--model", folder.to_str().unwrap(), "--gpu", "h100", "--tp", "2", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["max_model_len"], 16384);

    // `replay --model` takes the folder relative to the current folder, not to the trace's.
    std::fs::create_dir_all(dir.join("traces")).unwrap();
    std::fs::write(
        dir.join("traces/AzureLLMInferenceTrace_t.csv"),
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_symbiote"))
        .args([
            "replay",
            "traces/AzureLLMInferenceTrace_t.csv",
            "--model",
            "hf/CodeLlama-34b-Instruct-hf",
            "--gpu",
            "h100",
            "--tp",
            "2",
        ])
        .args(["--out", "out-replay", "-q"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let replayed: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out-replay/replay_AzureLLMInferenceTrace_t/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(replayed["cases"][0]["runs"][0]["metrics"]["completed"], 2);
    assert_eq!(replayed["cases"][0]["config"]["max_model_len"], 16384);

    // Without generation_config.json: a warning naming the assumption, once per folder.
    let folder = hf_folder(&dir, None);
    let file = scenario(&dir, "hf/CodeLlama-34b-Instruct-hf", "h100", 2);
    let (code, _, stderr) = symbiote(&["validate", &file]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("warning: ").count(), 1, "{stderr}");
    assert!(stderr.contains("no generation_config.json beside it"), "{stderr}");
    assert!(stderr.contains("vLLM's neutral sampling defaults (temperature 1, top_p 1, top_k off"), "{stderr}");
    let parsed = symbiote::scenario::load(Path::new(&file)).unwrap();
    assert!(!parsed.cases[0].model.generation_config.filters_logits());
    assert!(folder.join("config.json").is_file());
}

#[test]
fn hugging_face_architectures_map_onto_the_catalog_or_are_refused_by_field() {
    let dir = temp_dir("catalog-hf-arch");
    let load = |config: Value| {
        write_json(&dir.join("m/config.json"), &config);
        write_json(&dir.join("m/generation_config.json"), &json!({}));
        let text = r#"{"name": "t", "base": {"model": "m", "gpu": "h100", "tp": 1,
            "workload": {"arrival": {"rate": 1}, "num_requests": 1}}}"#;
        symbiote::scenario::parse_in(text, "t.json", &dir)
    };
    // Qwen1.5-MoE-A2.7B's config.json: 60 routed experts of 1408, a shared expert of 5632 (four
    // routed widths), 4 per token; the catalog counts it as 4 shared experts.
    let qwen_moe = json!({"architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
        "hidden_size": 2048, "intermediate_size": 5632, "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
        "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16,
        "vocab_size": 151936, "max_position_embeddings": 8192, "decoder_sparse_step": 1,
        "mlp_only_layers": [], "use_sliding_window": false, "tie_word_embeddings": false});
    let s = load(qwen_moe.clone()).unwrap();
    let moe = s.cases[0].model.moe.clone().unwrap();
    assert_eq!(
        (moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size, moe.shared_experts),
        (60, 4, 1408, 4)
    );
    // Qwen2's attention carries a QKV bias; a yarn factor of 4 over 32,768 gives 131,072.
    let qwen2 = json!({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
        "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
        "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 32768,
        "rope_scaling": {"factor": 4.0, "original_max_position_embeddings": 32768, "type": "yarn"},
        "use_sliding_window": false, "tie_word_embeddings": false});
    let s = load(qwen2).unwrap();
    assert!(s.cases[0].model.attention_qkv_bias);
    assert_eq!(s.cases[0].model.max_position_embeddings, 131_072);
    assert_eq!(s.cases[0].engine.max_model_len, 131_072);
    // Refused, naming the field.
    for (change, words) in [
        (
            json!({"model_type": "deepseek_v3"}),
            "`model_type` is `deepseek_v3`, an architecture the catalog cannot represent",
        ),
        (json!({"mlp_only_layers": [0, 1]}), "`mlp_only_layers` is not empty"),
        (json!({"use_sliding_window": true}), "`use_sliding_window` is true"),
        (
            json!({"shared_expert_intermediate_size": 5000}),
            "`shared_expert_intermediate_size` (5000) is not a multiple",
        ),
    ] {
        let mut config = qwen_moe.clone();
        for (k, v) in change.as_object().unwrap() {
            config[k] = v.clone();
        }
        let problems = load(config).expect_err(words);
        assert!(problems[0].path == "base.model" && problems[0].message.contains(words), "{problems:#?}");
        assert!(problems[0].message.contains("m/config.json"), "{problems:#?}");
    }
}
