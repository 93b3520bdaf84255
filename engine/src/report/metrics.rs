//! Collectors filled while a run goes: per-request latencies (kept whole for numpy-style
//! percentiles up to a limit, then in a histogram: `report::samples`), inter-token gaps (one
//! (gap, count) pair per step, the same way: `report::token_gaps`), and per-step engine
//! statistics. They only accumulate; `summary` turns them into
//! numbers.

use std::collections::BTreeMap;

use crate::report::attainment::SloWatch;
use crate::report::concurrency::PeakConcurrency;
use crate::report::samples::Samples;
use crate::report::token_gaps::TokenGaps;
use crate::scenario::GoodputSlo;
use crate::serving::request::Request;
use crate::serving::scaled_fleet::FleetCounts;
use crate::sim::{Nanos, SimTime};

/// What a run keeps beyond the summary metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    /// Keep every finished request (`requests.csv`).
    pub requests: bool,
    /// Sample the engine state at this interval (`timeline.csv`).
    pub timeline: Option<Nanos>,
    /// Sample the fleet-wide waiting and running counts at this interval (queue analyses).
    pub queue: Option<Nanos>,
    /// Keep every request's token gaps and every refused request (`--vllm-bench-json`):
    /// 8 bytes per output token, so only when asked for.
    pub request_detail: bool,
    /// Per-request latency samples kept whole per metric before they fold into a histogram
    /// (`report::samples`); `None` keeps them all (the default: tests, `fidelity`, `plan`).
    pub exact_samples: Option<u64>,
}

/// Fleet-wide queue state at one sampling time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSample {
    pub time: SimTime,
    pub waiting: u32,
    pub running: u32,
}

/// The engine state at one sampling point: the first step that starts at or after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimelineRow {
    pub time: SimTime,
    pub replica: u32,
    pub waiting: u32,
    pub running: u32,
    pub scheduled_tokens: u32,
    pub kv_usage: f64,
    pub preemptions: u64,
    pub completed: u64,
    /// An autoscaled fleet's replicas up, starting and draining at this time.
    pub fleet: Option<FleetCounts>,
    /// A scale event at this time on `replica`: `start` (a scale-up decision: the cold start
    /// begins), `up` (it serves), `cancel` (stopped while starting), `drain` (a scale-down
    /// decision: no new requests), `leave` (drained: its GPUs are released).
    pub event: Option<&'static str>,
}

/// What an autoscaled run did to its fleet (`serving::scaled_fleet`), for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScalingRecord {
    pub scale_ups: u64,
    pub scale_downs: u64,
    pub replicas_started: u64,
    pub replicas_stopped: u64,
    pub peak_replicas: u32,
    /// Every period a replica held its GPUs: from its scale-up decision (cold start included:
    /// the GPUs are allocated then) to its leaving, or to the end of the run.
    pub held: Vec<(SimTime, SimTime)>,
}

/// One replica's share of the work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplicaStats {
    pub completed: u64,
    pub steps: u64,
    pub busy_ns: u64,
    pub kv_peak: f64,
    /// Running requests summed over steps, and KV use weighted by step time (pool metrics of
    /// disaggregated serving).
    pub running_sum: u64,
    pub kv_usage_weighted: f64,
    /// When it finished starting up (batch jobs with a start-up time).
    pub ready_at: SimTime,
}

/// One completed batch of a batch job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    pub replica: u32,
    pub dispatched: SimTime,
    pub completed: SimTime,
    pub rows: u32,
}

/// What is kept of a finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub seq_no: u64,
    pub arrival: SimTime,
    pub first_scheduled: SimTime,
    pub first_token: SimTime,
    pub finish: SimTime,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub cached_prompt_tokens: u32,
    pub preemptions: u32,
    pub recomputed_tokens: u64,
    pub replica: u32,
}

