//! The workload as the loop sees it: a lazy source of [`RequestSpec`]s, open-loop (an arrival
//! process) or closed-loop (N users who each wait for their answer, think, and ask again).

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

use super::arrivals::{ArrivalProcess, ArrivalSpec};
use super::lengths::LengthDist;
use super::prefixes::output_segment_id;
use super::prefixes::{Content, ContentRngs, ContentSpec, PrefixGroups};
use super::shared_prefix::SharedPrefixSpec;
use super::trace::{RecurringIds, TraceReader, TraceRow, TraceSpec};
use super::{RequestSpec, Segment};
use crate::sim::bounds::{MAX_GROUPS, MAX_SECONDS, MAX_TOKENS};
use crate::sim::rng::mix2;
use crate::sim::{Nanos, SimTime, Stream, Streams};
use std::collections::VecDeque;
use std::path::Path;

/// Closed-loop clients: `users` concurrent users, each sending its next request when the last
/// one ends, after an optional think time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoopSpec {
    pub users: u32,
    /// Mean think time between a response and the next request, in seconds.
    #[serde(default)]
    pub think_time_s: f64,
    /// Draw think times from an exponential distribution instead of using the mean as is.
    #[serde(default)]
    pub think_time_exponential: bool,
    /// Start the users evenly over this many seconds instead of all at t=0, as load
    /// generators ramp up (user i starts at i x ramp_up_s / users).
    #[serde(default)]
    pub ramp_up_s: f64,
}

/// The workload section of a scenario, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Open-loop arrivals (give this or `clients`).
    #[serde(default)]
    pub arrival: Option<ArrivalSpec>,
    /// Closed-loop users (give this or `arrival`).
    #[serde(default)]
    pub clients: Option<ClosedLoopSpec>,
    /// Stop generating after this many requests.
    #[serde(default)]
    pub num_requests: Option<u64>,
    /// Stop generating arrivals after this many seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Prompt length distribution (after any shared prefix). Default: fixed 512.
    #[serde(default)]
    pub prompt: Option<LengthDist>,
    /// Output length distribution. Default: fixed 128.
    #[serde(default)]
    pub output: Option<LengthDist>,
    /// Shared prefixes in front of independent prompts.
    #[serde(default)]
    pub prefix: Option<PrefixGroups>,
    /// inference-perf `shared_prefix` data instead of independent prompts.
    #[serde(default)]
    pub shared_prefix: Option<SharedPrefixSpec>,
    /// Replay a trace file: its rows give arrivals, lengths and (Mooncake) prefix identity.
    #[serde(default)]
    pub trace: Option<TraceSpec>,
}

impl WorkloadSpec {
    pub fn content(&self) -> ContentSpec {
        ContentSpec {
            prompt: self.prompt.clone(),
            output: self.output.clone(),
            prefix: self.prefix.clone(),
            shared_prefix: self.shared_prefix.clone(),
        }
    }

