//! The `symbiote` command line: parse, call the library, print, exit with a meaningful code
//! (0 ok, 1 an expectation or check failed, 2 bad input).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args as ClapArgs, Parser, Subcommand};

use symbiote::cli::{self, CheckArgs, MemoryArgs, PlanArgs, ReplayArgs, RunArgs, EXIT_BAD_INPUT, EXIT_OK};

#[derive(Parser)]
#[command(name = "symbiote", version, about = "Deterministic simulator of LLM inference serving (vLLM V1)")]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print nothing but errors and results (no tables, no "open ..." lines, no progress).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also say on stderr what runs: the catalog files read, each case's model, GPU and
    /// step-time model with its error band, and a line per finished run.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Catalog folders whose gpu/*.json and llm/*.json add to or replace built-in entries
    /// (`:`-separated, the first wins); default: the SYMBIOTE_CATALOG variable.
    #[arg(long, global = true, value_name = "DIR[:DIR...]")]
    catalog: Option<std::ffi::OsString>,
}

#[derive(ClapArgs)]
struct RunOpts {
    #[arg(long, default_value = "outputs")]
    out: PathBuf,
    /// Seeds instead of the file's: a range 1..32 or a list 1,2,5.
    #[arg(long)]
    seeds: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Multiply request counts, durations and dataset sizes by this factor (quick runs).
    #[arg(long)]
    scale: Option<f64>,
    /// Write timeline/<case>__seed<N>.csv, sampled every --timeline-interval-ms.
    #[arg(long)]
    timeline: bool,
    #[arg(long, default_value_t = 1000)]
    timeline_interval_ms: u64,
    /// Write requests/<case>__seed<N>.csv: one row per finished request.
    #[arg(long)]
    requests: bool,
    /// Skip runs already written under --out for the same scenario content.
    #[arg(long)]
    resume: bool,
    /// Run only shard K of N of the (case, seed) runs; `symbiote merge` assembles the report.
    #[arg(long)]
    shard: Option<String>,
    /// Also write each (case, seed) run as a `vllm bench serve --save-result --save-detailed`
    /// file: this path for one run, `<stem>__<case>__seed<N>.json` beside it for several.
    #[arg(long, value_name = "OUT.json", conflicts_with = "resume")]
    vllm_bench_json: Option<PathBuf>,
    /// Add pNN_<metric>_ms keys for TTFT, TPOT, ITL and E2EL (vLLM's --metric-percentiles).
    #[arg(long, value_name = "50,90,95,99")]
    percentiles: Option<String>,
    /// Prices per GPU-hour replacing the catalog's lowest on-demand list price: JSON
    /// ({"h100-80gb": 2.49} or [{"gpu": ..., "usd_per_gpu_hour": ..., "source": ...}]) or CSV
    /// (gpu,usd_per_gpu_hour[,source]).
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Latency samples kept whole per metric for exact numpy percentiles (TTFT, TPOT, E2EL,
    /// queueing: one per request; ITL: one (gap, count) pair per step's run of equal gaps);
    /// beyond N, a run folds them into an HdrHistogram (3 significant digits, relative error
    /// <= 0.1%) so memory stays flat, and the report says so.
    #[arg(long, value_name = "N", default_value_t = symbiote::report::samples::DEFAULT_EXACT_SAMPLES)]
    exact_percentiles: u64,
    /// Also write each chart of report.html as png/<chart>.png beside it, for slides (fonts
    /// are built in: nothing to install).
    #[arg(long)]
    png: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files (or directories of them) and write reports under --out.
    #[command(
        arg_required_else_help = true,
        after_help = "Examples:\n  symbiote run scenarios/                  the six phases; reports in outputs/<scenario>/\n  symbiote run scenarios/examples/llama2_7b_a100_poisson.json --seeds 1..8 --vllm-bench-json bench.json"
    )]
    Run {
        /// Scenario files or folders of them (`scenarios/` runs the six phases).
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Replay a trace (Azure CSV, Mooncake JSONL, BurstGPT CSV; .gz accepted) on a fleet.
    Replay {
        #[command(flatten)]
        replay: ReplayArgs,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Rerun a scenario and compare it with a baseline report.json; exit 1 on a regression.
    Check {
        scenario: PathBuf,
        #[arg(long)]
        baseline: PathBuf,
        /// Allowed change in the bad direction, e.g. 5% or 0.05.
        #[arg(long, default_value = "5%")]
        tolerance: String,
        /// Comma-separated metric keys (default: p99 TTFT/TPOT/ITL/E2EL, mean TTFT, throughputs).
        #[arg(long)]
        metrics: Option<String>,
        /// Rewrite the baseline with this run instead of comparing.
        #[arg(long)]
        update: bool,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Assemble the report of a sharded sweep from its shards' output folders.
    Merge {
        scenario: PathBuf,
        dirs: Vec<PathBuf>,
        #[arg(long, default_value = "outputs")]
        out: PathBuf,
        /// The --seeds the shards ran with, if any.
        #[arg(long)]
        seeds: Option<String>,
        /// The --scale the shards ran with, if any.
        #[arg(long)]
        scale: Option<f64>,
        /// The --percentiles the shards ran with, if any.
        #[arg(long)]
        percentiles: Option<String>,
    },
    /// Simulate measured vLLM runs (sim2real files or vllm bench serve runs) and report the error per metric.
    Fidelity {
        measurements: PathBuf,
        #[arg(long, default_value = "outputs")]
        out: PathBuf,
        /// Also cross-validation: leave one model out (sim2real files), leave one GPU out (vllm
        /// bench serve runs: the host profile fitted on the other GPUs).
        #[arg(long)]
        cross_validate: bool,
        /// Evaluation budget of each cross-validation fit; the default is `symbiote calibrate`'s,
        /// so each fold is fitted exactly as the shipped parameters were (60 gives a quick look).
        #[arg(long, default_value_t = symbiote::report::fidelity::DEFAULT_EVALUATIONS)]
        max_evaluations: u32,
        /// Replay the shared-prefix workloads multi-turn (contexts grow turn by turn) instead of
        /// single-turn, which the runs' own prompt lengths show.
        #[arg(long)]
        multi_turn: bool,
        /// The step-time model to price steps with.
        #[arg(long, value_enum, default_value = "auto")]
        step_model: cli::StepModel,
    },
    /// Fit a GPU's step-time parameters to measured runs; --write stores them in the catalog.
    Calibrate {
        /// Measured runs: sim2real files and `vllm bench serve` runs (light and saturated load
        /// are fitted together, weighted by runs).
        #[arg(required = true)]
        measurements: Vec<PathBuf>,
        /// The GPU whose roofline parameters to fit (models/gpu/<gpu>.json).
        #[arg(long, required_unless_present = "host", conflicts_with = "host")]
        gpu: Option<String>,
        /// Fit the shared host profile (models/host.json) instead: every run on a GPU with
        /// kernel tables, priced by them, with the host's step and front-end costs fitted.
        #[arg(long)]
        host: bool,
        #[arg(long, default_value_t = symbiote::report::fidelity::DEFAULT_EVALUATIONS)]
        max_evaluations: u32,
        /// The catalog folder to write into (e.g. models); nothing is written without it.
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Read a trace through and print its totals (rows, tokens, span, ideal prefix hits).
    TraceStats {
        trace: PathBuf,
        /// azure, mooncake, burstgpt (default: from the file name).
        #[arg(long)]
        format: Option<String>,
        /// Print the totals as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check scenario files without running them.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of scenario files (for editors).
    Schema,
    /// Find the cheapest deployment that meets an SLO for a workload (trace or scenario).
    Plan(Box<PlanArgs>),
    /// Print the start-up memory split of a model on a GPU, as vLLM computes it.
    Memory(MemoryArgs),
    /// List the catalog: `models` or `gpus`.
    List {
        what: String,
        /// Print the catalog entries as JSON (every field, sources and prices included).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run_args(o: RunOpts, quiet: bool) -> RunArgs {
    RunArgs {
        out: o.out,
        seeds: o.seeds,
        jobs: o.jobs,
        scale: o.scale,
        timeline_ms: o.timeline.then_some(o.timeline_interval_ms),
        requests: o.requests,
        resume: o.resume,
        shard: o.shard,
        quiet,
        vllm_bench_json: o.vllm_bench_json,
        percentiles: o.percentiles,
        prices: o.prices,
        exact_percentiles: Some(o.exact_percentiles),
        png: o.png,
    }
}

fn run(args: Args) -> Result<u8> {
    let quiet = args.quiet;
    symbiote::verbosity::set(match (args.quiet, args.verbose) {
        (true, _) => symbiote::verbosity::Level::Quiet,
        (false, true) => symbiote::verbosity::Level::Verbose,
        (false, false) => symbiote::verbosity::Level::Normal,
    });
    if let Some(code) = cli::install_catalog(args.catalog.as_deref()) {
        return Ok(code);
    }
    match args.command {
        Command::Run { paths, opts } => cli::cmd_run(&paths, &run_args(opts, quiet)),
        Command::Replay { replay, opts } => cli::cmd_replay(&replay, &run_args(opts, quiet)),
        Command::Check { scenario, baseline, tolerance, metrics, update, json } => {
            cli::cmd_check(&CheckArgs { scenario, baseline, tolerance, metrics, update, json, quiet })
        }
        Command::Merge { scenario, dirs, out, seeds, scale, percentiles } => {
            cli::cmd_merge(&scenario, &dirs, &out, &cli::MergeArgs { seeds, scale, percentiles, quiet })
        }
        Command::Validate { paths } => cli::cmd_validate(&paths, quiet),
        Command::TraceStats { trace, format, json } => cli::cmd_trace_stats(&trace, format.as_deref(), json),
        Command::Fidelity { measurements, out, cross_validate, max_evaluations, multi_turn, step_model } => {
            cli::cmd_fidelity(&measurements, &out, cross_validate, max_evaluations, multi_turn, step_model, quiet)
        }
        Command::Calibrate { measurements, gpu, host, max_evaluations, write } => match (gpu, &measurements[..]) {
            (Some(gpu), files) if !host => cli::cmd_calibrate(files, &gpu, max_evaluations, write.as_deref(), quiet),
            _ => cli::cmd_calibrate_host(&measurements, max_evaluations, write.as_deref(), quiet),
        },
        Command::Schema => {
            print!("{}", symbiote::scenario::file::json_schema());
            Ok(EXIT_OK)
        }
        Command::Plan(args) => cli::cmd_plan(&args, quiet),
        Command::Memory(args) => {
            let (text, fits) = cli::memory_report(&args)?;
            print!("{text}");
            Ok(if fits { EXIT_OK } else { cli::EXIT_FAILED })
        }
        Command::List { what, json } => {
            print!("{}", cli::list(&what, json)?);
            Ok(EXIT_OK)
        }
    }
}
