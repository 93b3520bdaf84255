//! `symbiote plan`: the cheapest deployment that meets an SLO for a workload, with its cost.
//!
//! An analysis above the runner: it builds cases from a base case and a search space
//! (`space`), counts the traffic once (`traffic`), and runs many short simulations through
//! `sim::run` (`search`): screening every candidate on a sample, verifying the promising ones
//! on the full traffic, measuring the winners' headroom; with `--autoscale`, running
//! autoscaled fleets of the verified configurations beside them (`autoscale`). `output` turns
//! the result into report.json, report.md and the winner's scenario file.

pub mod autoscale;
pub mod autoscale_output;
pub mod offline;
pub mod output;
pub mod search;
pub mod slo;
pub mod space;
pub mod traffic;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use serde_json::Value;

use search::{Screen, Settings, Traffic, Verified, Work};
use slo::Slo;
use space::{Candidate, Config, Space};
use traffic::Census;

/// How fast the traffic should come, relative to the workload as given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateTarget {
    /// The workload's own rate.
    Native,
    /// `--speedup X`: X times the workload's rate.
    Speedup(f64),
    /// `--rate R`: R requests/s on average.
    Rate(f64),
}

/// Everything a plan needs.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// The base case, as a scenario's `base` object (model, workload, engine settings...).
    pub base: Value,
    /// Where relative trace paths start.
    pub base_dir: PathBuf,
    /// What the traffic is, in words (the trace's file name or the scenario's name).
    pub workload_label: String,
    pub space: Space,
    pub slo: Slo,
    pub rate: RateTarget,
    /// Price per GPU-hour and its basis, by catalog GPU name.
    pub prices: BTreeMap<String, (f64, String)>,
    pub seed: u64,
    /// Requests in the screening sample.
    pub screen_requests: u64,
    pub settings: Settings,
    /// Autoscaled fleets to try beside the fixed ones (`--autoscale`); `None`: fixed only.
    pub autoscale: Option<autoscale::AutoscaleSpace>,
}

/// One point of the space and what the search learned about it.
#[derive(Clone, Debug)]
pub struct Row {
    pub config: Config,
    /// Why it was not simulated, if it was not.
    pub pruned: Option<String>,
    /// Index into [`Plan::candidates`] when it was not pruned.
    pub candidate: Option<usize>,
}

/// The outcome of a plan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub rows: Vec<Row>,
    pub candidates: Vec<Candidate>,
    /// Per candidate.
    pub screens: Vec<Screen>,
    /// Per candidate: replicas the screen estimates, if within `max_replicas`.
    pub estimates: Vec<Option<u32>>,
    /// Per candidate, when verified.
    pub verified: Vec<Option<Verified>>,
    /// Per GPU type: the candidate with the cheapest verified fleet.
    pub best_per_gpu: BTreeMap<String, usize>,
    /// The cheapest verified candidate overall (ties on cost: the higher headroom, then the
    /// earlier point of the space).
    pub winner: Option<usize>,
    /// The winner's headroom: the factor by which the rate can grow before the SLO breaks on
    /// its fleet, and whether that is only a lower bound (the search's cap).
    pub headroom: BTreeMap<usize, (f64, bool)>,
    pub full_census: Census,
    pub sample_census: Census,
    pub target_rate: f64,
    pub work: StageWork,
    /// Autoscaled fleets (`--autoscale`), in candidate then range order; `None` when not asked.
    pub autoscaled: Option<Vec<autoscale::AutoscaledRun>>,
    /// The answer, when it is an autoscaled fleet (index into `autoscaled`): the cheapest by
    /// mean cost per hour over the run, strictly cheaper than `winner` (or fixed fleets were not
    /// offered). `winner` is then the cheapest fixed fleet beside it.
    pub autoscaled_winner: Option<usize>,
}

/// Simulations and simulated requests per stage of the search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageWork {
    pub screen: Work,
    pub verify: Work,
    pub headroom: Work,
    pub autoscale: Work,
}

impl StageWork {
    pub fn total(&self) -> Work {
        let mut total = self.screen;
        total.add(self.verify);
        total.add(self.headroom);
        total.add(self.autoscale);
        total
    }
}

impl Plan {
    /// Cost per hour of candidate `i`'s verified fleet.
    pub fn verified_cost(&self, i: usize) -> Option<f64> {
        let run = self.verified[i].as_ref()?.run.as_ref()?;
        Some(search::cost_per_hour(&self.candidates[i], run.replicas))
    }

    /// Estimated cost per hour of candidate `i` from its screen.
    pub fn estimated_cost(&self, i: usize) -> Option<f64> {
        Some(search::cost_per_hour(&self.candidates[i], self.estimates[i]?))
    }
}

/// The group a candidate is verified in: its GPU type, and its P:D split if it has one. A
/// split's screen (one unit of P+D replicas) misjudges a fleet by another factor than a
/// unified replica's, so each split gets its own verification budget and its own
/// verified/estimated ratio; a plan without splits groups by GPU type alone, as before.
fn verify_group(c: &Candidate) -> String {
    match &c.config.pd {
        None => c.case.gpu.name.clone(),
        Some(pd) => format!("{} P:D {}:{}", c.case.gpu.name, pd.prefill, pd.decode),
    }
}

