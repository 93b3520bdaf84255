//! The search, in three stages, each a deterministic function of its inputs so that the
//! answer is the same at any thread count:
//!
//! 1. **Screen** every candidate on one replica and a thinned sample of the traffic: the
//!    largest per-replica rate (the knee) at which the sample still meets the SLO, by
//!    geometric bisection. Candidates of one GPU, quantization and TP run in sequence, each
//!    starting from its neighbour's knee; candidates that differ only by router share one
//!    screen (a single replica has nothing to route). The estimate of the replicas a
//!    candidate needs is `ceil(target rate / knee)`.
//! 2. **Verify** on the full traffic at the target rate, GPU type by GPU type, most promising
//!    first ([`verify_gpu`]): the smallest replica count that meets the SLO, by search around
//!    the estimate (assuming, as bisection must, that more replicas never break an SLO that
//!    fewer met). A GPU type stops when no candidate left could beat its best verified fleet
//!    even optimistically, or after `verify_per_gpu` candidates.
//! 3. **Headroom** of the winner: how much faster the traffic can come before the SLO breaks
//!    on the same fleet.
//!
//! Every simulation watches the SLO and stops as soon as it can no longer be met
//! (`report::attainment`), so failing configurations cost a fraction of a full run.

use rayon::prelude::*;
use serde_json::{Map, Value};

use super::slo::Slo;
use super::space::Candidate;
use super::traffic::{faster, Census};
use crate::report::metrics::Capture;
use crate::report::summary::summarize;
use crate::scenario::Case;
use crate::sim::run::{run_case, RunResult};
use crate::workload::WorkloadSpec;

/// The traffic and objective every simulation of a plan shares.
#[derive(Clone, Debug)]
pub struct Traffic {
    pub full: WorkloadSpec,
    pub full_census: Census,
    pub sample: WorkloadSpec,
    pub sample_census: Census,
    /// Target arrival rate of the whole fleet, requests/s.
    pub target_rate: f64,
    pub slo: Slo,
    pub seed: u64,
}

/// Search settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub max_replicas: u32,
    /// Relative precision of a knee (0.04 = within 4%).
    pub precision: f64,
    pub verify_per_gpu: usize,
}

/// Simulations run and requests simulated, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub simulations: u64,
    pub requests: u64,
}

impl Work {
    pub fn add(&mut self, other: Work) {
        self.simulations += other.simulations;
        self.requests += other.requests;
    }
}

/// One candidate's screen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Screen {
    /// Largest per-replica rate (requests/s) at which the sample met the SLO; `None` when even
    /// the lowest rate tried failed.
    pub knee: Option<f64>,
    /// The knee is only a lower bound: the sample still met the SLO at the highest rate tried.
    pub beyond_cap: bool,
    /// The lowest rate tried, when `knee` is `None`.
    pub floor: f64,
    /// Requests in the replica at once, on average, in the passing run at the knee (Little's
    /// law: the requests' summed end-to-end latency over the run's duration): the load one
    /// replica carries while still meeting the SLO, the default autoscaling target.
    pub knee_concurrency: Option<f64>,
    pub work: Work,
}

/// What the passing run of a verified fleet showed.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetRun {
    pub replicas: u32,
    /// The run's summary (report keys such as `p99_ttft_ms`).
    pub summary: Map<String, Value>,
    /// Violations per SLO target, in the order of the SLO's targets, and how many each allowed.
    pub violations: Vec<u64>,
    pub allowed: Vec<u64>,
    pub output_tokens: u64,
    /// From time 0 to the last completion, seconds.
    pub duration_s: f64,
}

/// One candidate's verification.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The passing run at the smallest replica count, `None` when up to `max_replicas` failed.
    pub run: Option<FleetRun>,
    pub work: Work,
}

/// Runs `candidate` with `replicas` on `workload`, watching `slo` for `census`.
fn simulate(
    candidate: &Candidate,
    replicas: u32,
    workload: &WorkloadSpec,
    census: &Census,
    traffic: &Traffic,
) -> Result<RunResult, String> {
    let what = format!("{} with {replicas} replica(s)", candidate.label());
    run_watched(candidate.sized(replicas), &what, workload, census, traffic)
}

