//! THE LOOP: builds one run's world from a validated case, pops events, advances the clock,
//! dispatches with one `match`, checks invariants and limits. The only place where simulated
//! time advances, and the only module that sees workload, serving and metrics together.

use std::sync::Arc;

use serde::Serialize;

use super::{EventQueue, SimTime, Streams};
use crate::hardware::memory::{self, MemoryBreakdown, StartupFailure};
use crate::hardware::{ConstantStepTime, Roofline, StepTimeModel};
use crate::report::metrics::{Capture, Metrics};
use crate::scenario::{Case, StepTimeChoice};
use crate::serving::kv_cache::KvCache;
use crate::serving::replica::{Finished, Replica};
use crate::serving::scheduler::SchedulerConfig;
use crate::workload::{RequestSpec, Segment, Ticket, Workload};

/// The events of a run. Closed: adding one means adding a `match` arm below.
#[derive(Debug)]
enum Event {
    /// A request is due at the front end; its content is drawn now.
    Arrival(Ticket),
    /// A replica's step finishes: tokens are emitted and the next step is planned.
    StepDone { replica: u32 },
    /// An idle replica looks for work; queued after same-time arrivals so they batch together.
    Wake { replica: u32 },
}

/// Bounds on a run: it ends with an outcome, never a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_sim_time: SimTime,
    pub max_events: u64,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every generated request finished or was rejected.
    Completed,
    /// The replica could not start: the model or its KV cache does not fit.
    Oom,
    /// The simulated-time limit was reached with requests still in flight.
    TimeLimit,
    /// The event limit was reached.
    EventLimit,
    /// No event was left but requests were still queued: nothing could ever run them.
    Stalled,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Oom => "oom",
            Outcome::TimeLimit => "time_limit",
            Outcome::EventLimit => "event_limit",
            Outcome::Stalled => "stalled",
        }
    }
}

/// Everything one (case, seed) run produces.
#[derive(Debug)]
pub struct RunResult {
    pub outcome: Outcome,
    pub startup_failure: Option<StartupFailure>,
    pub memory: MemoryBreakdown,
    pub metrics: Metrics,
    pub events: u64,
    pub end_time: SimTime,
}

struct World {
    queue: EventQueue<Event>,
    workload: Workload,
    replicas: Vec<Replica>,
    wake_pending: Vec<bool>,
    metrics: Metrics,
    finished: Vec<Finished>,
    next_replica: usize,
    now: SimTime,
}

/// Runs one case with one seed to completion or to a limit.
pub fn run_case(case: &Case, seed: u64, capture: Capture) -> RunResult {
    let memory_plan = memory::plan(&case.model, &case.gpu, &case.memory_config());
    let (memory, startup_failure) = match memory_plan {
        Ok(plan) => (plan, None),
        Err(failure) => (failure.breakdown.clone(), Some(*failure)),
    };
    if startup_failure.is_some() {
        let metrics = Metrics::new(capture, case.goodput);
        return RunResult {
            outcome: Outcome::Oom,
            startup_failure,
            memory,
            metrics,
            events: 0,
            end_time: SimTime::ZERO,
        };
    }
    let step_time: Arc<dyn StepTimeModel> = match case.step_time {
        StepTimeChoice::Roofline => Arc::new(Roofline::new(&case.model, &case.gpu, case.quant, case.kv_dtype, case.tp)),
        StepTimeChoice::Constant { per_step, per_token } => Arc::new(ConstantStepTime { per_step, per_token }),
    };
    let scheduler = SchedulerConfig {
        max_num_batched_tokens: case.engine.max_num_batched_tokens,
        max_num_seqs: case.engine.max_num_seqs,
        max_model_len: case.engine.max_model_len,
        enable_chunked_prefill: case.engine.enable_chunked_prefill,
        long_prefill_token_threshold: case.engine.long_prefill_token_threshold,
    };
    let replicas = (0..case.replicas)
        .map(|i| {
            let kv =
                KvCache::new(memory.num_gpu_blocks as u32, case.engine.block_size, case.engine.enable_prefix_caching);
            Replica::new(i, scheduler, kv, step_time.clone())
        })
        .collect::<Vec<_>>();
    let streams = Streams::new(seed);
    let mut world = World {
        queue: EventQueue::new(),
        workload: Workload::new(&case.workload, &streams),
        wake_pending: vec![false; replicas.len()],
        replicas,
        metrics: Metrics::new(capture, case.goodput),
        finished: Vec::new(),
        next_replica: 0,
        now: SimTime::ZERO,
    };
    for ticket in world.workload.initial() {
        world.queue.push(ticket.arrival, Event::Arrival(ticket));
    }
    let (outcome, events) = world.run(&case.limits);
    for replica in &world.replicas {
        world.metrics.prefix_queries += replica.kv.stats.queries;
        world.metrics.prefix_hits += replica.kv.stats.hits;
    }
    let end_time = world.now;
    RunResult { outcome, startup_failure: None, memory, metrics: world.metrics, events, end_time }
}