/// One request as `vllm bench serve --save-detailed` lists it: completed or refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailedRequest {
    pub seq_no: u64,
    pub arrival: SimTime,
    /// The first token's time; the arrival for a refused request.
    pub first_token: SimTime,
    /// The last token's time; the arrival for a refused request.
    pub finish: SimTime,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Gaps between consecutive tokens, ns (`output_tokens - 1` of them).
    pub itl_ns: Vec<u64>,
    /// Why the request was refused; `None` when it completed.
    pub error: Option<String>,
}

/// Every request of a run, with its token gaps (`Capture::request_detail`).
#[derive(Debug, Default)]
pub struct RequestDetail {
    /// Token gaps of requests not finished yet, by `seq_no`.
    in_flight: BTreeMap<u64, Vec<u64>>,
    /// Completed and refused requests, in the order they ended.
    pub requests: Vec<DetailedRequest>,
}

impl RequestRecord {
    pub fn of(request: &Request, finish: SimTime, replica: u32) -> RequestRecord {
        RequestRecord {
            seq_no: request.seq_no,
            arrival: request.arrival,
            first_scheduled: request.first_scheduled.expect("a finished request was scheduled"),
            first_token: request.first_token.expect("a finished request has a first token"),
            finish,
            prompt_tokens: request.prompt_tokens,
            output_tokens: request.output_tokens,
            cached_prompt_tokens: request.cached_prompt_tokens,
            preemptions: request.num_preemptions,
            recomputed_tokens: request.recomputed_tokens,
            replica,
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    pub ttft_ns: Samples,
    pub e2el_ns: Samples,
    /// Per request with more than one output token: (e2e - ttft) / (output - 1), in ns.
    pub tpot_ns: Samples,
    pub queue_ns: Samples,
    /// Every gap between consecutive tokens, as (gap, count) pairs per step.
    pub itl: TokenGaps,
    /// Completed requests' `[arrival, finish)` intervals, swept as they come.
    pub concurrency: PeakConcurrency,
    pub completed: u64,
    /// Requests within every goodput threshold (`vllm bench serve --goodput`).
    pub good: u64,
    goodput: Option<GoodputSlo>,
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    pub cached_prompt_tokens: u64,
    /// vLLM's prefix-cache counters, in tokens, summed over replicas at the end of the run.
    pub prefix_queries: u64,
    pub prefix_hits: u64,
    /// CPU KV offload counters summed over replicas; `None` when the case has no CPU tier.
    pub offload: Option<crate::serving::cpu_tier::TierStats>,
    pub requests_preempted: u64,
    pub rejected: BTreeMap<String, u64>,
    pub first_rejection: Option<String>,
    pub preemptions: u64,
    pub last_finish: SimTime,
    pub steps: u64,
    pub busy_ns: u64,
    pub scheduled_tokens: u64,
    pub kv_usage_weighted: f64,
    pub kv_usage_peak: f64,
    pub running_sum: u64,
    pub running_max: u64,
    pub waiting_peak: u64,
    /// Kept only when asked for (`requests.csv`).
    pub records: Option<Vec<RequestRecord>>,
    /// Kept only when asked for (`--vllm-bench-json`).
    pub detail: Option<RequestDetail>,
    pub timeline: Vec<TimelineRow>,
    pub replicas: Vec<ReplicaStats>,
    pub queue_samples: Vec<QueueSample>,
    pub queue_interval: Option<Nanos>,
    pub recomputed_tokens: u64,
    /// Trace rows skipped as unreadable, and BurstGPT failed requests left out.
    pub trace_rows_skipped: u64,
    pub trace_failed_skipped: u64,
    pub batches: Vec<BatchRecord>,
    /// Requests that arrived (vLLM bench's `num_prompts`): each one ends completed, rejected
    /// or unfinished.
    pub arrivals: u64,
    /// Requests still queued, running, parked behind their session's previous turn or inside
    /// the front end when the run ended (set at the end of the run).
    pub unfinished: u64,
    /// Completed requests that vLLM stopped at `max_model_len` short of their `max_tokens`
    /// (finish reason "length").
    pub length_capped: u64,
    timeline_interval: Option<Nanos>,
    next_sample: SimTime,
    /// SLO attainment counted as the run goes (`symbiote plan`); `None` in ordinary runs.
    pub watch: Option<SloWatch>,
    /// An autoscaled fleet's current replica counts (copied into timeline rows).
    pub fleet_counts: Option<FleetCounts>,
    /// An autoscaled run's scaling, set at the end of the run.
    pub scaling: Option<ScalingRecord>,
    /// Pools and KV transfers of a disaggregated fleet; `None` for a unified one.
    pub disagg: Option<super::disagg::DisaggMetrics>,
}

impl Metrics {
    pub fn new(capture: Capture, goodput: Option<GoodputSlo>, replicas: usize) -> Metrics {
        let samples = || Samples::new(capture.exact_samples);
        Metrics {
            ttft_ns: samples(),
            e2el_ns: samples(),
            tpot_ns: samples(),
            queue_ns: samples(),
            itl: TokenGaps::new(capture.exact_samples),
            concurrency: PeakConcurrency::default(),
            completed: 0,
            good: 0,
            goodput,
            total_input_tokens: 0,
            total_output_tokens: 0,
            cached_prompt_tokens: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            offload: None,
            requests_preempted: 0,
            rejected: BTreeMap::new(),
            first_rejection: None,
            preemptions: 0,
            last_finish: SimTime::ZERO,
            steps: 0,
            busy_ns: 0,
            scheduled_tokens: 0,
            kv_usage_weighted: 0.0,
            kv_usage_peak: 0.0,
            running_sum: 0,
            running_max: 0,
            waiting_peak: 0,
            records: capture.requests.then(Vec::new),
            detail: capture.request_detail.then(RequestDetail::default),
            timeline: Vec::new(),
            replicas: vec![ReplicaStats::default(); replicas],
            queue_samples: Vec::new(),
            queue_interval: capture.queue,
            recomputed_tokens: 0,
            trace_rows_skipped: 0,
            trace_failed_skipped: 0,
            batches: Vec::new(),
            arrivals: 0,
            unfinished: 0,
            length_capped: 0,
            timeline_interval: capture.timeline,
            next_sample: SimTime::ZERO,
            watch: None,
            fleet_counts: None,
            scaling: None,
            disagg: None,
        }
    }

    /// The service-level thresholds that define goodput, if the scenario set any.
    pub fn goodput_slo(&self) -> Option<GoodputSlo> {
        self.goodput
    }

    /// One gap between consecutive tokens of request `seq_no`.
    pub fn record_itl(&mut self, seq_no: u64, gap: Nanos) {
        self.record_itl_n(gap, 1);
        self.record_itl_detail(seq_no, gap);
    }

    /// Keeps request `seq_no`'s gap for its per-request ITL list (`--vllm-bench-json` only);
    /// the histogram is fed separately, by [`Metrics::record_itl_n`].
    pub fn record_itl_detail(&mut self, seq_no: u64, gap: Nanos) {
        if let Some(detail) = &mut self.detail {
            detail.in_flight.entry(seq_no).or_default().push(gap.0);
        }
    }

    /// Records `count` equal inter-token gaps at once: the requests of a step that also ran in
    /// the step before all see the same gap, so a step records one value with a count.
    pub fn record_itl_n(&mut self, gap: Nanos, count: u64) {
        if count == 0 {
            return;
        }
        self.itl.push(gap.0, count);
        if let Some(watch) = &mut self.watch {
            watch.on_itl(gap, count);
        }
    }

    pub fn record_request(&mut self, r: RequestRecord) {
        let ttft = r.first_token.since(r.arrival).0;
        let e2el = r.finish.since(r.arrival).0;
        self.ttft_ns.push(ttft as f64);
        self.e2el_ns.push(e2el as f64);
        let tpot = if r.output_tokens > 1 { (e2el - ttft) as f64 / (r.output_tokens - 1) as f64 } else { 0.0 };
        if r.output_tokens > 1 {
            self.tpot_ns.push(tpot);
        }
        if let Some(watch) = &mut self.watch {
            watch.on_request(ttft, (r.output_tokens > 1).then_some(tpot), e2el);
        }
        if let Some(slo) = self.goodput {
            let within = |limit: Option<Nanos>, value: f64| limit.is_none_or(|l| value <= l.0 as f64);
            if within(slo.ttft, ttft as f64) && within(slo.tpot, tpot) && within(slo.e2el, e2el as f64) {
                self.good += 1;
            }
        }
        self.queue_ns.push(r.first_scheduled.since(r.arrival).0 as f64);
        self.completed += 1;
        if let Some(stats) = self.replicas.get_mut(r.replica as usize) {
            stats.completed += 1;
        }
        self.total_input_tokens += r.prompt_tokens as u64;
        self.total_output_tokens += r.output_tokens as u64;
        self.cached_prompt_tokens += r.cached_prompt_tokens as u64;
        self.requests_preempted += (r.preemptions > 0) as u64;
        self.recomputed_tokens += r.recomputed_tokens;
        self.last_finish = self.last_finish.max(r.finish);
        self.concurrency.complete(r.arrival.0, r.finish.0);
        if let Some(detail) = &mut self.detail {
            detail.requests.push(DetailedRequest {
                seq_no: r.seq_no,
                arrival: r.arrival,
                first_token: r.first_token,
                finish: r.finish,
                prompt_tokens: r.prompt_tokens,
                output_tokens: r.output_tokens,
                itl_ns: detail.in_flight.remove(&r.seq_no).unwrap_or_default(),
                error: None,
            });
        }
        if let Some(records) = &mut self.records {
            records.push(r);
        }
    }

    pub fn record_rejection(&mut self, reason: &str, message: &str) {
        *self.rejected.entry(reason.to_string()).or_insert(0) += 1;
        if let Some(watch) = &mut self.watch {
            watch.on_failed_request();
        }
        self.first_rejection.get_or_insert_with(|| message.to_string());
    }

    /// A request entered the serving side at `arrival` (the simulated time now): from here it
    /// completes, is refused, or is left unfinished.
    pub fn request_entered(&mut self, arrival: SimTime) {
        self.concurrency.enter(arrival.0);
    }

    /// A request refused at the door: counted by reason, and listed when detail is captured.
    /// `seq_no` `u64::MAX` marks a refusal that never entered (an unreadable trace row).
    pub fn record_refused(&mut self, seq_no: u64, arrival: SimTime, prompt_tokens: u32, reason: &str, message: &str) {
        self.record_rejection(reason, message);
        if seq_no != u64::MAX {
            self.concurrency.abandon(arrival.0);
        }
        if let Some(detail) = &mut self.detail {
            detail.requests.push(DetailedRequest {
                seq_no,
                arrival,
                first_token: arrival,
                finish: arrival,
                prompt_tokens,
                output_tokens: 0,
                itl_ns: Vec::new(),
                error: Some(message.to_string()),
            });
        }
    }

    /// Accounts one step that starts at `now` on `replica`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_step(
        &mut self,
        now: SimTime,
        replica: u32,
        duration: Nanos,
        tokens: u32,
        running: usize,
        waiting: usize,
        kv_usage: f64,
    ) {
        if let Some(interval) = self.timeline_interval {
            if now >= self.next_sample {
                self.timeline.push(TimelineRow {
                    time: now,
                    replica,
                    waiting: waiting as u32,
                    running: running as u32,
                    scheduled_tokens: tokens,
                    kv_usage,
                    preemptions: self.preemptions,
                    completed: self.completed,
                    fleet: self.fleet_counts,
                    event: None,
                });
                let periods = (now.0 - self.next_sample.0) / interval.0.max(1) + 1;
                self.next_sample = SimTime(self.next_sample.0 + periods * interval.0.max(1));
            }
        }
        self.steps += 1;
        self.busy_ns += duration.0;
        if let Some(stats) = self.replicas.get_mut(replica as usize) {
            stats.steps += 1;
            stats.busy_ns += duration.0;
            stats.kv_peak = stats.kv_peak.max(kv_usage);
            stats.running_sum += running as u64;
            stats.kv_usage_weighted += kv_usage * duration.0 as f64;
        }
        self.scheduled_tokens += tokens as u64;
        self.kv_usage_weighted += kv_usage * duration.0 as f64;
        self.kv_usage_peak = self.kv_usage_peak.max(kv_usage);
        self.running_sum += running as u64;
        self.running_max = self.running_max.max(running as u64);
        self.waiting_peak = self.waiting_peak.max(waiting as u64);
    }

    /// Records a scale event as a timeline row (when the timeline is captured) and the fleet's
    /// new counts. `waiting`, `running` and `kv_usage` are the replica's.
    pub fn on_scale_event(
        &mut self,
        now: SimTime,
        replica: u32,
        event: &'static str,
        counts: FleetCounts,
        load: (usize, usize, f64),
    ) {
        self.fleet_counts = Some(counts);
        if self.timeline_interval.is_some() {
            self.timeline.push(TimelineRow {
                time: now,
                replica,
                waiting: load.0 as u32,
                running: load.1 as u32,
                scheduled_tokens: 0,
                kv_usage: load.2,
                preemptions: self.preemptions,
                completed: self.completed,
                fleet: Some(counts),
                event: Some(event),
            });
        }
    }

    /// Requests refused, over every reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// The run's request accounting, `arrivals == completed + rejected + unfinished`, or what
    /// breaks it.
    pub fn check_accounting(&self) -> Result<(), String> {
        let (completed, rejected, unfinished) = (self.completed, self.rejected_total(), self.unfinished);
        if self.arrivals == completed + rejected + unfinished {
            return Ok(());
        }
        Err(format!(
            "requests not conserved: {} arrived but {completed} completed + {rejected} rejected + {unfinished} unfinished = {}",
            self.arrivals,
            completed + rejected + unfinished
        ))
    }

    /// The latencies whose samples went beyond the exact-sample limit, in report order.
    pub fn streamed_percentiles(&self) -> Vec<String> {
        let per_request =
            [("ttft", &self.ttft_ns), ("tpot", &self.tpot_ns), ("e2el", &self.e2el_ns), ("queue", &self.queue_ns)];
        let mut names: Vec<String> =
            per_request.iter().filter(|(_, s)| s.is_streaming()).map(|(name, _)| name.to_string()).collect();
        if self.itl.is_streaming() {
            names.insert(names.iter().position(|n| n == "e2el" || n == "queue").unwrap_or(names.len()), "itl".into());
        }
        names
    }

    pub fn note_waiting(&mut self, waiting: usize) {
        self.waiting_peak = self.waiting_peak.max(waiting as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 14
    /// Every arrival must end completed, rejected or unfinished; a run whose counts do not add
    /// up is named, with the numbers.
    #[test]
    fn issue_14_accounting_adds_arrivals_up_and_names_what_is_missing() {
        let mut m = Metrics::new(Capture::default(), None, 1);
        m.arrivals = 10;
        m.completed = 6;
        m.record_rejection("prompt_too_long", "too long");
        m.unfinished = 3;
        assert_eq!(m.check_accounting(), Ok(()));
        m.unfinished = 2;
        assert_eq!(
            m.check_accounting(),
            Err("requests not conserved: 10 arrived but 6 completed + 1 rejected + 2 unfinished = 9".into())
        );
    }
}