    /// Problems as `(path relative to the workload, message)`.
    pub fn problems(&self, offline: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(trace) = &self.trace {
            if self.arrival.is_some()
                || self.clients.is_some()
                || self.prompt.is_some()
                || self.output.is_some()
                || self.prefix.is_some()
                || self.shared_prefix.is_some()
            {
                out.push((
                    "trace".into(),
                    "a trace sets arrivals and lengths itself; remove `arrival`, `clients`, `prompt`, `output`, `prefix` and `shared_prefix`".into(),
                ));
            }
            if offline {
                out.push(("trace".into(), "replaying a trace is an online workload; remove `batch` or `trace`".into()));
            }
            if trace.stride.is_some_and(|s| s == 0 || s > 1_000_000_000) {
                out.push(("trace.stride".into(), "must be a whole number of rows from 1 to 1e9".into()));
            }
            if trace.speedup.is_some_and(|s| !(1e-6..=1e6).contains(&s)) {
                out.push(("trace.speedup".into(), "must be a factor within 1e-6..1e6".into()));
            }
            for (field, value) in [("start_s", trace.start_s), ("end_s", trace.end_s)] {
                if value.is_some_and(|v| v > MAX_SECONDS) {
                    out.push((format!("trace.{field}"), format!("must be at most {MAX_SECONDS} s")));
                }
            }
            if let (Some(a), Some(b)) = (trace.start_s, trace.end_s) {
                if !(a >= 0.0 && b > a) {
                    out.push(("trace.end_s".into(), format!("need 0 <= start_s < end_s, got {a} .. {b}")));
                }
            }
            return out;
        }
        match (&self.arrival, &self.clients) {
            _ if offline => {
                if self.arrival.is_some() || self.clients.is_some() || self.num_requests.is_some() {
                    out.push((
                        "arrival".into(),
                        "a batch job's rows are all available at t=0 (`batch.rows`); remove `arrival`, `clients` and `num_requests`".into(),
                    ));
                }
                if self.shared_prefix.as_ref().is_some_and(|s| s.enable_multi_turn_chat) {
                    out.push((
                        "shared_prefix.enable_multi_turn_chat".into(),
                        "multi-turn chat needs online arrivals; turn it off for a batch job".into(),
                    ));
                }
            }
            (None, None) => {
                out.push(("arrival".into(), "a workload needs `arrival` (open loop) or `clients` (closed loop)".into()))
            }
            (Some(_), Some(_)) => out.push(("clients".into(), "give `arrival` or `clients`, not both".into())),
            (Some(arrival), None) => {
                out.extend(arrival.problems().into_iter().map(|(p, m)| (format!("arrival.{p}"), m)))
            }
            (None, Some(clients)) => {
                if clients.users == 0 {
                    out.push(("clients.users".into(), "need at least one user".into()));
                }
                if !(clients.think_time_s >= 0.0 && clients.think_time_s.is_finite()) {
                    out.push(("clients.think_time_s".into(), "must be >= 0 seconds".into()));
                }
                if !(clients.ramp_up_s >= 0.0 && clients.ramp_up_s.is_finite()) {
                    out.push(("clients.ramp_up_s".into(), "must be >= 0 seconds".into()));
                }
            }
        }
        let unbounded_rate = self.arrival.as_ref().is_some_and(|a| a.stages.is_empty());
        // (A trace ends with its last row.)
        if self.num_requests.is_none() && self.duration_s.is_none() && (unbounded_rate || self.clients.is_some()) {
            out.push((
                "num_requests".into(),
                "the workload never ends: set `num_requests`, `duration_s` or arrival `stages`".into(),
            ));
        }
        if self.num_requests == Some(0) {
            out.push(("num_requests".into(), "must be at least 1".into()));
        }
        if let Some(d) = self.duration_s {
            if !(d > 0.0 && d.is_finite()) {
                out.push(("duration_s".into(), format!("must be > 0, got {d}")));
            }
        }
        for (name, dist) in [("prompt", &self.prompt), ("output", &self.output)] {
            if let Some(dist) = dist {
                out.extend(dist.problems().into_iter().map(|(f, m)| (format!("{name}.{f}"), m)));
            }
        }
        if let Some(shared) = &self.shared_prefix {
            if self.prompt.is_some() || self.output.is_some() || self.prefix.is_some() {
                out.push((
                    "shared_prefix".into(),
                    "shared_prefix sets prompt and output lengths itself; remove `prompt`, `output` and `prefix`"
                        .into(),
                ));
            }
            if shared.num_groups == 0 || shared.num_prompts_per_group == 0 {
                out.push((
                    "shared_prefix.num_groups".into(),
                    "need at least one group and one prompt per group".into(),
                ));
            }
            if shared.question_len == 0 || shared.output_len == 0 {
                out.push((
                    "shared_prefix.question_len".into(),
                    "question_len and output_len must be at least 1".into(),
                ));
            }
        }
        if let Some(prefix) = &self.prefix {
            if prefix.groups == 0 || prefix.tokens == 0 {
                out.push(("prefix.groups".into(), "need at least one group of at least one token".into()));
            }
            if !(0.0..=1.0).contains(&prefix.fraction) {
                out.push(("prefix.fraction".into(), format!("must be within 0..1, got {}", prefix.fraction)));
            }
        }
        out.extend(self.bound_problems());
        out
    }