impl World {
    fn run(&mut self, limits: &Limits) -> (Outcome, u64) {
        let mut events = 0u64;
        while let Some((now, event)) = self.queue.pop() {
            debug_assert!(now >= self.now, "time went backwards: {now:?} < {:?}", self.now);
            self.now = now;
            if now > limits.max_sim_time {
                return (Outcome::TimeLimit, events);
            }
            events += 1;
            match event {
                Event::Arrival(ticket) => self.on_arrival(now, ticket),
                Event::StepDone { replica } => self.on_step_done(now, replica as usize),
                Event::Wake { replica } => self.on_wake(now, replica as usize),
            }
            if events >= limits.max_events {
                return (Outcome::EventLimit, events);
            }
        }
        if self.replicas.iter().any(|r| r.outstanding() > 0) {
            return (Outcome::Stalled, events);
        }
        (Outcome::Completed, events)
    }

    fn on_arrival(&mut self, now: SimTime, ticket: Ticket) {
        if ticket.client.is_none() {
            if let Some(next) = self.workload.next_open_loop() {
                self.queue.push(next.arrival, Event::Arrival(next));
            }
        }
        if let Some(spec) = self.workload.realize(ticket, now) {
            self.admit(now, spec);
        }
    }

    fn admit(&mut self, now: SimTime, spec: RequestSpec) {
        let (client, session) = (spec.client, spec.session);
        let output = Segment { id: spec.output_segment, len: 0 };
        let replica = self.route();
        match self.replicas[replica].admit(spec.index, spec) {
            Ok(()) => {
                self.metrics.note_waiting(self.replicas[replica].scheduler.waiting.len());
                self.wake(now, replica);
            }
            Err(rejection) => {
                self.metrics.record_rejection(rejection.reason, &rejection.message);
                self.request_done(now, client, session, false, output);
            }
        }
    }

    /// Follow-ups of a finished or refused request: a closed-loop client's next request, a
    /// multi-turn session's next turn.
    fn request_done(
        &mut self,
        now: SimTime,
        client: Option<u32>,
        session: Option<u32>,
        success: bool,
        output: Segment,
    ) {
        if let Some(client) = client {
            if let Some(next) = self.workload.after_finish(client, now) {
                self.queue.push(next.arrival, Event::Arrival(next));
            }
        }
        if let Some(session) = session {
            if let Some(next) = self.workload.on_done(session, success, output, now) {
                self.admit(now, next);
            }
        }
    }

    /// Round robin over replicas (the fleet issue adds the other policies).
    fn route(&mut self) -> usize {
        let replica = self.next_replica;
        self.next_replica = (self.next_replica + 1) % self.replicas.len();
        replica
    }

    fn wake(&mut self, now: SimTime, replica: usize) {
        if !self.replicas[replica].is_busy() && !self.wake_pending[replica] {
            self.wake_pending[replica] = true;
            self.queue.push(now, Event::Wake { replica: replica as u32 });
        }
    }

    fn on_wake(&mut self, now: SimTime, replica: usize) {
        self.wake_pending[replica] = false;
        if !self.replicas[replica].is_busy() {
            self.start_step(now, replica);
        }
    }

    fn start_step(&mut self, now: SimTime, replica: usize) {
        if let Some(duration) = self.replicas[replica].start_step(now, &mut self.metrics) {
            self.queue.push(now + duration, Event::StepDone { replica: replica as u32 });
        }
    }

    fn on_step_done(&mut self, now: SimTime, replica: usize) {
        let mut finished = std::mem::take(&mut self.finished);
        finished.clear();
        self.replicas[replica].finish_step(now, &mut self.metrics, &mut finished);
        for f in &finished {
            self.request_done(now, f.client, f.session, true, f.output);
        }
        self.finished = finished;
        self.start_step(now, replica);
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_sim_time: SimTime(u64::MAX), max_events: u64::MAX }
    }
}
