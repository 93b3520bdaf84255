//! vLLM's engine arguments as vLLM spells them: a case's `vllm` object (vLLM's names) or its
//! `vllm_args` string (a `vllm serve` command line), mapped onto symbiote's fields before the
//! case is typed, so every later check and default applies as if symbiote's names were used.
//!
//! Sources: flag names, short aliases (`-tp`, `-q`, `-pp`, `-dp`) and types are vLLM's
//! `EngineArgs.add_cli_args` in `vllm/engine/arg_utils.py` (commit 99d7eb5, the v0.11 line):
//! booleans are `argparse.BooleanOptionalAction` (`--flag`, `--no-flag`, no value), others take
//! `--flag value` or `--flag=value`; `--max-model-len` and `--max-num-batched-tokens` take
//! `human_readable_int` (`32k` = 32,000, `32K` = 32,768); `FlexibleArgumentParser.parse_args`
//! (`vllm/utils/argparse_utils.py`) accepts `_` for `-` in long names. The `dtype` choices are
//! `ModelDType`'s, the `kv_cache_dtype` choices `CacheDType`'s (`vllm/config/cache.py`). A flag
//! not given keeps vLLM's default, which `validate` resolves as vLLM does.

use serde_json::{Map, Value};

use super::expand::set_dotted;
use super::validate::Ctx;

/// How a flag's value is read and converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    /// `human_readable_int`: `32k`, `32K`, `32768`.
    HumanInt,
    Float,
    Bool,
    /// `--dtype`: the weights' precision when no `--quantization` is given.
    Dtype,
    Quantization,
    KvCacheDtype,
    GenerationConfig,
    /// Accepted and ignored: changes logging, networking or names, nothing symbiote simulates.
    Ignored {
        takes_value: bool,
    },
}

/// One vLLM flag symbiote reads.
struct Flag {
    /// vLLM's name (`EngineArgs` field).
    name: &'static str,
    /// vLLM's short alias, if any.
    alias: Option<&'static str>,
    /// Symbiote's field, a dotted path from the case (empty for ignored flags).
    target: &'static str,
    kind: Kind,
}

const fn flag(name: &'static str, target: &'static str, kind: Kind) -> Flag {
    Flag { name, alias: None, target, kind }
}

/// The flags symbiote models, in `vllm serve --help` order, then those it accepts and ignores.
const FLAGS: &[Flag] = &[
    flag("model", "model", Kind::Text),
    flag("dtype", "quant", Kind::Dtype),
    flag("max_model_len", "engine.max_model_len", Kind::HumanInt),
    Flag { name: "quantization", alias: Some("-q"), target: "quant", kind: Kind::Quantization },
    flag("generation_config", "engine.generation_config", Kind::GenerationConfig),
    Flag { name: "tensor_parallel_size", alias: Some("-tp"), target: "tp", kind: Kind::Int },
    flag("enable_expert_parallel", "engine.enable_expert_parallel", Kind::Bool),
    flag("block_size", "engine.block_size", Kind::Int),
    flag("gpu_memory_utilization", "engine.gpu_memory_utilization", Kind::Float),
    flag("kv_cache_dtype", "kv_cache_dtype", Kind::KvCacheDtype),
    flag("num_gpu_blocks_override", "engine.num_gpu_blocks_override", Kind::Int),
    flag("enable_prefix_caching", "engine.enable_prefix_caching", Kind::Bool),
    flag("max_num_batched_tokens", "engine.max_num_batched_tokens", Kind::HumanInt),
    flag("max_num_seqs", "engine.max_num_seqs", Kind::Int),
    flag("long_prefill_token_threshold", "engine.long_prefill_token_threshold", Kind::Int),
    flag("enable_chunked_prefill", "engine.enable_chunked_prefill", Kind::Bool),
    flag("async_scheduling", "engine.async_scheduling", Kind::Bool),
    // `CacheConfig.kv_offloading_size` / `kv_offloading_backend` (vLLM 0.12+,
    // `vllm/config/cache.py`), turned into an OffloadingConnector by
    // `apply_kv_offloading_config`.
    flag("kv_offloading_size", "engine.kv_offloading_size", Kind::Float),
    flag("kv_offloading_backend", "engine.kv_offloading_backend", Kind::Text),
    flag("host", "", Kind::Ignored { takes_value: true }),
    flag("port", "", Kind::Ignored { takes_value: true }),
    flag("served_model_name", "", Kind::Ignored { takes_value: true }),
    flag("tokenizer", "", Kind::Ignored { takes_value: true }),
    flag("revision", "", Kind::Ignored { takes_value: true }),
    flag("download_dir", "", Kind::Ignored { takes_value: true }),
    flag("seed", "", Kind::Ignored { takes_value: true }),
    flag("api_key", "", Kind::Ignored { takes_value: true }),
    flag("trust_remote_code", "", Kind::Ignored { takes_value: false }),
    flag("disable_log_stats", "", Kind::Ignored { takes_value: false }),
    flag("disable_log_requests", "", Kind::Ignored { takes_value: false }),
    flag("enable_log_requests", "", Kind::Ignored { takes_value: false }),
];