    /// Numbers beyond what a run can hold in its integer types, its memory or its clock (the
    /// bounds in [`crate::sim::bounds`]).
    fn bound_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut seconds = |field: &str, value: f64| {
            if value > MAX_SECONDS {
                out.push((field.to_string(), format!("{value} s is above the limit of {MAX_SECONDS} s; lower it")));
            }
        };
        if let Some(d) = self.duration_s {
            seconds("duration_s", d);
        }
        if let Some(c) = &self.clients {
            seconds("clients.think_time_s", c.think_time_s);
            seconds("clients.ramp_up_s", c.ramp_up_s);
        }
        if let Some(c) = self.clients.as_ref().filter(|c| c.users as u64 > MAX_GROUPS) {
            out.push(("clients.users".into(), format!("{} users; at most {MAX_GROUPS}", c.users)));
        }
        let mut tokens = |field: &str, value: u32| {
            if value > MAX_TOKENS {
                out.push((field.to_string(), format!("{value} tokens is above the limit of {MAX_TOKENS}; lower it")));
            }
        };
        if let Some(p) = &self.prefix {
            tokens("prefix.tokens", p.tokens);
        }
        if let Some(s) = &self.shared_prefix {
            tokens("shared_prefix.system_prompt_len", s.system_prompt_len);
            tokens("shared_prefix.question_len", s.question_len);
            tokens("shared_prefix.output_len", s.output_len);
        }
        if let Some(p) = &self.prefix {
            if p.groups as u64 > MAX_GROUPS {
                out.push(("prefix.groups".into(), format!("{} groups; at most {MAX_GROUPS}", p.groups)));
            }
            if !(p.zipf_s >= 0.0 && p.zipf_s <= 100.0) {
                out.push(("prefix.zipf_s".into(), format!("must be within 0..100, got {}", p.zipf_s)));
            }
        }
        if let Some(s) = &self.shared_prefix {
            let prompts = s.num_groups as u64 * s.num_prompts_per_group as u64;
            if prompts > MAX_GROUPS {
                out.push((
                    "shared_prefix.num_groups".into(),
                    format!("num_groups x num_prompts_per_group = {prompts}; at most {MAX_GROUPS}"),
                ));
            }
        }
        out
    }
}

/// A request that is due at `arrival`, before its content is drawn. Content is drawn when the
/// ticket's arrival event fires, so a multi-turn prompt can quote the previous answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub index: u64,
    pub arrival: SimTime,
    pub client: Option<u32>,
}

/// The lazy request source for one run.
#[derive(Debug)]
pub struct Workload {
    arrivals: Option<ArrivalProcess>,
    clients: Option<ClosedLoopSpec>,
    content: Content,
    prompt_rng: ChaCha8Rng,
    output_rng: ChaCha8Rng,
    group_rng: ChaCha8Rng,
    think_rng: ChaCha8Rng,
    issued: u64,
    num_requests: Option<u64>,
    end: Option<SimTime>,
    trace: Option<TraceReader>,
    /// Trace rows read one arrival ahead, waiting for their arrival to fire.
    pending: VecDeque<(u64, TraceRow)>,
    /// Why the trace stopped early, if it did (a file that vanished or a bad row).
    pub trace_error: Option<String>,
    /// The trace's block ids held by more than one row, once looked for
    /// ([`Workload::find_private_blocks`]).
    recurring: Option<std::sync::Arc<RecurringIds>>,
}

impl Workload {
    /// `base_dir` resolves a trace's relative path (the scenario file's folder).
    pub fn new(spec: &WorkloadSpec, streams: &Streams, base_dir: &Path) -> Workload {
        let (trace, trace_error) = match spec.trace.as_ref().map(|t| TraceReader::open(t, base_dir)) {
            None => (None, None),
            Some(Ok(reader)) => (Some(reader), None),
            Some(Err(e)) => (None, Some(e.to_string())),
        };
        Workload {
            trace,
            pending: VecDeque::new(),
            trace_error,
            recurring: None,
            arrivals: spec.arrival.as_ref().map(|a| ArrivalProcess::new(a, streams.get(Stream::Arrivals))),
            clients: spec.clients.clone(),
            content: Content::new(&spec.content(), &mut streams.get(Stream::Dataset)),
            prompt_rng: streams.get(Stream::PromptLength),
            output_rng: streams.get(Stream::OutputLength),
            group_rng: streams.get(Stream::PrefixGroup),
            think_rng: streams.get(Stream::ThinkTime),
            issued: 0,
            num_requests: spec.num_requests,
            end: spec.duration_s.map(SimTime::from_secs_f64),
        }
    }