/// Every point of the space: its row, and the candidates that can run.
pub fn resolve_all(input: &PlanInput) -> Result<(Vec<Row>, Vec<Candidate>), String> {
    let configs = space::enumerate(&input.space);
    if configs.is_empty() {
        return Err("the search space is empty: every axis needs at least one value".into());
    }
    let resolved: Vec<Result<Candidate, String>> =
        configs.par_iter().map(|c| space::resolve(&input.base, &input.base_dir, c, &input.prices)).collect();
    let mut rows = Vec::with_capacity(configs.len());
    let mut candidates = Vec::new();
    for (config, r) in configs.into_iter().zip(resolved) {
        match r {
            Ok(candidate) => {
                rows.push(Row { config, pruned: None, candidate: Some(candidates.len()) });
                candidates.push(candidate);
            }
            Err(why) => rows.push(Row { config, pruned: Some(why), candidate: None }),
        }
    }
    if candidates.is_empty() {
        let why = rows.first().and_then(|r| r.pruned.clone()).unwrap_or_default();
        return Err(format!("no configuration of the space can run; the first was pruned because it is {why}"));
    }
    Ok((rows, candidates))
}

/// Plans an offline batch job (the base case has `batch`).
pub fn plan_job(
    input: &PlanInput,
    job: &offline::Job,
) -> Result<(Vec<Row>, Vec<Candidate>, offline::OfflinePlan), String> {
    let (rows, candidates) = resolve_all(input)?;
    let planned = offline::plan_offline(&candidates, job, &input.settings)?;
    Ok((rows, candidates, planned))
}

/// Runs the whole search.
pub fn plan(input: &PlanInput) -> Result<Plan, String> {
    let (rows, candidates) = resolve_all(input)?;
    let (workload, base_dir) = (candidates[0].case.workload.clone(), candidates[0].case.base_dir.clone());
    let full_census = traffic::census(&workload, input.seed, &base_dir).map_err(|e| format!("the workload: {e}"))?;
    let target_rate = match input.rate {
        RateTarget::Native => full_census.rate,
        RateTarget::Speedup(x) => full_census.rate * x,
        RateTarget::Rate(r) => r,
    };
    let sample = traffic::sample(&workload, &full_census, input.screen_requests);
    let sample_census =
        traffic::census(&sample, input.seed, &base_dir).map_err(|e| format!("the workload sample: {e}"))?;
    let traffic = Traffic {
        full: workload,
        full_census,
        sample,
        sample_census,
        target_rate,
        slo: input.slo.clone(),
        seed: input.seed,
    };
    let settings = input.settings;
    let mut work = StageWork::default();

    let screens = search::screen_all(&candidates, &traffic, &settings)?;
    screens.iter().for_each(|s| work.screen.add(s.work));
    let estimates: Vec<Option<u32>> =
        screens.iter().map(|s| search::estimated_replicas(s, target_rate, settings.max_replicas)).collect();

    // Each GPU type's candidates with their estimates and spare capacity (knee x replicas).
    let mut by_gpu: BTreeMap<String, Vec<(usize, u32, f64)>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if let Some(estimate) = estimates[i] {
            let spare = screens[i].knee.unwrap_or(0.0) * estimate as f64;
            by_gpu.entry(verify_group(c)).or_default().push((i, estimate, spare));
        }
    }
    let orders: Vec<&Vec<(usize, u32, f64)>> = by_gpu.values().collect();
    let checked: Vec<Result<Vec<(usize, Verified)>, String>> =
        orders.par_iter().map(|order| search::verify_gpu(&candidates, order, &traffic, &settings)).collect();
    let mut verified: Vec<Option<Verified>> = vec![None; candidates.len()];
    for list in checked {
        for (i, v) in list? {
            work.verify.add(v.work);
            verified[i] = Some(v);
        }
    }
    let mut plan = Plan {
        rows,
        candidates,
        screens,
        estimates,
        verified,
        best_per_gpu: BTreeMap::new(),
        winner: None,
        headroom: BTreeMap::new(),
        full_census,
        sample_census: traffic.sample_census,
        target_rate,
        work: StageWork::default(),
        autoscaled: None,
        autoscaled_winner: None,
    };
    for (gpu, order) in &by_gpu {
        let best = order
            .iter()
            .filter_map(|&(i, _, _)| plan.verified_cost(i).map(|cost| (i, cost)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        if let Some((i, _)) = best {
            plan.best_per_gpu.insert(gpu.clone(), i);
        }
    }
    // The winner: the cheapest verified fleet, ties on cost to the earlier point of the space.
    plan.winner = plan.best_per_gpu.values().copied().min_by(|&a, &b| {
        let (ca, cb) = (plan.verified_cost(a).unwrap_or(f64::INFINITY), plan.verified_cost(b).unwrap_or(f64::INFINITY));
        ca.total_cmp(&cb).then(a.cmp(&b))
    });
    if let Some(space) = &input.autoscale {
        let runs = autoscale::run_all(
            &input.base,
            &input.base_dir,
            space,
            &plan.candidates,
            &plan.screens,
            &plan.verified,
            &traffic,
        )?;
        runs.iter().for_each(|r| work.autoscale.add(r.work));
        let fixed_cost = if space.fixed { plan.winner.and_then(|w| plan.verified_cost(w)) } else { None };
        plan.autoscaled_winner = autoscale::cheapest(&runs, &plan.candidates, fixed_cost);
        plan.autoscaled = Some(runs);
    }
    // The fixed winner's headroom, when it is the answer.
    let fixed_answer = plan.autoscaled_winner.is_none() && input.autoscale.as_ref().is_none_or(|a| a.fixed);
    if let Some(w) = plan.winner.filter(|_| fixed_answer) {
        let replicas = plan.verified[w].as_ref().and_then(|v| v.run.as_ref()).map_or(1, |r| r.replicas);
        let (factor, capped, spent) = search::headroom(&plan.candidates[w], replicas, &traffic, &settings)?;
        work.headroom.add(spent);
        plan.headroom.insert(w, (factor, capped));
    }
    plan.work = work;
    Ok(plan)
}
