//! A model given as a Hugging Face config.json instead of a catalog name.

use symbiote::hardware::memory;
use symbiote::scenario::parse_in;

#[test]
fn a_config_json_path_builds_the_same_model_as_the_catalog() {
    let dir = std::env::temp_dir().join(format!("symbiote-hf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // meta-llama/Llama-2-7b-hf's config.json fields.
    std::fs::write(
        dir.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
            "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096,
            "tie_word_embeddings": false, "torch_dtype": "float16"}"#,
    )
    .unwrap();
    let text = |model: &str| {
        format!(
            r#"{{"name": "t", "base": {{"model": "{model}", "gpu": "a100-80gb",
                "workload": {{"arrival": {{"rate": 1}}, "num_requests": 1}}}}}}"#
        )
    };
    let from_file = parse_in(&text("config.json"), "t.json", &dir).unwrap();
    let from_catalog = parse_in(&text("llama-2-7b"), "t.json", &dir).unwrap();
    let plan = |s: &symbiote::scenario::Scenario| {
        memory::plan(&s.cases[0].model, &s.cases[0].gpu, &s.cases[0].memory_config()).unwrap()
    };
    assert_eq!(plan(&from_file).num_gpu_blocks, plan(&from_catalog).num_gpu_blocks);
    assert_eq!(plan(&from_file).weights_bytes, 13_476_831_232);
    // Without a generation_config.json beside it the model has no sampling defaults; with one,
    // its top_p reaches the model, as the catalog's Llama-2-7B has it.
    assert!(!from_file.cases[0].model.generation_config.filters_logits());
    std::fs::write(dir.join("generation_config.json"), r#"{"do_sample": true, "temperature": 0.6, "top_p": 0.9}"#)
        .unwrap();
    let with_defaults = parse_in(&text("config.json"), "t.json", &dir).unwrap();
    assert_eq!(with_defaults.cases[0].model.generation_config, from_catalog.cases[0].model.generation_config);
    assert_eq!(with_defaults.cases[0].model.generation_config.top_p, Some(0.9));
    std::fs::write(dir.join("generation_config.json"), "{").unwrap();
    let err = parse_in(&text("config.json"), "t.json", &dir).unwrap_err();
    assert!(err[0].message.contains("generation_config.json: not valid JSON"), "{}", err[0].message);
    std::fs::remove_file(dir.join("generation_config.json")).unwrap();
    // A missing file and an unknown name both say what to do.
    let err = parse_in(&text("nope/config.json"), "t.json", &dir).unwrap_err();
    assert!(
        err[0].message.contains("give a Hugging Face model folder or the path of its config.json"),
        "{}",
        err[0].message
    );
    let err = parse_in(&text("llama-9"), "t.json", &dir).unwrap_err();
    assert!(
        err[0].message.contains("add DIR/llm/NAME.json") && err[0].message.contains("--catalog DIR"),
        "{}",
        err[0].message
    );
}