/// Advice for flags people often pass that symbiote does not model.
const NOT_MODELLED: &[(&str, &str)] = &[
    ("data_parallel_size", "for independent replicas behind a router use `fleet.replicas`"),
    ("pipeline_parallel_size", "pipeline parallelism is not simulated"),
    ("enforce_eager", "steps are priced as with CUDA graphs"),
    ("speculative_config", "speculative decoding is not simulated"),
    ("cpu_offload_gb", "weights offloaded to the CPU are not simulated"),
    ("swap_space", "the V1 engine recomputes preempted requests; swap space is unused"),
];

fn lookup(name: &str) -> Option<&'static Flag> {
    let name = name.replace('-', "_");
    FLAGS.iter().find(|f| f.name == name)
}

/// The flags symbiote models (`ignored: false`) or accepts and ignores, as a command line
/// spells them (`--tensor-parallel-size (-tp)`) or as the `vllm` object does.
fn flag_list(ignored: bool, command_line: bool) -> String {
    let chosen = FLAGS.iter().filter(|f| matches!(f.kind, Kind::Ignored { .. }) == ignored);
    chosen
        .map(|f| match (command_line, f.alias) {
            (true, Some(alias)) => format!("--{} ({alias})", f.name.replace('_', "-")),
            (true, None) => format!("--{}", f.name.replace('_', "-")),
            (false, _) => f.name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// For an unknown field named as vLLM names it, the message naming symbiote's field.
pub(super) fn hint_for_field(field: &str) -> Option<String> {
    let flag = FLAGS.iter().find(|f| f.name == field && !f.target.is_empty() && f.name != "model")?;
    let target = flag.target;
    let place = if target == field { " at the case level, next to `model` and `gpu`" } else { "" };
    Some(format!(
        "unknown field `{field}`; vLLM's `{field}` is `{target}` in a symbiote case{place} (or keep vLLM's names inside `\"vllm\": {{\"{field}\": ...}}`)"
    ))
}

/// One mapped value: symbiote's field, its JSON value, and how the user wrote it.
struct Setting {
    flag: &'static Flag,
    value: Value,
    written: String,
}

/// Maps a case's `vllm` object and `vllm_args` string (removing them) onto symbiote's fields
/// in `case`, reporting unknown flags, bad values and conflicts at `path`.
pub(super) fn apply(case: &mut Value, path: &str, ctx: &mut Ctx<'_>) {
    let Value::Object(map) = case else { return };
    let object = map.remove("vllm");
    let args = map.remove("vllm_args");
    if object.is_none() && args.is_none() {
        return;
    }
    let mut settings = Vec::new();
    let mut problems = Vec::new();
    match object {
        Some(Value::Object(object)) => from_object(&object, &mut settings, &mut problems),
        Some(Value::Null) | None => {}
        Some(_) => problems.push((
            "vllm".into(),
            "`vllm` must be an object of vLLM's engine arguments, like {\"tensor_parallel_size\": 2}".into(),
        )),
    }
    match args {
        Some(Value::String(text)) => from_command_line(&text, &mut settings, &mut problems),
        Some(Value::Null) | None => {}
        Some(_) => problems.push((
            "vllm_args".into(),
            "`vllm_args` must be a string of vLLM flags, like \"--tensor-parallel-size 2 --max-num-seqs 128\"".into(),
        )),
    }
    for (at, message) in problems {
        ctx.push(format!("{path}.{at}"), message);
    }
    // `--quantization` names the weights' precision; `--dtype` then only sets the activations'.
    if settings.iter().any(|s| s.flag.kind == Kind::Quantization) {
        settings.retain(|s| s.flag.kind != Kind::Dtype);
    }
    let mut applied: Vec<&Setting> = Vec::new();
    for setting in &settings {
        let own = get_dotted(case, setting.flag.target).cloned();
        if let Some(earlier) = applied.iter().find(|s| s.flag.target == setting.flag.target && s.value != setting.value)
        {
            ctx.push(
                path,
                format!(
                    "{} and {} set `{}` differently; keep one",
                    earlier.written, setting.written, setting.flag.target
                ),
            );
        } else if let Some(own) =
            own.filter(|own| *own != setting.value && !applied.iter().any(|s| s.flag.target == setting.flag.target))
        {
            ctx.push(
                path,
                format!(
                    "{} conflicts with `{}: {own}` set in this case; set it in one place (symbiote's field or vLLM's argument)",
                    setting.written, setting.flag.target
                ),
            );
        } else if let Err(message) = set_dotted(case, setting.flag.target, setting.value.clone()) {
            ctx.push(path, message);
        }
        applied.push(setting);
    }
}

fn get_dotted<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(value, |node, part| node.get(part))
}

/// Entries of the `vllm` object: vLLM's names with JSON values.
fn from_object(object: &Map<String, Value>, settings: &mut Vec<Setting>, problems: &mut Vec<(String, String)>) {
    let mut unknown = Vec::new();
    for (name, value) in object {
        let Some(flag) = lookup(name) else {
            unknown.push(name.clone());
            continue;
        };
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let converted = match (flag.kind, value) {
            (Kind::Bool, Value::Bool(b)) => Ok(Some(Value::Bool(*b))),
            (Kind::Bool, _) => Err(format!("takes true or false, got {value}")),
            (Kind::Ignored { .. }, _) => Ok(None),
            (_, _) => match text {
                Some(text) => convert(flag, &text),
                None => Err(format!("takes a {}, got {value}", expected(flag.kind))),
            },
        };
        match converted {
            Ok(Some(value)) => settings.push(Setting { flag, value, written: format!("`vllm.{name}`") }),
            Ok(None) => {}
            Err(message) => problems.push((format!("vllm.{name}"), format!("`{name}` {message}"))),
        }
    }
    if !unknown.is_empty() {
        problems.push(("vllm".into(), not_modelled(&unknown, "")));
    }
}

/// A `vllm serve` command line: `[vllm serve] [MODEL] --flag value --flag=value --bool --no-bool`.
fn from_command_line(text: &str, settings: &mut Vec<Setting>, problems: &mut Vec<(String, String)>) {
    let tokens = match split_words(text) {
        Ok(tokens) => tokens,
        Err(message) => return problems.push(("vllm_args".into(), message)),
    };
    let mut tokens = tokens.into_iter().peekable();
    if tokens.peek().is_some_and(|t| t == "vllm") {
        tokens.next();
        if tokens.peek().is_some_and(|t| t == "serve") {
            tokens.next();
        }
    }
    let mut unknown = Vec::new();
    let mut first = true;
    while let Some(token) = tokens.next() {
        let positional = !token.starts_with('-') || token == "-" || token == "--";
        if positional {
            // `vllm serve MODEL ...`: the model comes first.
            match (first, lookup("model")) {
                (true, Some(model)) => settings.push(Setting {
                    flag: model,
                    value: Value::String(token.clone()),
                    written: format!("`{token}` in vllm_args"),
                }),
                _ => problems.push((
                    "vllm_args".into(),
                    format!("unexpected `{token}`; only the model may come without a flag, first"),
                )),
            }
            first = false;
            continue;
        }
        first = false;
        let (name, inline) = match token.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (token.clone(), None),
        };
        let long = name.strip_prefix("--").map(|n| n.replace('_', "-"));
        let (flag, negated) = match &long {
            Some(long) => match lookup(long) {
                Some(flag) => (Some(flag), false),
                None => match long.strip_prefix("no-").and_then(lookup) {
                    Some(flag) if flag.kind == Kind::Bool || flag.kind == (Kind::Ignored { takes_value: false }) => {
                        (Some(flag), true)
                    }
                    _ => (None, false),
                },
            },
            None => (FLAGS.iter().find(|f| f.alias == Some(name.as_str())), false),
        };
        let Some(flag) = flag else {
            unknown.push(long.map_or(name.clone(), |l| format!("--{l}")));
            // Skip the unknown flag's value, if it seems to have one.
            if inline.is_none() && tokens.peek().is_some_and(|t| !t.starts_with('-')) {
                tokens.next();
            }
            continue;
        };
        let shown = format!("--{}", flag.name.replace('_', "-"));
        let takes_value = !matches!(flag.kind, Kind::Bool | Kind::Ignored { takes_value: false });
        let value = match (takes_value, inline) {
            (false, Some(_)) => {
                problems.push((
                    "vllm_args".into(),
                    format!("`{token}`: `{shown}` takes no value; write `{shown}` or `--no-{}`", &shown[2..]),
                ));
                continue;
            }
            (false, None) => Value::Bool(!negated).to_string(),
            (true, Some(value)) => value,
            (true, None) => match tokens.next() {
                Some(value) => value,
                None => {
                    problems.push(("vllm_args".into(), format!("`{name}` needs a value")));
                    continue;
                }
            },
        };
        let written = match flag.kind {
            Kind::Bool => format!("`{}{}` in vllm_args", if negated { "--no-" } else { "--" }, &shown[2..]),
            _ => format!("`{name} {value}` in vllm_args"),
        };
        let converted = match flag.kind {
            Kind::Bool => Ok(Some(Value::Bool(!negated))),
            _ => convert(flag, &value),
        };
        match converted {
            Ok(Some(value)) => settings.push(Setting { flag, value, written }),
            Ok(None) => {}
            Err(message) => problems.push(("vllm_args".into(), format!("`{shown}` {message}"))),
        }
    }
    if !unknown.is_empty() {
        problems.push(("vllm_args".into(), not_modelled(&unknown, "--")));
    }
}

/// What a kind of flag takes, for messages.
fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Int | Kind::HumanInt => "whole number",
        Kind::Float => "number",
        _ => "string",
    }
}

