//! The traffic a plan is for: the workload at the target rate, the thinned sample that
//! screening runs on, and the census of each (requests, inter-token gaps, native rate) that
//! sets the SLO allowances before any simulation.
//!
//! Rates change by compressing time: a trace replays with a larger `speedup`; a synthetic
//! workload has its rates multiplied and its times (stages, multipliers, duration) divided, so
//! the same requests arrive in the same pattern, faster. Lengths never change with the rate.

use std::path::Path;

use crate::sim::{SimTime, Streams};
use crate::workload::{Workload, WorkloadSpec};

/// What a workload holds, counted by generating it once (no simulation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Census {
    pub requests: u64,
    /// Requests with more than one output token (those that have a TPOT).
    pub multi_token: u64,
    /// Inter-token gaps if every request completes: the sum of `output - 1` (an upper bound:
    /// `max_model_len` can only cut outputs short).
    pub gaps: u64,
    pub output_tokens: u64,
    pub input_tokens: u64,
    /// Mean arrival rate, requests/s: (requests - 1) / (last arrival - first arrival).
    pub rate: f64,
    pub span_s: f64,
}

/// Counts `spec`'s requests for `seed`. Errors name what makes the workload unplannable.
pub fn census(spec: &WorkloadSpec, seed: u64, base_dir: &Path) -> Result<Census, String> {
    if spec.clients.is_some() {
        return Err(
            "a closed-loop workload (`clients`) has no arrival rate to plan for; use `arrival` or a `trace`".into()
        );
    }
    if spec.shared_prefix.as_ref().is_some_and(|s| s.enable_multi_turn_chat) {
        return Err("multi-turn sessions (`shared_prefix.enable_multi_turn_chat`) are not supported by `plan` yet: their later turns depend on the serving; turn it off".into());
    }
    if spec.num_requests.is_none() && spec.duration_s.is_none() && spec.trace.is_none() {
        return Err("the workload never ends: give `num_requests` or `duration_s`".into());
    }
    let mut workload = Workload::new(spec, &Streams::new(seed), base_dir);
    let mut c =
        Census { requests: 0, multi_token: 0, gaps: 0, output_tokens: 0, input_tokens: 0, rate: 0.0, span_s: 0.0 };
    let (mut first, mut last) = (None::<SimTime>, SimTime::ZERO);
    let mut next = workload.initial().into_iter().next();
    while let Some(ticket) = next {
        next = workload.next_open_loop();
        first.get_or_insert(ticket.arrival);
        last = ticket.arrival;
        let request =
            workload.realize(ticket, ticket.arrival).ok_or("a multi-turn workload cannot be counted ahead")?;
        c.requests += 1;
        c.multi_token += (request.output_tokens > 1) as u64;
        c.gaps += request.output_tokens.saturating_sub(1) as u64;
        c.output_tokens += request.output_tokens as u64;
        c.input_tokens += request.prompt_tokens as u64;
        if c.requests > 100_000_000 {
            return Err("the workload has more than 100 million requests; plan on a shorter window".into());
        }
    }
    if let Some(error) = workload.trace_error {
        return Err(error);
    }
    c.span_s = last.since(first.unwrap_or(SimTime::ZERO)).as_secs_f64();
    if c.requests < 2 || c.span_s <= 0.0 {
        return Err(format!(
            "the workload has {} request(s) over {} s: a rate needs at least two arrivals at different times",
            c.requests, c.span_s
        ));
    }
    c.rate = (c.requests - 1) as f64 / c.span_s;
    Ok(c)
}

/// `spec` with arrivals `factor` times as dense.
pub fn faster(spec: &WorkloadSpec, factor: f64) -> WorkloadSpec {
    let mut w = spec.clone();
    if let Some(trace) = &mut w.trace {
        trace.speedup = Some(trace.speedup.unwrap_or(1.0) * factor);
    }
    if let Some(arrival) = &mut w.arrival {
        arrival.rate = arrival.rate.map(|r| r * factor);
        for stage in &mut arrival.stages {
            stage.rate *= factor;
            stage.duration_s /= factor;
        }
        for m in &mut arrival.multipliers {
            m.start_s /= factor;
            m.end_s /= factor;
        }
    }
    w.duration_s = w.duration_s.map(|d| d / factor);
    w
}

/// About `target` requests of `spec`, spread over all of it: every `stride`-th row of a trace
/// (the requests one replica of a round-robin fleet would see), or the first `target` requests
/// of a synthetic workload (whose pattern does not change along it unless it has stages).
pub fn sample(spec: &WorkloadSpec, full: &Census, target: u64) -> WorkloadSpec {
    let mut w = spec.clone();
    if full.requests <= target {
        return w;
    }
    match &mut w.trace {
        Some(trace) => trace.stride = Some(trace.stride.unwrap_or(1) * full.requests.div_ceil(target)),
        None => {
            w.num_requests = Some(target);
            w.duration_s = None;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poisson(rate: f64, n: u64) -> WorkloadSpec {
        serde_json::from_value(serde_json::json!({
            "arrival": {"rate": rate}, "num_requests": n,
            "prompt": {"dist": "fixed", "value": 100}, "output": {"dist": "uniform", "min": 1, "max": 9}
        }))
        .unwrap()
    }

    #[test]
    fn census_counts_requests_tokens_and_gaps() {
        let c = census(&poisson(10.0, 2000), 1, Path::new(".")).unwrap();
        assert_eq!(c.requests, 2000);
        assert_eq!(c.input_tokens, 200_000);
        assert_eq!(c.gaps, c.output_tokens - c.requests);
        assert!(c.multi_token < c.requests && c.multi_token > 1500, "about 8 in 9 have more than one token");
        assert!((c.rate - 10.0).abs() < 0.6, "rate {}", c.rate);
    }

    #[test]
    fn faster_compresses_time_and_keeps_lengths() {
        let base = poisson(10.0, 500);
        let (slow, fast) =
            (census(&base, 3, Path::new(".")).unwrap(), census(&faster(&base, 4.0), 3, Path::new(".")).unwrap());
        assert_eq!((slow.requests, slow.output_tokens), (fast.requests, fast.output_tokens));
        assert!((fast.rate / slow.rate - 4.0).abs() < 1e-6, "{} vs {}", fast.rate, slow.rate);
    }

    #[test]
    fn a_synthetic_sample_is_its_first_requests() {
        let base = poisson(10.0, 5000);
        let full = census(&base, 1, Path::new(".")).unwrap();
        let s = sample(&base, &full, 1000);
        assert_eq!(s.num_requests, Some(1000));
        assert_eq!(census(&s, 1, Path::new(".")).unwrap().requests, 1000);
    }

    #[test]
    fn closed_loops_and_endless_workloads_are_refused() {
        let endless: WorkloadSpec = serde_json::from_value(serde_json::json!({"arrival": {"rate": 1}})).unwrap();
        assert!(census(&endless, 1, Path::new(".")).unwrap_err().contains("never ends"));
        let closed: WorkloadSpec =
            serde_json::from_value(serde_json::json!({"clients": {"users": 4}, "num_requests": 10})).unwrap();
        assert!(census(&closed, 1, Path::new(".")).unwrap_err().contains("closed-loop"));
    }
}