/// Runs `case` on `workload`, watching the SLO for `census` and stopping once it cannot be met;
/// `what` names the fleet in the error a broken invariant (a bug) gives.
pub fn run_watched(
    mut case: Case,
    what: &str,
    workload: &WorkloadSpec,
    census: &Census,
    traffic: &Traffic,
) -> Result<RunResult, String> {
    case.workload = workload.clone();
    case.slo_watch = Some(traffic.slo.watch(census, true));
    let result = run_case(&case, traffic.seed, Capture::default());
    if !result.violations.is_empty() {
        return Err(format!(
            "internal error (a bug in symbiote) while planning {what}: {}",
            result.violations.join("; ")
        ));
    }
    Ok(result)
}

/// Screens a run of candidates that share GPU, quantization and TP, in order; candidates
/// equal but for the router reuse the previous screen.
pub fn screen_group(group: &[&Candidate], traffic: &Traffic, settings: &Settings) -> Result<Vec<Screen>, String> {
    let mut out: Vec<Screen> = Vec::with_capacity(group.len());
    let mut guess: Option<f64> = None;
    for (i, candidate) in group.iter().enumerate() {
        let same_but_router = i > 0 && {
            let (a, b) = (&group[i - 1].case, &candidate.case);
            // A P:D unit holds several replicas, so its router matters even in the screen.
            let unified = a.disagg.is_none() && b.disagg.is_none();
            unified && a.engine == b.engine && a.gpu.name == b.gpu.name && a.quant == b.quant && a.tp == b.tp
        };
        if same_but_router {
            let previous = out[i - 1];
            out.push(Screen { work: Work::default(), ..previous });
            continue;
        }
        let screen = screen(candidate, traffic, settings, guess)?;
        guess = screen.knee.or(guess);
        out.push(screen);
    }
    Ok(out)
}