/// The message for flags symbiote does not model: which, why where known, and what it reads.
fn not_modelled(names: &[String], prefix: &str) -> String {
    let mut advice = Vec::new();
    for name in names {
        let key = name.trim_start_matches('-').replace('-', "_");
        if let Some((_, why)) = NOT_MODELLED.iter().find(|(n, _)| *n == key) {
            advice.push(format!("{name}: {why}"));
        }
    }
    let advice = if advice.is_empty() { String::new() } else { format!(" ({})", advice.join("; ")) };
    let shown: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let command_line = !prefix.is_empty();
    format!(
        "not modelled by symbiote: {}{advice}; remove it or set what it stands for in symbiote's fields. Modelled: {}; accepted and ignored: {}",
        shown.join(", "),
        flag_list(false, command_line),
        flag_list(true, command_line)
    )
}

/// The flag's value as symbiote's JSON value; `None` for ignored flags and `dtype auto`.
fn convert(flag: &Flag, text: &str) -> Result<Option<Value>, String> {
    let text = text.trim();
    let one_of = |choices: &str| format!("takes one of {choices}, got `{text}`");
    let value = match flag.kind {
        Kind::Ignored { .. } => return Ok(None),
        Kind::Text => Value::String(text.to_string()),
        Kind::Int => text.parse::<u64>().map(Value::from).map_err(|_| format!("takes a whole number, got `{text}`"))?,
        Kind::HumanInt => human_readable_int(text).map(Value::from)?,
        Kind::Float => match text.parse::<f64>() {
            Ok(x) if x.is_finite() => serde_json::Number::from_f64(x).map(Value::Number).expect("finite"),
            _ => return Err(format!("takes a number, got `{text}`")),
        },
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("takes true or false, got `{text}`")),
        },
        // vLLM's "auto" follows the checkpoint; symbiote's `quant` then keeps its default.
        Kind::Dtype => match text {
            "auto" => return Ok(None),
            "half" | "float16" => "fp16".into(),
            "bfloat16" => "bf16".into(),
            "float" | "float32" => "fp32".into(),
            _ => return Err(one_of("auto, half, float16, bfloat16, float, float32")),
        },
        // The weight formats symbiote prices: FP8 (W8A8) and 4-bit GPTQ/AWQ (W4A16).
        Kind::Quantization => match text {
            "None" => return Ok(None),
            "fp8" | "fbgemm_fp8" | "ptpc_fp8" => "fp8".into(),
            "awq" | "awq_marlin" | "gptq" | "gptq_marlin" => "int4".into(),
            _ => {
                return Err(format!(
                    "`{text}` is not a quantization symbiote prices; use fp8 (symbiote's fp8), awq, awq_marlin, gptq or gptq_marlin (int4), or set `quant` (fp32, fp16, bf16, fp8, int8, int4)"
                ))
            }
        },
        // A 16-bit cache is what `auto` gives a 16-bit model.
        Kind::KvCacheDtype => match text {
            "auto" | "bfloat16" | "float16" => "auto".into(),
            "fp8" | "fp8_e4m3" | "fp8_e5m2" => "fp8".into(),
            _ => return Err(one_of("auto, bfloat16, fp8, fp8_e4m3, fp8_e5m2")),
        },
        Kind::GenerationConfig => match text {
            "auto" | "vllm" => text.into(),
            _ => return Err(format!("takes auto or vllm here (a folder of generation_config.json is not read), got `{text}`")),
        },
    };
    Ok(Some(value))
}

