//! The `symbiote` command line: parse, call the library, print, exit with a meaningful code
//! (0 ok, 1 an expectation failed, 2 bad input).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use symbiote::cli::{self, MemoryArgs, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK};
use symbiote::hardware::{KvDtype, Quant};
use symbiote::report::markdown;
use symbiote::report::metrics::Capture;
use symbiote::sim::Nanos;

#[derive(Parser)]
#[command(name = "symbiote", version, about = "Deterministic simulator of LLM inference serving (vLLM V1)")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files (or directories of them) and write reports under --out.
    Run {
        paths: Vec<PathBuf>,
        #[arg(long, default_value = "outputs")]
        out: PathBuf,
        /// Run only this seed instead of the file's seeds.
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Write timeline/<case>__seed<N>.csv: engine state sampled every --timeline-interval-ms.
        #[arg(long)]
        timeline: bool,
        #[arg(long, default_value_t = 1000)]
        timeline_interval_ms: u64,
        /// Write requests/<case>__seed<N>.csv: one row per finished request.
        #[arg(long)]
        requests: bool,
        /// Multiply request counts, durations and dataset sizes by this factor (quick runs).
        #[arg(long)]
        scale: Option<f64>,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the JSON Schema of scenario files (for editors).
    Schema,
    /// Check scenario files without running them.
    Validate { paths: Vec<PathBuf> },
    /// Print the start-up memory split of a model on a GPU, as vLLM computes it.
    Memory {
        #[arg(long)]
        model: String,
        #[arg(long)]
        gpu: String,
        #[arg(long, value_enum, default_value = "fp16")]
        quant: QuantArg,
        #[arg(long, default_value = "auto")]
        kv_cache_dtype: String,
        #[arg(long, default_value_t = 1)]
        tp: u64,
        #[arg(long)]
        max_model_len: Option<u64>,
        #[arg(long, default_value_t = 0.9)]
        gpu_memory_utilization: f64,
        #[arg(long)]
        max_num_batched_tokens: Option<u64>,
        #[arg(long)]
        max_num_seqs: Option<u64>,
        /// With --output-len: the largest batch of such rows on the static engine and on vLLM.
        #[arg(long)]
        prompt_len: Option<u64>,
        #[arg(long)]
        output_len: Option<u64>,
    },
    /// List the catalog: `models` or `gpus`.
    List { what: String },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum QuantArg {
    Fp32,
    Fp16,
    Bf16,
    Fp8,
    Int8,
    Int4,
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

fn run(args: Args) -> Result<u8> {
    match args.command {
        Command::Run { paths, out, seed, jobs, timeline, timeline_interval_ms, requests, scale, quiet } => {
            let capture = Capture {
                requests,
                timeline: timeline.then_some(Nanos::from_millis(timeline_interval_ms.max(1))),
                queue: None,
            };
            let progress = !quiet && std::io::stdout().is_terminal();
            if let Some(jobs) = jobs {
                rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build_global()?;
            }
            let files = cli::scenario_files(&paths)?;
            let mut scenarios = match cli::load_all(&files) {
                Ok(s) => s,
                Err(problems) => {
                    problems.iter().for_each(|p| eprintln!("error: {p}"));
                    return Ok(EXIT_BAD_INPUT);
                }
            };
            if let Some(scale) = scale {
                if !(scale > 0.0 && scale.is_finite()) {
                    anyhow::bail!("--scale must be a positive number, got {scale}");
                }
            }
            let mut all_pass = true;
            let mut reports = Vec::new();
            for scenario in &mut scenarios {
                if let Some(seed) = seed {
                    scenario.seeds = vec![seed];
                }
                if let Some(scale) = scale {
                    scenario.scale(scale);
                }
                let report = cli::run_and_write(scenario, &out, capture, progress)?;
                all_pass &= report.all_expectations_pass();
                if !quiet {
                    println!("{}\n{}", scenario.name, markdown::table(&report));
                    if let Some(findings) = &report.findings {
                        println!("{}\n", findings.headline);
                    }
                    println!("wrote {}\n", out.join(&scenario.name).display());
                }
                reports.push(report);
            }
            if reports.len() > 1 {
                cli::write_index(&out, &reports)?;
            }
            Ok(if all_pass { EXIT_OK } else { EXIT_FAILED })
        }
        Command::Validate { paths } => {
            let files = cli::scenario_files(&paths)?;
            match cli::load_all(&files) {
                Ok(scenarios) => {
                    for s in scenarios {
                        println!("{}: {} cases x {} seeds", s.name, s.cases.len(), s.seeds.len());
                    }
                    Ok(EXIT_OK)
                }
                Err(problems) => {
                    problems.iter().for_each(|p| eprintln!("error: {p}"));
                    Ok(EXIT_BAD_INPUT)
                }
            }
        }
        Command::Memory {
            model,
            gpu,
            quant,
            kv_cache_dtype,
            tp,
            max_model_len,
            gpu_memory_utilization,
            max_num_batched_tokens,
            max_num_seqs,
            prompt_len,
            output_len,
        } => {
            let quant = match quant {
                QuantArg::Fp32 => Quant::Fp32,
                QuantArg::Fp16 => Quant::Fp16,
                QuantArg::Bf16 => Quant::Bf16,
                QuantArg::Fp8 => Quant::Fp8,
                QuantArg::Int8 => Quant::Int8,
                QuantArg::Int4 => Quant::Int4,
            };
            let kv_cache_dtype = match kv_cache_dtype.as_str() {
                "auto" => KvDtype::Auto,
                "fp8" => KvDtype::Fp8,
                other => anyhow::bail!("unknown --kv-cache-dtype `{other}`; use auto or fp8"),
            };
            let args = MemoryArgs {
                model,
                gpu,
                quant,
                kv_cache_dtype,
                tp,
                max_model_len,
                gpu_memory_utilization,
                max_num_batched_tokens,
                max_num_seqs,
                prompt_len,
                output_len,
            };
            let (text, fits) = cli::memory_report(&args)?;
            print!("{text}");
            Ok(if fits { EXIT_OK } else { EXIT_FAILED })
        }
        Command::Schema => {
            print!("{}", symbiote::scenario::file::json_schema());
            Ok(EXIT_OK)
        }
        Command::List { what } => {
            print!("{}", cli::list(&what)?);
            Ok(EXIT_OK)
        }
    }
}