/// The knee of one candidate, starting from `guess` (a neighbour's knee) or the target rate.
fn screen(candidate: &Candidate, traffic: &Traffic, settings: &Settings, guess: Option<f64>) -> Result<Screen, String> {
    let mut work = Work::default();
    let sample = &traffic.sample_census;
    // (rate, mean concurrency) of every passing run, to read the knee's concurrency from.
    let mut passed: Vec<(f64, f64)> = Vec::new();
    let mut pass = |rate: f64| -> Result<bool, String> {
        let workload = faster(&traffic.sample, rate / sample.rate);
        let result = simulate(candidate, 1, &workload, sample, traffic)?;
        work.add(Work { simulations: 1, requests: result.metrics.arrivals });
        let met = traffic.slo.met(&result);
        if met {
            passed.push((rate, mean_concurrency(&result.metrics)));
        }
        Ok(met)
    };
    // Beyond 64 times the target, one replica is plenty; below the share of `max_replicas`
    // (halved), no fleet the plan may build would do.
    let cap = traffic.target_rate * 64.0;
    let floor = traffic.target_rate / settings.max_replicas as f64 / 2.0;
    let start = guess.unwrap_or(traffic.target_rate).clamp(floor, cap);
    let mut step: f64 = if guess.is_some() { 1.25 } else { 2.0 };
    let (mut lo, mut hi);
    if pass(start)? {
        lo = start;
        loop {
            if lo >= cap {
                let knee_concurrency = concurrency_at(&passed, lo);
                return Ok(Screen { knee: Some(lo), beyond_cap: true, floor, knee_concurrency, work });
            }
            let next = (lo * step).min(cap);
            if !pass(next)? {
                hi = next;
                break;
            }
            lo = next;
            step *= step;
        }
    } else {
        hi = start;
        loop {
            if hi <= floor {
                return Ok(Screen { knee: None, beyond_cap: false, floor, knee_concurrency: None, work });
            }
            let next = (hi / step).max(floor);
            if pass(next)? {
                lo = next;
                break;
            }
            hi = next;
            step *= step;
        }
    }
    while hi / lo > 1.0 + settings.precision {
        let mid = (lo * hi).sqrt();
        if pass(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let knee_concurrency = concurrency_at(&passed, lo);
    Ok(Screen { knee: Some(lo), beyond_cap: false, floor, knee_concurrency, work })
}

/// The mean concurrency recorded for the passing run at `rate` (the knee is always one).
fn concurrency_at(passed: &[(f64, f64)], rate: f64) -> Option<f64> {
    passed.iter().find(|p| p.0 == rate).map(|p| p.1)
}

/// Requests in the system at once, averaged over the run: the completed requests' summed
/// end-to-end latency over the time to the last completion (Little's law).
pub fn mean_concurrency(m: &crate::report::metrics::Metrics) -> f64 {
    let end_ns = m.last_finish.0 as f64;
    if end_ns <= 0.0 {
        return 0.0;
    }
    let summed_ns = match m.e2el_ns.exact() {
        Some(samples) => samples.iter().sum::<f64>(),
        None => m.e2el_ns.summary_ms(&[]).map_or(0.0, |s| s.mean * 1e6 * m.e2el_ns.len() as f64),
    };
    summed_ns / end_ns
}

/// Replicas the screen says the target rate needs, if any number up to `max_replicas` does.
pub fn estimated_replicas(screen: &Screen, target_rate: f64, max_replicas: u32) -> Option<u32> {
    let knee = screen.knee?;
    let needed = (target_rate / knee).ceil().max(1.0);
    (needed <= max_replicas as f64).then_some(needed as u32)
}

/// A fleet of `replicas` on the full traffic at `speed` times the target rate.
fn fleet_run(
    candidate: &Candidate,
    replicas: u32,
    speed: f64,
    traffic: &Traffic,
    work: &mut Work,
) -> Result<Option<FleetRun>, String> {
    let workload = faster(&traffic.full, speed * traffic.target_rate / traffic.full_census.rate);
    let result = simulate(candidate, replicas, &workload, &traffic.full_census, traffic)?;
    work.add(Work { simulations: 1, requests: result.metrics.arrivals });
    if !traffic.slo.met(&result) {
        return Ok(None);
    }
    let m = &result.metrics;
    Ok(Some(FleetRun {
        replicas,
        summary: summarize(m, candidate.gpus_per_replica()),
        violations: m.watch.as_ref().map(|w| w.violations.clone()).unwrap_or_default(),
        allowed: m.watch.as_ref().map(|w| w.spec.targets.iter().map(|t| t.allowed).collect()).unwrap_or_default(),
        output_tokens: m.total_output_tokens,
        duration_s: result.end_time.as_secs_f64(),
    }))
}

/// The smallest replica count that meets the SLO on the full traffic, searched from `estimate`.
pub fn verify(
    candidate: &Candidate,
    estimate: u32,
    traffic: &Traffic,
    settings: &Settings,
) -> Result<Verified, String> {
    let mut work = Work::default();
    let max = settings.max_replicas;
    let run = |r: u32, work: &mut Work| fleet_run(candidate, r, 1.0, traffic, work);
    // (largest failing count, smallest passing count and its run)
    let (mut fail, mut best) = (0u32, None::<FleetRun>);
    let estimate = estimate.clamp(1, max);
    match run(estimate, &mut work)? {
        Some(passing) => {
            best = Some(passing);
            let mut step = 1;
            loop {
                let pass_at = best.as_ref().map_or(max, |b| b.replicas);
                if pass_at == 1 {
                    break;
                }
                let next = pass_at.saturating_sub(step).max(1);
                match run(next, &mut work)? {
                    Some(passing) => best = Some(passing),
                    None => {
                        fail = next;
                        break;
                    }
                }
                step *= 2;
            }
        }
        None => {
            fail = estimate;
            let mut step = 1;
            while best.is_none() {
                if fail >= max {
                    return Ok(Verified { run: None, work });
                }
                let next = (fail + step).min(max);
                match run(next, &mut work)? {
                    Some(passing) => best = Some(passing),
                    None => fail = next,
                }
                step *= 2;
            }
        }
    }
    // Bisect between the largest failing and the smallest passing count.
    while let Some(pass_at) = best.as_ref().map(|b| b.replicas).filter(|&p| p > fail + 1) {
        let mid = fail + (pass_at - fail) / 2;
        match run(mid, &mut work)? {
            Some(passing) => best = Some(passing),
            None => fail = mid,
        }
    }
    Ok(Verified { run: best, work })
}

/// How many times the target rate `candidate` with `replicas` still meets the SLO at (at
/// least 1, at most 16, within `precision`).
pub fn headroom(
    candidate: &Candidate,
    replicas: u32,
    traffic: &Traffic,
    settings: &Settings,
) -> Result<(f64, bool, Work), String> {
    let mut work = Work::default();
    let cap = 16.0;
    let (mut lo, mut hi, mut step) = (1.0f64, None::<f64>, 1.25f64);
    while hi.is_none() {
        if lo >= cap {
            return Ok((lo, true, work));
        }
        let next = (lo * step).min(cap);
        if fleet_run(candidate, replicas, next, traffic, &mut work)?.is_some() {
            lo = next;
            step *= step;
        } else {
            hi = Some(next);
        }
    }
    let mut hi = hi.expect("set above");
    while hi / lo > 1.0 + settings.precision {
        let mid = (lo * hi).sqrt();
        if fleet_run(candidate, replicas, mid, traffic, &mut work)?.is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((lo, false, work))
}

/// Screens every candidate, groups in parallel; the result is in candidate order.
pub fn screen_all(candidates: &[Candidate], traffic: &Traffic, settings: &Settings) -> Result<Vec<Screen>, String> {
    let mut groups: Vec<Vec<&Candidate>> = Vec::new();
    for c in candidates {
        let joins = groups.last().and_then(|g| g.last()).is_some_and(|last: &&Candidate| {
            last.case.gpu.name == c.case.gpu.name && last.case.quant == c.case.quant && last.case.tp == c.case.tp
        });
        if joins {
            groups.last_mut().expect("checked").push(c);
        } else {
            groups.push(vec![c]);
        }
    }
    let screened: Vec<Result<Vec<Screen>, String>> =
        groups.par_iter().map(|g| screen_group(g, traffic, settings)).collect();
    let mut out = Vec::with_capacity(candidates.len());
    for group in screened {
        out.extend(group?);
    }
    Ok(out)
}

/// Before any candidate of a GPU type is verified, the fleet is assumed to need as few as half
/// the replicas the screen estimates: one replica on a thinned sample cannot show how a fleet
/// behind a load-aware router pools bursts (on the Azure code trace, L40S fleets verified at
/// 13 replicas where the screen said 21).
pub const PRIOR_FLEET_RATIO: f64 = 0.5;

/// Verifies the candidates of one GPU type (`order`: index, screen estimate, spare capacity),
/// most promising first, until none left could beat the best verified fleet or
/// `verify_per_gpu` were verified; returns (index, verification) pairs.
///
/// Promise is the optimistic cost: the estimate scaled by the smallest verified/estimated
/// replica ratio seen on this GPU type (before any, [`PRIOR_FLEET_RATIO`]), then the estimate
/// itself, then spare capacity (knee x replicas), then the place in the space.
pub fn verify_gpu(
    candidates: &[Candidate],
    order: &[(usize, u32, f64)],
    traffic: &Traffic,
    settings: &Settings,
) -> Result<Vec<(usize, Verified)>, String> {
    let mut out = Vec::new();
    let mut remaining: Vec<(usize, u32, f64)> = order.to_vec();
    let mut best_cost = f64::INFINITY;
    let mut ratio: Option<f64> = None;
    while out.len() < settings.verify_per_gpu && !remaining.is_empty() {
        let scale = ratio.unwrap_or(PRIOR_FLEET_RATIO);
        let optimistic = |&(i, estimate, _): &(usize, u32, f64)| {
            cost_per_hour(&candidates[i], ((estimate as f64 * scale).ceil() as u32).max(1))
        };
        let key = |e: &(usize, u32, f64)| (optimistic(e), cost_per_hour(&candidates[e.0], e.1), -e.2, e.0);
        let next = (0..remaining.len())
            .min_by(|&a, &b| {
                let (ka, kb) = (key(&remaining[a]), key(&remaining[b]));
                ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(ka.2.total_cmp(&kb.2)).then(ka.3.cmp(&kb.3))
            })
            .expect("not empty");
        let entry = remaining.remove(next);
        if optimistic(&entry) >= best_cost {
            break;
        }
        let (index, estimate, _) = entry;
        let candidate = &candidates[index];
        let verified = verify(candidate, estimate, traffic, settings)?;
        if let Some(run) = &verified.run {
            best_cost = best_cost.min(cost_per_hour(candidate, run.replicas));
            let seen = run.replicas as f64 / estimate as f64;
            ratio = Some(ratio.map_or(seen, |r| r.min(seen)));
        }
        out.push((index, verified));
    }
    Ok(out)
}

/// US dollars per hour of `replicas` replicas of `candidate`.
pub fn cost_per_hour(candidate: &Candidate, replicas: u32) -> f64 {
    replicas as f64 * candidate.gpus_per_replica() as f64 * candidate.usd_per_gpu_hour
}
