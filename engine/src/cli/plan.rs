//! `symbiote plan`: reads the workload (a trace, or a scenario file's `base` case), the SLO,
//! the search space and the prices from the command line, runs `plan::plan` and writes its
//! report folder. Exit 0 when some configuration meets the SLO, 1 when none does, 2 on bad
//! input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{EXIT_FAILED, EXIT_OK};
use crate::plan::offline::Job;
use crate::plan::search::Settings;
use crate::plan::slo::Slo;
use crate::plan::space::Space;
use crate::plan::{output, PlanInput, RateTarget};
use crate::report::write::write_atomic;
use crate::serving::router::RouterPolicy;

/// Arguments of `symbiote plan`.
#[derive(Clone, Debug, clap::Args)]
pub struct PlanArgs {
    /// A scenario file whose `base` case gives the model, workload and engine settings (its
    /// `cases` and `matrix` are ignored: the search space replaces them).
    pub scenario: Option<PathBuf>,
    /// Plan for this trace instead (Azure, Mooncake, BurstGPT or generic CSV/JSONL); needs --model.
    #[arg(long, conflicts_with = "scenario")]
    pub trace: Option<PathBuf>,
    /// The model, with --trace (catalog name, Hugging Face id, or a config.json path).
    #[arg(long)]
    pub model: Option<String>,
    /// The objective: latency targets at percentiles, e.g. p99_ttft_ms=2000,p99_itl_ms=100
    /// (metrics ttft, tpot, itl, e2el).
    #[arg(long)]
    pub slo: Option<String>,
    /// Also require this percent of requests to meet every target (a goodput floor).
    #[arg(long, value_name = "PCT")]
    pub goodput: Option<f64>,
    /// Plan for this average rate (requests/s) instead of the workload's own.
    #[arg(long, conflicts_with = "speedup")]
    pub rate: Option<f64>,
    /// Plan for the workload's rate times this factor.
    #[arg(long)]
    pub speedup: Option<f64>,
    /// GPU types to consider (default: every catalog GPU with a price).
    #[arg(long, value_delimiter = ',')]
    pub gpus: Vec<String>,
    /// Quantizations (default: the base case's, else fp16).
    #[arg(long, value_delimiter = ',')]
    pub quants: Vec<String>,
    /// Tensor-parallel degrees.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub tp: Vec<u32>,
    /// vLLM --max-num-seqs values (default: vLLM's default for each GPU).
    #[arg(long, value_delimiter = ',')]
    pub max_num_seqs: Vec<u32>,
    /// vLLM --max-num-batched-tokens values (default: vLLM's default for each GPU).
    #[arg(long, value_delimiter = ',')]
    pub max_num_batched_tokens: Vec<u32>,
    /// Chunked prefill: on, off, or both (default: vLLM's default).
    #[arg(long, value_delimiter = ',')]
    pub chunked_prefill: Vec<String>,
    /// CPU KV offload tier sizes in GiB, or `off` (vLLM --kv-offloading-size; default: the
    /// scenario's own setting, usually off): `off,8,32` searches offload off and two sizes.
    #[arg(long, value_delimiter = ',')]
    pub kv_offloading_size: Vec<String>,
    /// Router policies for fleets (default: least_outstanding, the closest to Ray Serve's
    /// power-of-two-choices routing on queue length).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub routers: Vec<RouterPolicy>,
    /// Prices per GPU-hour overriding the catalog's: JSON {"h100-80gb": 2.49} or CSV gpu,usd_per_gpu_hour.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// The largest fleet to consider, in replicas.
    #[arg(long, default_value_t = 64)]
    pub max_replicas: u32,
    /// Prefill:decode splits to try, `unified` for an ordinary fleet (e.g. `unified,1:3,1:1,3:1`);
    /// a split's fleet grows in whole units of P+D replicas.
    #[arg(long, value_delimiter = ',', default_value = "unified")]
    pub pd_splits: Vec<String>,
    /// The link that carries KV between the pools of a split (`models/links.json`).
    #[arg(long, default_value = "ib-ndr-400")]
    pub pd_link: String,
    /// Ray Serve autoscaling ranges to try beside fixed fleets, MIN-MAX replicas, and `off` for
    /// fixed fleets (e.g. `off,1-4,2-8`); without `off` only autoscaled fleets are offered.
    /// Each range runs once on the full traffic for every configuration whose fixed fleet was
    /// verified, priced by the GPU-hours it held.
    #[arg(long, value_delimiter = ',')]
    pub autoscale: Vec<String>,
    /// target_ongoing_requests values for the autoscaled fleets, each tried with every range:
    /// numbers, or `knee` for each configuration's concurrency at its knee (default: the
    /// scenario's `fleet.autoscaling_config.target_ongoing_requests`, else `knee`).
    #[arg(long, value_name = "N|knee", value_delimiter = ',')]
    pub autoscale_target: Vec<String>,
    /// Requests in the sample every configuration is screened on.
    #[arg(long, default_value_t = 1000)]
    pub screen_requests: u64,
    /// Relative precision of each configuration's knee.
    #[arg(long, default_value_t = 0.06)]
    pub precision: f64,
    /// At most this many configurations per GPU type are verified on the full traffic.
    #[arg(long, default_value_t = 3)]
    pub verify_per_gpu: usize,
    /// The seed of the workload (synthetic arrivals and lengths).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores); the answer does not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    #[arg(long, default_value = "outputs")]
    pub out: PathBuf,
    /// Batch jobs (a scenario whose `base` has `batch`): the deadline, in hours.
    #[arg(long)]
    pub deadline_h: Option<f64>,
    /// Batch jobs: the rows of the dataset (default: the scenario's `batch.rows`).
    #[arg(long)]
    pub rows: Option<u64>,
    /// Batch jobs: minimise the job's cost within the deadline, or its makespan.
    #[arg(long, value_enum, default_value = "cost")]
    pub objective: crate::plan::offline::Objective,
    /// Batch jobs: at most this many rows of the winner's share are simulated to verify it.
    #[arg(long, default_value_t = 2_000_000)]
    pub verify_rows: u64,
}