/// vLLM's `human_readable_int`: `25.6k` = 25,600 (decimal k/m/g/t), `16K` = 16,384 (binary
/// K/M/G/T, no decimals), or a plain whole number.
fn human_readable_int(text: &str) -> Result<u64, String> {
    let bad = || format!("takes a whole number such as 32768, 32k or 32K, got `{text}`");
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let decimal = match suffix {
        "" => return number.parse::<u64>().map_err(|_| bad()),
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "K" | "M" | "G" | "T" => {
            let shift = 10 * (1 + "KMGT".find(suffix).expect("one of KMGT")) as u32;
            return number.parse::<u64>().ok().and_then(|n| n.checked_mul(1u64 << shift)).ok_or_else(bad);
        }
        _ => return Err(bad()),
    };
    match number.parse::<f64>() {
        Ok(x) if x.is_finite() && x * decimal < 1.8e19 => Ok((x * decimal) as u64),
        _ => Err(bad()),
    }
}

/// Splits a command line into words as a POSIX shell would for plain text: whitespace
/// separates, '...' and "..." quote, a backslash escapes the next character (so a pasted
/// `\` line continuation is whitespace).
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(next) => word.get_or_insert_with(String::new).push(next),
            },
            '\'' | '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => current.push(other),
                        None => return Err(format!("a {c} quote is not closed in vllm_args")),
                    }
                }
            }
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (symbiote's field, value) per flag, and (JSON path, message) per problem.
    type Mapped = (Vec<(String, Value)>, Vec<(String, String)>);

    fn settings(args: &str) -> Mapped {
        let (mut settings, mut problems) = (Vec::new(), Vec::new());
        from_command_line(args, &mut settings, &mut problems);
        (settings.into_iter().map(|s| (s.flag.target.to_string(), s.value)).collect(), problems)
    }

    #[test]
    fn a_vllm_serve_command_line_maps_onto_symbiotes_fields() {
        let (got, problems) = settings(
            "vllm serve meta-llama/Llama-3.1-8B-Instruct -tp 2 --max-num-seqs=128 --max_model_len 32k \
             --no-enable-prefix-caching --enable-chunked-prefill --dtype bfloat16 --kv-cache-dtype fp8_e4m3 \
             --gpu-memory-utilization 0.85 --port 8000 --disable-log-requests --max-num-batched-tokens 16K",
        );
        assert_eq!(problems, vec![]);
        let expected = [
            ("model", Value::from("meta-llama/Llama-3.1-8B-Instruct")),
            ("tp", Value::from(2)),
            ("engine.max_num_seqs", Value::from(128)),
            ("engine.max_model_len", Value::from(32_000)),
            ("engine.enable_prefix_caching", Value::from(false)),
            ("engine.enable_chunked_prefill", Value::from(true)),
            ("quant", Value::from("bf16")),
            ("kv_cache_dtype", Value::from("fp8")),
            ("engine.gpu_memory_utilization", Value::from(0.85)),
            ("engine.max_num_batched_tokens", Value::from(16_384)),
        ];
        assert_eq!(got, expected.map(|(k, v)| (k.to_string(), v)));
    }

    #[test]
    fn unmodelled_flags_are_named_with_advice_and_the_modelled_list() {
        let (_, problems) = settings("--enforce-eager --data-parallel-size 2 --max-num-seqs 8");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let message = &problems[0].1;
        assert!(
            message.starts_with("not modelled by symbiote: `--enforce-eager`, `--data-parallel-size`"),
            "{message}"
        );
        assert!(message.contains("--data-parallel-size: for independent replicas behind a router use `fleet.replicas`"));
        assert!(message.contains("Modelled: --model, --dtype, --max-model-len, --quantization (-q)"), "{message}");
        assert!(message.contains("--tensor-parallel-size (-tp)"), "{message}");
    }

    #[test]
    fn values_are_checked_against_vllms_syntax() {
        let cases = [
            (
                "--enable-prefix-caching=true",
                "takes no value; write `--enable-prefix-caching` or `--no-enable-prefix-caching`",
            ),
            ("--max-num-seqs", "`--max-num-seqs` needs a value"),
            ("--max-num-seqs many", "`--max-num-seqs` takes a whole number, got `many`"),
            ("--max-model-len 1.5K", "takes a whole number such as 32768, 32k or 32K, got `1.5K`"),
            ("--dtype float8", "takes one of auto, half, float16, bfloat16, float, float32, got `float8`"),
            ("--quantization bitsandbytes", "`bitsandbytes` is not a quantization symbiote prices"),
            ("llama extra", "unexpected `extra`; only the model may come without a flag, first"),
            ("--model 'unclosed", "a ' quote is not closed in vllm_args"),
        ];
        for (args, expected) in cases {
            let (_, problems) = settings(args);
            assert!(problems.iter().any(|(_, m)| m.contains(expected)), "{args}: {problems:?}");
        }
    }

    #[test]
    fn human_readable_ints_follow_vllm() {
        assert_eq!(human_readable_int("25.6k"), Ok(25_600));
        assert_eq!(human_readable_int("1K"), Ok(1024));
        assert_eq!(human_readable_int("2M"), Ok(2 << 20));
        assert_eq!(human_readable_int("4096"), Ok(4096));
        assert!(human_readable_int("k").is_err() && human_readable_int("12q").is_err());
    }

    #[test]
    fn quoted_words_and_line_continuations_split_like_a_shell() {
        let words = split_words("vllm serve \"my model\" \\\n  --max-num-seqs 8 '--port' 1").unwrap();
        assert_eq!(words, ["vllm", "serve", "my model", "--max-num-seqs", "8", "--port", "1"]);
    }

    fn scenario(base_extra: &str, cases: &str) -> String {
        format!(
            r#"{{"name": "v", "base": {{"model": "llama-3.1-8b", "gpu": "h100", {base_extra}
                "workload": {{"arrival": {{"rate": 5}}, "num_requests": 10}}}}, "cases": [{cases}]}}"#
        )
    }

    fn errors(text: &str) -> Vec<String> {
        super::super::parse(text, "v.json").unwrap_err().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn a_case_may_give_vllms_arguments_as_an_object_or_a_command_line() {
        let text = scenario(
            r#""vllm_args": "--tensor-parallel-size 2 --max-num-seqs 128 --no-enable-prefix-caching --kv-cache-dtype fp8","#,
            r#"{"name": "base"}, {"name": "object", "vllm_args": null,
                "vllm": {"tensor_parallel_size": 4, "quantization": "fp8", "max_model_len": "8k", "async_scheduling": true}}"#,
        );
        let s = super::super::parse(&text, "v.json").unwrap();
        let (a, b) = (&s.cases[0], &s.cases[1]);
        assert_eq!((a.tp, a.engine.max_num_seqs, a.engine.enable_prefix_caching), (2, 128, false));
        assert_eq!(a.kv_dtype, crate::hardware::KvDtype::Fp8);
        assert_eq!((b.tp, b.quant, b.engine.max_model_len), (4, crate::hardware::Quant::Fp8, 8000));
        assert!(b.engine.async_scheduling && b.engine.enable_prefix_caching);
        // Defaults not given stay vLLM's for the GPU (H100: 8192 tokens, 1024 sequences).
        assert_eq!((b.engine.max_num_batched_tokens, b.engine.max_num_seqs), (8192, 1024));
    }

    #[test]
    fn a_flag_that_contradicts_symbiotes_own_field_is_an_error_naming_both() {
        let errs = errors(&scenario(r#""tp": 1, "vllm_args": "-tp 2","#, r#"{"name": "a"}"#));
        assert_eq!(
            errs,
            ["v.json: at base: `-tp 2` in vllm_args conflicts with `tp: 1` set in this case; set it in one place (symbiote's field or vLLM's argument)"]
        );
        let errs =
            errors(&scenario(r#""vllm": {"max_num_seqs": 64},"#, r#"{"name": "a", "vllm_args": "--max-num-seqs 32"}"#));
        assert_eq!(errs, ["v.json: at cases[0]: `vllm.max_num_seqs` and `--max-num-seqs 32` in vllm_args set `engine.max_num_seqs` differently; keep one"]);
        // The same value in both places is no conflict.
        assert!(
            super::super::parse(&scenario(r#""tp": 2, "vllm_args": "-tp 2","#, r#"{"name": "a"}"#), "v.json").is_ok()
        );
    }

    #[test]
    fn unmodelled_flags_are_reported_where_they_are_written() {
        let errs = errors(&scenario(
            "",
            r#"{"name": "a", "vllm_args": "--enforce-eager"}, {"name": "b", "vllm.swap_space": 4}"#,
        ));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("v.json: at cases[0].vllm_args: not modelled by symbiote: `--enforce-eager`"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("v.json: at cases[1].vllm: not modelled by symbiote: `swap_space` (swap_space: "),
            "{}",
            errs[1]
        );
        assert!(errs[1].contains("Modelled: model, dtype, max_model_len, quantization,"), "{}", errs[1]);
    }

    // vLLM's names written where symbiote's belong get symbiote's name in the error.
    #[test]
    fn vllms_names_at_the_top_of_a_case_hint_symbiotes() {
        let errs = errors(&scenario(r#""tensor_parallel_size": 2,"#, r#"{"name": "a"}"#));
        assert_eq!(errs, ["v.json: at base: unknown field `tensor_parallel_size`; vLLM's `tensor_parallel_size` is `tp` in a symbiote case (or keep vLLM's names inside `\"vllm\": {\"tensor_parallel_size\": ...}`)"]);
        let errs = errors(&scenario("", r#"{"name": "a", "dtype": "bfloat16"}"#));
        assert!(errs[0].contains("at cases[0]: unknown field `dtype`; vLLM's `dtype` is `quant`"), "{errs:?}");
        let errs = errors(&scenario("", r#"{"name": "a", "max_num_seqs": 8}"#));
        assert!(errs[0].contains("vLLM's `max_num_seqs` is `engine.max_num_seqs`"), "{errs:?}");
        let errs = errors(&scenario("", r#"{"name": "a", "engine.kv_cache_dtype": "fp8"}"#));
        assert!(errs[0].contains("at cases[0].engine: unknown field `kv_cache_dtype`; vLLM's `kv_cache_dtype` is `kv_cache_dtype` in a symbiote case at the case level"), "{errs:?}");
    }

    #[test]
    fn quantization_wins_over_dtype_for_the_weights() {
        let (mut settings, mut problems) = (Vec::new(), Vec::new());
        let object =
            serde_json::json!({"dtype": "bfloat16", "quantization": "awq_marlin", "enable_prefix_caching": false});
        from_object(object.as_object().unwrap(), &mut settings, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let targets: Vec<(&str, &Value)> = settings.iter().map(|s| (s.flag.target, &s.value)).collect();
        assert_eq!(targets[1], ("quant", &Value::from("int4")));
        assert_eq!(targets[2], ("engine.enable_prefix_caching", &Value::from(false)));
    }
}