    /// Reads a Mooncake trace through once to find the block ids only one row holds, so that
    /// its requests say where their own tokens start (`RequestSpec::private_from`); without
    /// this pass every block id counts as shared. Worth it only with prefix caching on.
    pub fn find_private_blocks(&mut self, spec: &WorkloadSpec, base_dir: &Path) {
        if let (Some(reader), Some(trace)) = (&self.trace, &spec.trace) {
            if reader.has_block_ids() {
                self.recurring = RecurringIds::of_trace(trace, base_dir);
            }
        }
    }

    fn ticket(&mut self, arrival: SimTime, client: Option<u32>) -> Option<Ticket> {
        if self.num_requests.is_some_and(|n| self.issued >= n) || self.end.is_some_and(|end| arrival >= end) {
            return None;
        }
        self.issued += 1;
        Some(Ticket { index: self.issued - 1, arrival, client })
    }

    /// The requests known at the start: the first arrival, or one request per client at t=0.
    pub fn initial(&mut self) -> Vec<Ticket> {
        if let Some(clients) = self.clients.clone() {
            let start = |c: u32| SimTime::from_secs_f64(clients.ramp_up_s * c as f64 / clients.users as f64);
            return (0..clients.users).filter_map(|c| self.ticket(start(c), Some(c))).collect();
        }
        self.next_open_loop().into_iter().collect()
    }

    /// The next open-loop arrival; call when the previous one is handled.
    pub fn next_open_loop(&mut self) -> Option<Ticket> {
        if let Some(reader) = &mut self.trace {
            let row = match reader.next_row()? {
                Ok(row) => row,
                Err(e) => {
                    self.trace_error = Some(e.to_string());
                    return None;
                }
            };
            let ticket = self.ticket(SimTime(row.arrival_ns), None)?;
            self.pending.push_back((ticket.index, row));
            return Some(ticket);
        }
        let time = self.arrivals.as_mut()?.next_arrival()?;
        self.ticket(time, None)
    }

    /// Trace rows skipped as unreadable and (BurstGPT) as failed requests.
    pub fn trace_skips(&self) -> (u64, u64) {
        self.trace.as_ref().map_or((0, 0), |t| (t.skipped_bad, t.skipped_failed))
    }

    /// The next request of a closed-loop `client` whose previous request ended at `now`.
    pub fn after_finish(&mut self, client: u32, now: SimTime) -> Option<Ticket> {
        let clients = self.clients.as_ref()?;
        let think_s = if clients.think_time_exponential && clients.think_time_s > 0.0 {
            let unit: f64 = Exp1.sample(&mut self.think_rng);
            unit * clients.think_time_s
        } else {
            clients.think_time_s
        };
        self.ticket(now + Nanos::from_secs_f64(think_s), Some(client))
    }

    /// Draws the content of a due ticket, sent at `now`. `None` when the request belongs to a
    /// multi-turn session that is busy: it is parked and comes back from [`Workload::on_done`].
    pub fn realize(&mut self, ticket: Ticket, now: SimTime) -> Option<RequestSpec> {
        if self.pending.front().is_some_and(|(index, _)| *index == ticket.index) {
            let (index, row) = self.pending.pop_front().expect("checked");
            return Some(trace_request(index, row, now, self.recurring.as_deref()));
        }
        let session = match &mut self.content {
            Content::SharedPrefix(data) => data.session_of(ticket.index),
            Content::Independent { .. } => None,
        };
        if let (Some(session), Content::SharedPrefix(data)) = (session, &mut self.content) {
            if !data.try_acquire(session, ticket.index) {
                return None;
            }
        }
        let drawn = self.content.draw(
            ticket.index,
            ContentRngs { prompt: &mut self.prompt_rng, output: &mut self.output_rng, group: &mut self.group_rng },
        );
        Some(RequestSpec {
            index: ticket.index,
            arrival: now,
            prompt_tokens: drawn.prompt_tokens,
            output_tokens: drawn.output_tokens,
            segments: drawn.segments,
            output_segment: drawn.output_segment,
            client: ticket.client,
            session,
            private_from: drawn.private_from,
        })
    }

