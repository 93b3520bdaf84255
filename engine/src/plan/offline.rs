//! Planning an offline Ray Data batch job: the cheapest (or fastest) deployment that finishes
//! `rows` rows within a deadline.
//!
//! A batch job has no latency target, only throughput: each candidate runs one replica (one
//! Ray Data actor) on a sample of rows with no start-up time, which gives its steady rows per
//! second. With `R` replicas the job takes `startup + ceil(rows / R) / throughput` (Ray Data
//! hands batches to whichever actor is free, so each gets about an equal share) and costs
//! `R x TP x price x makespan`. Cost grows with `R` (every replica pays its start-up), so the
//! cheapest fleet is the smallest that meets the deadline; the fastest is the largest allowed.
//! The winner is then verified by simulating one replica's whole share (or a capped part of it,
//! said in the report) with its start-up.

use rayon::prelude::*;
use serde_json::{json, Value};

use super::search::{Settings, Work};
use super::space::{router_name, Candidate};
use crate::hardware::shape::ParamBreakdown;
use crate::report::metrics::Capture;
use crate::sim::run::{run_case, Outcome};

/// What to optimise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// The cheapest job that meets the deadline.
    Cost,
    /// The shortest job within `max_replicas` (cost breaks ties).
    Makespan,
}

/// The job.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Job {
    pub rows: u64,
    pub deadline_s: f64,
    pub objective: Objective,
    /// Rows in each candidate's throughput sample.
    pub sample_rows: u64,
    /// At most this many rows of the winner's share are simulated to verify it.
    pub verify_rows: u64,
    pub seed: u64,
}

/// One candidate's screen and sizing.
#[derive(Clone, Debug, PartialEq)]
pub struct Sizing {
    /// Rows per second of one replica in steady state; `None` when the sample did not complete.
    pub rows_per_s: Option<f64>,
    /// Why the sample did not complete.
    pub failure: Option<String>,
    /// Start-up of a replica: the job's `startup_s` plus weight loading.
    pub startup_s: f64,
    pub replicas: Option<u32>,
    pub makespan_s: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// The winner's verification: one replica's share simulated with its start-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    pub replicas: u32,
    pub rows_simulated: u64,
    pub share_rows: u64,
    /// The simulated makespan of the share (scaled up from the rows simulated when capped).
    pub makespan_s: f64,
    pub meets_deadline: bool,
}

/// The outcome of an offline plan.
#[derive(Clone, Debug)]
pub struct OfflinePlan {
    pub sizings: Vec<Sizing>,
    pub winner: Option<usize>,
    pub verification: Option<Verification>,
    pub work: Work,
}

fn startup_s(c: &Candidate) -> f64 {
    let batch = c.case.batch.expect("offline candidates have a batch job");
    let load = batch
        .load_bytes_per_s
        .map_or(0.0, |bw| ParamBreakdown::of(&c.case.model).weight_bytes_per_rank(c.case.quant, c.case.tp) / bw);
    batch.startup.as_secs_f64() + load
}

/// Runs `rows` rows on one replica; `with_startup` keeps the job's start-up. Returns the
/// makespan in seconds, or why it did not complete.
fn one_replica(c: &Candidate, rows: u64, with_startup: bool, seed: u64, work: &mut Work) -> Result<f64, String> {
    let mut case = c.case.clone();
    let batch = case.batch.as_mut().expect("offline candidates have a batch job");
    batch.rows = rows;
    batch.concurrency = 1;
    if !with_startup {
        batch.startup = crate::sim::Nanos::ZERO;
        batch.load_bytes_per_s = None;
    }
    case.replicas = 1;
    let result = run_case(&case, seed, Capture::default());
    work.add(Work { simulations: 1, requests: result.metrics.arrivals });
    if !result.violations.is_empty() {
        return Err(format!("internal error (a bug in symbiote): {}", result.violations.join("; ")));
    }
    if result.outcome != Outcome::Completed || result.metrics.rejected_total() > 0 {
        return Err(format!(
            "the sample ended {} with {} of {rows} rows refused",
            result.outcome.name(),
            result.metrics.rejected_total()
        ));
    }
    Ok(result.end_time.as_secs_f64())
}