fn on_off(values: &[String]) -> Result<Vec<Option<bool>>> {
    if values.is_empty() {
        return Ok(vec![None]);
    }
    values
        .iter()
        .map(|v| match v.trim() {
            "on" | "true" => Ok(Some(true)),
            "off" | "false" => Ok(Some(false)),
            other => bail!("--chunked-prefill takes on and/or off; got `{other}`"),
        })
        .collect()
}

fn offload_sizes(values: &[String]) -> Result<Vec<Option<Option<f64>>>> {
    if values.is_empty() {
        return Ok(vec![None]);
    }
    values
        .iter()
        .map(|v| match v.trim() {
            "off" | "0" => Ok(Some(None)),
            other => match other.parse::<f64>() {
                Ok(gib) if gib.is_finite() && gib > 0.0 => Ok(Some(Some(gib))),
                _ => {
                    bail!("--kv-offloading-size takes `off` and/or sizes in GiB above 0 (like off,8,32); got `{other}`")
                }
            },
        })
        .collect()
}

fn or_default<T: Clone>(values: &[T]) -> Vec<Option<T>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.iter().cloned().map(Some).collect()
    }
}

/// The base case of `--trace` or the scenario file, its folder and a label for the traffic.
pub fn plan_base(args: &PlanArgs) -> Result<(Value, PathBuf, String)> {
    if let Some(trace) = &args.trace {
        let model = args
            .model
            .as_deref()
            .context("--trace needs --model (a catalog name, HF id, or a Hugging Face model folder or config.json)")?;
        let model = super::model_arg(model);
        let dir = trace.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let file = trace.file_name().and_then(|f| f.to_str()).context("the trace path has no file name")?;
        if !trace.is_file() {
            bail!("{}: no such trace file", trace.display());
        }
        return Ok((json!({"model": model, "workload": {"trace": {"path": file}}}), dir, file.to_string()));
    }
    let Some(path) = &args.scenario else {
        bail!("give a scenario file (its `base` case is the starting point) or --trace FILE --model M");
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    scenario_base(args, &text, &path.display().to_string(), dir)
}

/// The base case of a scenario given as text (`label` names it in errors, `dir` is where its
/// relative paths start), its folder and a label for the traffic.
pub fn scenario_base(args: &PlanArgs, text: &str, label: &str, dir: PathBuf) -> Result<(Value, PathBuf, String)> {
    let problems = |text: &str| -> anyhow::Error {
        let problems = crate::scenario::parse_in(text, label, &dir).err().unwrap_or_default();
        anyhow::anyhow!("{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))
    };
    // Validate the whole file first, so that its errors read as they do for `symbiote run`;
    // the GPU may be left to the search space.
    let file: Value = serde_json::from_str(text).map_err(|_| problems(text))?;
    let mut checked = file.clone();
    if checked.pointer("/base/gpu").is_none() && checked.get("base").is_some_and(Value::is_object) {
        checked["base"]["gpu"] = args.gpus.first().map_or("h100-80gb", String::as_str).into();
    }
    if crate::scenario::parse_in(&checked.to_string(), label, &dir).is_err() {
        return Err(problems(&checked.to_string()));
    }
    let mut base = file.get("base").cloned().unwrap_or_else(|| json!({}));
    if let Some(object) = base.as_object_mut() {
        // The space sets these; what the file says of them would only conflict. The fleet's
        // autoscaling policy and cold start stay, for `--autoscale` ([`plan_outputs`] takes
        // them out before the search).
        let fleet = object.remove("fleet");
        for key in ["expect", "name"] {
            object.remove(key);
        }
        let policy: serde_json::Map<String, Value> = fleet
            .iter()
            .filter_map(Value::as_object)
            .flatten()
            .filter(|(k, v)| (k.as_str() == "autoscaling_config" || k.as_str() == "cold_start") && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !policy.is_empty() {
            object.insert("fleet".into(), policy.into());
        }
    }
    if let Some(model) = &args.model {
        base["model"] = super::model_arg(model).into();
    }
    let label = file.get("name").and_then(Value::as_str).unwrap_or("scenario").to_string();
    Ok((base, dir, label))
}

/// Price per GPU-hour and its basis, by catalog GPU name: the catalog's lowest on-demand
/// quote, or the `--prices` file's figure.
fn prices(path: Option<&Path>) -> Result<BTreeMap<String, (f64, String)>> {
    let book = match path {
        Some(path) => crate::hardware::PriceBook::with_file(path)?,
        None => crate::hardware::PriceBook::builtin(),
    };
    Ok(crate::hardware::active_catalog()
        .gpus
        .iter()
        .filter_map(|g| book.price(g).map(|p| (g.name.clone(), (p.usd_per_gpu_hour, p.basis))))
        .collect())
}

/// Rows a batch job has in flight at once: batch_size x max_concurrent_batches (Ray Data
/// LLM's defaults 32 and 8 when unset).
fn batch_window(base: &Value) -> u64 {
    let field = |name: &str, default: u64| base["batch"][name].as_u64().unwrap_or(default);
    field("batch_size", 32) * field("max_concurrent_batches", 8)
}

/// `symbiote plan`.
pub fn cmd_plan(args: &PlanArgs, quiet: bool) -> Result<u8> {
    let outputs = plan_outputs(args, plan_base(args)?)?;
    write_plan(&outputs)?;
    let PlanOutputs { json, markdown: md, dir, .. } = outputs;
    if !quiet {
        let headline = md.lines().find(|l| l.starts_with("**")).unwrap_or("");
        println!("{}", headline.replace("**", ""));
        let s = &json["search"];
        println!(
            "{} configurations: {} pruned; {} simulations of {} requests",
            s["configurations"], s["pruned"], s["simulations"], s["simulated_requests"]
        );
        println!("open {}", dir.join("report.html").display());
    }
    Ok(if json["winner"].is_null() { EXIT_FAILED } else { EXIT_OK })
}

/// What `symbiote plan` computes before writing anything: report.json's value, report.md's
/// text, the winner as a scenario for `symbiote run` (none when nothing meets the objective)
/// and the report folder under `--out`.
#[derive(Clone, Debug)]
pub struct PlanOutputs {
    pub json: Value,
    pub markdown: String,
    pub winner: Option<Value>,
    pub dir: PathBuf,
}

/// Writes a plan's report folder: report.json, report.md, report.html and winner.json.
pub fn write_plan(outputs: &PlanOutputs) -> Result<()> {
    let PlanOutputs { json, markdown: md, winner, dir } = outputs;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let pretty = serde_json::to_string_pretty(json)? + "\n";
    write_atomic(&dir.join("report.json"), pretty.as_bytes())
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    write_atomic(&dir.join("report.html"), output::report_html(json, md).as_bytes())?;
    if let Some(winner) = winner {
        write_atomic(&dir.join("winner.json"), (serde_json::to_string_pretty(winner)? + "\n").as_bytes())?;
    }
    Ok(())
}

/// Runs the search of `symbiote plan` from its arguments and the base case ([`plan_base`],
/// [`scenario_base`]), on a pool of `--jobs` threads.
pub fn plan_outputs(args: &PlanArgs, base: (Value, PathBuf, String)) -> Result<PlanOutputs> {
    let (mut base, base_dir, workload_label) = base;
    let scenario_fleet = base.as_object_mut().and_then(|o| o.remove("fleet"));
    let offline = base.get("batch").is_some_and(|b| !b.is_null());
    let slo = match (&args.slo, offline) {
        (Some(text), false) => Slo::parse(text, args.goodput).map_err(anyhow::Error::msg)?,
        (None, false) => bail!("a plan for online serving needs an SLO: --slo p99_ttft_ms=2000,p99_itl_ms=100"),
        (Some(_), true) => bail!("a batch job has a deadline, not an SLO: drop --slo and give --deadline-h"),
        (None, true) => Slo { targets: Vec::new(), goodput_pct: None },
    };
    if let (Some(rows), true) = (args.rows, offline) {
        if rows == 0 || rows > 1_000_000_000 {
            bail!("--rows must be within 1..1e9");
        }
        base["batch"]["rows"] = rows.into();
    }
    let prices = prices(args.prices.as_deref())?;
    let catalog = crate::hardware::active_catalog();
    let gpus: Vec<String> = if args.gpus.is_empty() {
        catalog.gpus.iter().filter(|g| prices.contains_key(&g.name)).map(|g| g.name.clone()).collect()
    } else {
        args.gpus.iter().map(|g| catalog.gpu(g).map(|g| g.name.clone())).collect::<Result<_, _>>()?
    };
    if gpus.is_empty() {
        bail!("no GPU has a price: give --gpus and --prices FILE");
    }
    let quants = if args.quants.is_empty() {
        vec![base.get("quant").and_then(Value::as_str).unwrap_or("fp16").to_string()]
    } else {
        args.quants.clone()
    };
    if args.tp.is_empty() || args.tp.iter().any(|&t| t == 0 || t > 64) {
        bail!("--tp takes degrees from 1 to 64, like 1,2,4,8");
    }
    let rate = match (args.rate, args.speedup) {
        (Some(r), _) if !(r > 0.0 && r <= 1e7) => bail!("--rate must be within (0, 1e7] requests/s"),
        (_, Some(x)) if !(x > 0.0 && x <= 1e6) => bail!("--speedup must be within (0, 1e6]"),
        (Some(r), _) => RateTarget::Rate(r),
        (None, Some(x)) => RateTarget::Speedup(x),
        (None, None) => RateTarget::Native,
    };
    if !(1..=4096).contains(&args.max_replicas) {
        bail!("--max-replicas must be within 1..4096");
    }
    if !(100..=10_000_000).contains(&args.screen_requests) {
        bail!("--screen-requests must be within 100..1e7");
    }
    if !(args.precision >= 0.001 && args.precision <= 1.0) {
        bail!("--precision must be within 0.001..1");
    }
    let pd_splits = pd_splits(&args.pd_splits, &args.pd_link)?;
    let autoscale = autoscale_space(args, scenario_fleet.as_ref(), offline, &pd_splits)?;
    let input = PlanInput {
        base,
        base_dir,
        workload_label,
        space: Space {
            gpus,
            quants,
            tps: args.tp.clone(),
            max_num_seqs: or_default(&args.max_num_seqs),
            max_num_batched_tokens: or_default(&args.max_num_batched_tokens),
            chunked_prefill: on_off(&args.chunked_prefill)?,
            kv_offloading: offload_sizes(&args.kv_offloading_size)?,
            routers: if args.routers.is_empty() { vec![RouterPolicy::LeastOutstanding] } else { args.routers.clone() },
            pd_splits,
        },
        slo,
        rate,
        prices,
        seed: args.seed,
        screen_requests: args.screen_requests,
        settings: Settings {
            max_replicas: args.max_replicas,
            precision: args.precision,
            verify_per_gpu: args.verify_per_gpu.max(1),
        },
        autoscale,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    let dir = args.out.join(crate::scenario::names::file_name(&format!("plan_{}", input.workload_label)));
    let (json, md, winner) = if offline {
        let deadline_h = args.deadline_h.context("a batch job needs --deadline-h (hours)")?;
        if !(deadline_h > 0.0 && deadline_h <= 1e5) {
            bail!("--deadline-h must be within (0, 1e5] hours");
        }
        let rows = input.base["batch"]["rows"].as_u64().context("the batch job needs `rows`")?;
        let job = Job {
            rows,
            deadline_s: deadline_h * 3600.0,
            objective: args.objective,
            // Enough rows that ramp-up and drain (one batch window each) weigh little.
            sample_rows: args.screen_requests.max(10 * batch_window(&input.base)),
            verify_rows: args.verify_rows.max(1),
            seed: args.seed,
        };
        let (rows, candidates, planned) =
            pool.install(|| crate::plan::plan_job(&input, &job)).map_err(anyhow::Error::msg)?;
        let json = output::offline_json(&rows, &candidates, &planned, &input, &job);
        let md = output::offline_markdown(&json, &candidates, &planned);
        (json, md, output::offline_winner(&input, &candidates, &planned, &job))
    } else {
        let plan = pool.install(|| crate::plan::plan(&input)).map_err(anyhow::Error::msg)?;
        let json = output::report_json(&plan, &input);
        let md = output::report_markdown(&plan, &input, &json);
        (json, md, output::winner_scenario(&plan, &input))
    };
    Ok(PlanOutputs { json, markdown: md, winner, dir })
}

/// `--pd-splits`: `unified` or `P:D` with P and D from 1 to 64.
fn pd_splits(words: &[String], link: &str) -> Result<Vec<Option<crate::plan::space::PdSplit>>> {
    let names = crate::hardware::link::link_names();
    if !names.iter().any(|n| n == link) {
        bail!("--pd-link: unknown link `{link}`; use one of {}", names.join(", "));
    }
    let mut out = Vec::new();
    for word in words {
        if word == "unified" {
            out.push(None);
            continue;
        }
        let parsed = word.split_once(':').and_then(|(p, d)| Some((p.parse::<u32>().ok()?, d.parse::<u32>().ok()?)));
        match parsed {
            Some((p, d)) if (1..=64).contains(&p) && (1..=64).contains(&d) => {
                out.push(Some(crate::plan::space::PdSplit { prefill: p, decode: d, link: link.to_string() }))
            }
            _ => bail!("--pd-splits: `{word}` is neither `unified` nor P:D with P and D from 1 to 64 (e.g. 1:3)"),
        }
    }
    Ok(out)
}

/// `--autoscale` and `--autoscale-target`, with the scenario's own `fleet.autoscaling_config`
/// (its delays, look-back and factors, and its target unless `--autoscale-target` is given) and
/// `fleet.cold_start`; `None` when no range is asked for.
fn autoscale_space(
    args: &PlanArgs,
    scenario_fleet: Option<&Value>,
    offline: bool,
    pd_splits: &[Option<crate::plan::space::PdSplit>],
) -> Result<Option<crate::plan::autoscale::AutoscaleSpace>> {
    let (fixed, ranges) = crate::plan::autoscale::parse_ranges(&args.autoscale).map_err(anyhow::Error::msg)?;
    if ranges.is_empty() {
        if !args.autoscale_target.is_empty() {
            bail!("--autoscale-target needs --autoscale with at least one MIN-MAX range (like --autoscale off,1-4)");
        }
        // No flag, or `--autoscale off`: fixed fleets only.
        return Ok(None);
    }
    if offline {
        bail!("--autoscale applies to online fleets: a batch job's replicas are `batch.concurrency`; drop --autoscale");
    }
    if let Some(pd) = pd_splits.iter().flatten().next() {
        bail!(
            "--autoscale with --pd-splits {}:{}: {}; give --pd-splits unified or drop --autoscale",
            pd.prefill,
            pd.decode,
            crate::scenario::autoscaling::DISAGGREGATED_AUTOSCALING
        );
    }
    let mut policy = scenario_fleet
        .and_then(|f| f.get("autoscaling_config"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let scenario_target = policy.get("target_ongoing_requests").and_then(Value::as_f64);
    // The range comes from --autoscale, and the fleet starts at its minimum (Ray's default).
    for key in ["min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests"] {
        policy.remove(key);
    }
    let knee = "the requests one replica holds at its knee (Little's law on the screen's passing run), as docs/autoscaling.md advises";
    let mut targets: Vec<Option<f64>> = Vec::new();
    for word in &args.autoscale_target {
        let target = match word.trim() {
            "knee" => None,
            text => match text.parse::<f64>() {
                Ok(n) if n > 0.0 && n <= 1e6 => Some(n),
                _ => bail!("--autoscale-target takes `knee` and/or numbers of requests per replica above 0 (up to 1e6), like knee,32; got `{text}`"),
            },
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let target_source = match (targets.is_empty(), scenario_target) {
        (false, _) if targets.contains(&None) => format!("--autoscale-target; knee: {knee}"),
        (false, _) => "--autoscale-target".to_string(),
        (true, Some(t)) => {
            targets.push(Some(t));
            "the scenario's fleet.autoscaling_config".to_string()
        }
        (true, None) => {
            targets.push(None);
            knee.to_string()
        }
    };
    let cold_start = scenario_fleet.and_then(|f| f.get("cold_start")).cloned();
    Ok(Some(crate::plan::autoscale::AutoscaleSpace { ranges, fixed, targets, target_source, policy, cold_start }))
}