    /// A request of a multi-turn `session` ended at `now` (`output_tokens` generated, or a
    /// failure); returns the session's next request if one was waiting.
    pub fn on_done(&mut self, session: u32, success: bool, output: Segment, now: SimTime) -> Option<RequestSpec> {
        let Content::SharedPrefix(data) = &mut self.content else { return None };
        let next = data.release(session, success, output)?;
        self.realize(Ticket { index: next, arrival: now, client: None }, now)
    }
}

/// A trace row as a request. Mooncake `hash_ids` become one segment per 512-token block, so
/// requests that share leading ids share those tokens in the KV cache whatever its block size.
/// `recurring`, when known, tells the ids that no other row holds.
fn trace_request(index: u64, row: TraceRow, now: SimTime, recurring: Option<&RecurringIds>) -> RequestSpec {
    // A row without block ids is its own prompt; an id may recur in any later row unless the
    // pass over the trace showed that it does not. The output is the request's own in any
    // case (a trace has no sessions to quote it).
    let private_from = match recurring {
        _ if row.hash_ids.is_empty() => 0,
        Some(recurring) => recurring.private_from(&row.hash_ids).unwrap_or(row.prompt_tokens),
        None => row.prompt_tokens,
    };
    let segments = if row.hash_ids.is_empty() {
        vec![Segment { id: mix2(TAG_TRACE_UNIQUE, index), len: row.prompt_tokens }]
    } else {
        let blocks = row.hash_ids.len() as u32;
        row.hash_ids
            .iter()
            .enumerate()
            .map(|(k, &id)| Segment {
                id: mix2(TAG_TRACE_BLOCK, id),
                len: if k as u32 + 1 == blocks { row.prompt_tokens - 512 * (blocks - 1) } else { 512 },
            })
            .collect()
    };
    RequestSpec {
        index,
        arrival: now,
        prompt_tokens: row.prompt_tokens,
        output_tokens: row.output_tokens,
        segments,
        output_segment: output_segment_id(index),
        client: None,
        session: None,
        private_from,
    }
}

const TAG_TRACE_UNIQUE: u64 = 11;
const TAG_TRACE_BLOCK: u64 = 12;

#[cfg(test)]
mod tests {
    use super::*;

    fn open(rate: f64, n: u64) -> WorkloadSpec {
        WorkloadSpec {
            arrival: Some(ArrivalSpec { rate: Some(rate), ..serde_json::from_str("{}").unwrap() }),
            clients: None,
            num_requests: Some(n),
            duration_s: None,
            prompt: Some(LengthDist::Fixed { value: 100 }),
            output: Some(LengthDist::Fixed { value: 10 }),
            prefix: None,
            shared_prefix: None,
            trace: None,
        }
    }

    #[test]
    fn open_loop_stops_at_num_requests() {
        let mut w = Workload::new(&open(10.0, 5), &Streams::new(1), Path::new("."));
        let mut count = w.initial().len();
        while w.next_open_loop().is_some() {
            count += 1;
        }
        assert_eq!(count, 5);
    }

    #[test]
    fn closed_loop_starts_one_request_per_user_and_follows_each_finish() {
        let mut spec = open(1.0, 10);
        spec.arrival = None;
        spec.clients =
            Some(ClosedLoopSpec { users: 3, think_time_s: 0.5, think_time_exponential: false, ramp_up_s: 0.0 });
        let mut w = Workload::new(&spec, &Streams::new(1), Path::new("."));
        let first = w.initial();
        assert_eq!(first.iter().map(|r| r.client).collect::<Vec<_>>(), vec![Some(0), Some(1), Some(2)]);
        let next = w.after_finish(1, SimTime(2_000_000_000)).unwrap();
        assert_eq!(next.arrival, SimTime(2_500_000_000));
        assert_eq!(next.client, Some(1));
        assert!(w.next_open_loop().is_none());
        let spec = w.realize(next, next.arrival).unwrap();
        assert_eq!((spec.prompt_tokens, spec.output_tokens, spec.index), (100, 10, 3));
    }

    #[test]
    fn problems_name_the_field() {
        let mut spec = open(1.0, 10);
        spec.num_requests = None;
        let problems = spec.problems(false);
        assert_eq!(problems[0].0, "num_requests");
    }
}