fn size(c: &Candidate, job: &Job, settings: &Settings) -> (Sizing, Work) {
    let mut work = Work::default();
    let startup_s = startup_s(c);
    let mut sizing =
        Sizing { rows_per_s: None, failure: None, startup_s, replicas: None, makespan_s: None, cost_usd: None };
    let rows = job.sample_rows.min(job.rows);
    match one_replica(c, rows, false, job.seed, &mut work) {
        Err(why) => sizing.failure = Some(why),
        Ok(seconds) if seconds > 0.0 => sizing.rows_per_s = Some(rows as f64 / seconds),
        Ok(_) => sizing.failure = Some("the sample took no time".into()),
    }
    let Some(rate) = sizing.rows_per_s else { return (sizing, work) };
    let makespan = |r: u32| startup_s + job.rows.div_ceil(r as u64) as f64 / rate;
    let replicas = match job.objective {
        Objective::Cost => {
            let budget = job.deadline_s - startup_s;
            let per_replica = (budget * rate).floor();
            (per_replica >= 1.0)
                .then(|| (job.rows as f64 / per_replica).ceil())
                .filter(|&r| r <= settings.max_replicas as f64)
        }
        Objective::Makespan => {
            Some(settings.max_replicas as f64).filter(|_| makespan(settings.max_replicas) <= job.deadline_s)
        }
    };
    if let Some(r) = replicas {
        let r = r.max(1.0) as u32;
        sizing.replicas = Some(r);
        sizing.makespan_s = Some(makespan(r));
        sizing.cost_usd = Some(r as f64 * c.case.tp as f64 * c.usd_per_gpu_hour * makespan(r) / 3600.0);
    }
    (sizing, work)
}

/// Sizes every candidate (in parallel, in order), picks the winner, verifies it.
pub fn plan_offline(candidates: &[Candidate], job: &Job, settings: &Settings) -> Result<OfflinePlan, String> {
    let sized: Vec<(Sizing, Work)> = candidates.par_iter().map(|c| size(c, job, settings)).collect();
    if let Some(why) = sized.iter().find_map(|(s, _)| s.failure.as_ref().filter(|f| f.starts_with("internal error"))) {
        return Err(why.clone());
    }
    let mut work = Work::default();
    sized.iter().for_each(|(_, w)| work.add(*w));
    let sizings: Vec<Sizing> = sized.into_iter().map(|(s, _)| s).collect();
    let key = |i: usize| -> (f64, f64) {
        let s = &sizings[i];
        let (cost, makespan) = (s.cost_usd.unwrap_or(f64::INFINITY), s.makespan_s.unwrap_or(f64::INFINITY));
        match job.objective {
            Objective::Cost => (cost, makespan),
            Objective::Makespan => (makespan, cost),
        }
    };
    let winner = (0..candidates.len())
        .filter(|&i| sizings[i].replicas.is_some())
        .min_by(|&a, &b| key(a).0.total_cmp(&key(b).0).then(key(a).1.total_cmp(&key(b).1)).then(a.cmp(&b)));
    let mut verification = None;
    if let Some(w) = winner {
        let c = &candidates[w];
        let mut replicas = sizings[w].replicas.expect("winners have a fleet");
        // The extrapolation may be a little off: add replicas until the simulated share meets
        // the deadline (a few tries at most), or report that it does not.
        for _ in 0..4 {
            let share = job.rows.div_ceil(replicas as u64);
            let simulated = share.min(job.verify_rows);
            let seconds = one_replica(c, simulated, true, job.seed, &mut work)?;
            let startup = sizings[w].startup_s;
            let makespan = startup + (seconds - startup).max(0.0) * share as f64 / simulated as f64;
            let meets = makespan <= job.deadline_s;
            verification = Some(Verification {
                replicas,
                rows_simulated: simulated,
                share_rows: share,
                makespan_s: makespan,
                meets_deadline: meets,
            });
            if meets || job.objective == Objective::Makespan || replicas >= settings.max_replicas {
                break;
            }
            replicas = (replicas + 1)
                .max((replicas as f64 * makespan / job.deadline_s).ceil() as u32)
                .min(settings.max_replicas);
        }
    }
    Ok(OfflinePlan { sizings, winner, verification, work })
}

/// The row of candidate `i` in report.json.
pub fn row(c: &Candidate, s: &Sizing) -> Value {
    json!({
        "label": c.label().replace(&format!(" {}", router_name(c.config.router)), ""),
        "gpu": c.case.gpu.name, "quant": c.config.quant, "tp": c.case.tp,
        "max_num_seqs": c.case.engine.max_num_seqs, "max_num_batched_tokens": c.case.engine.max_num_batched_tokens,
        "calibrated": c.calibrated(), "usd_per_gpu_hour": c.usd_per_gpu_hour, "price_basis": c.price_basis,
        "rows_per_s_per_replica": s.rows_per_s, "startup_s": s.startup_s, "sample_failure": s.failure,
        "replicas": s.replicas, "gpus": s.replicas.map(|r| r as u64 * c.case.tp),
        "makespan_h": s.makespan_s.map(|m| m / 3600.0), "job_cost_usd": s.cost_usd,
    })
}
