//! THE LOOP: builds one run's world from a validated case, pops events, advances the clock,
//! dispatches with one `match`, checks limits. The only place where simulated time advances,
//! and the only module that sees workload, serving and metrics together.
//!
//! Two fronts feed the replicas: online arrivals go through the router (and the optional
//! admission limit); an offline batch job (Ray Data) hands whole batches to replicas that have
//! room, least-loaded first.

mod disagg;
mod scaling;

use std::sync::Arc;

use serde::Serialize;

use super::{EventQueue, Nanos, SimTime, Stream, Streams};
use crate::hardware::hf_memory::CacheKind;
use crate::hardware::hf_step_time::HfEagerStepTime;
use crate::hardware::memory::{self, MemoryBreakdown, StartupFailure};
use crate::hardware::shape::ParamBreakdown;
use crate::hardware::{ConstantStepTime, KernelStepTime, Roofline, StepTimeModel};
use crate::report::attainment::SloWatch;
use crate::report::metrics::{BatchRecord, Capture, Metrics, ScalingRecord};
use crate::scenario::file::EngineKind;
use crate::scenario::Entrypoint;
use crate::scenario::{BatchConfig, Case, StepTimeChoice};
use crate::serving::admission::FrontDoor;
use crate::serving::autoscaler::Autoscaler;
use crate::serving::cpu_tier::{TierConfig, TierStats};
use crate::serving::fleet_index::{FleetIndex, ReplicaLoad};
use crate::serving::kv_cache::KvCache;
use crate::serving::offload::Offload;
use crate::serving::replica::{Finished, Replica};
use crate::serving::request::Request;
use crate::serving::router::{prompt_block_hashes, ReplicaView, Router};
use crate::serving::scaled_fleet::ScaledFleet;
use crate::serving::scheduler::SchedulerConfig;
use crate::serving::static_engine::StaticEngine;
use crate::serving::Engine;
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
    /// A replica finished starting up (batch jobs with a start-up time).
    Ready { replica: u32 },
    /// The batch job hands out more batches: queued when a batch ended as soon as it was handed
    /// out (every row refused), so a dataset of refused rows advances one event per batch and
    /// stays under the event limit instead of looping inside one event.
    Dispatch,
    /// An online request leaves the API server for the router, after the front-end overhead.
    Enter(Box<RequestSpec>),
    /// Ray Serve's autoscaling control loop runs (every `CONTROL_LOOP_INTERVAL`).
    ScaleTick,
    /// An autoscaled replica's cold start ends; stale when its start was cancelled since.
    ReplicaUp { replica: u32, generation: u32 },
    /// Disaggregated serving: a prefilled request reaches the decode pool (`disagg`).
    Handoff(Box<Request>),
    /// Disaggregated serving: a KV read from prefill replica `prefill`'s parked slot `parked`
    /// into request `id` of decode replica `decode` arrived.
    TransferDone { decode: u32, id: u32, prefill: u32, parked: u32 },
}

/// Bounds on a run: it ends with an outcome, never a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_sim_time: SimTime,
    pub max_events: u64,
    /// Plan every step with the full scheduler, turning off the replicas' fast path for runs of
    /// pure-decode steps (`serving::decode_run`), and register every full KV block in the prefix
    /// cache as it fills, private ones too (`serving::kv_cache`). Results are the same either
    /// way; this is for the tests that show it (and `SYMBIOTE_STEP_BY_STEP=1` on the command
    /// line).
    pub step_by_step: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_sim_time: SimTime(u64::MAX), max_events: u64::MAX, step_by_step: false }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every generated request finished or was rejected.
    Completed,
    /// The model, its KV cache or a static batch does not fit in GPU memory.
    Oom,
    /// The simulated-time limit was reached with requests still in flight.
    TimeLimit,
    /// The event limit was reached.
    EventLimit,
    /// No event was left but requests were still queued: nothing could ever run them.
    Stalled,
    /// The next event fell beyond the clock's horizon (`sim::bounds::HORIZON_S`): the workload
    /// or the step times are too slow for the run to mean anything.
    TimeOverflow,
    /// An SLO target being watched (`symbiote plan`) can no longer be met, so the run stopped.
    SloBroken,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Oom => "oom",
            Outcome::TimeLimit => "time_limit",
            Outcome::EventLimit => "event_limit",
            Outcome::Stalled => "stalled",
            Outcome::TimeOverflow => "time_overflow",
            Outcome::SloBroken => "slo_broken",
        }
    }
}

/// Everything one (case, seed) run produces.
#[derive(Debug)]
pub struct RunResult {
    pub outcome: Outcome,
    /// Why the run hit out-of-memory: vLLM's start-up error or a static batch's OOM.
    pub startup_failure: Option<StartupFailure>,
    pub memory: MemoryBreakdown,
    pub metrics: Metrics,
    pub events: u64,
    pub end_time: SimTime,
    /// Broken invariants found while running or at the end (request and KV block accounting,
    /// time order): each is a bug in symbiote, never an outcome. Empty when all hold.
    pub violations: Vec<String>,
}

/// The offline batch job's progress.
struct Pipeline {
    config: BatchConfig,
    next_row: u64,
    in_progress: Vec<u32>,
    /// Per batch: replica, dispatch time, rows not yet finished.
    batches: Vec<(u32, SimTime, u32)>,
}

struct World {
    queue: EventQueue<Event>,
    workload: Workload,
    engines: Vec<Engine>,
    ready: Vec<bool>,
    wake_pending: Vec<bool>,
    router: Router,
    views: Vec<ReplicaView>,
    /// Each replica's load, kept current so that routing and queue sampling never scan the fleet.
    fleet: FleetIndex,
    /// Replicas still starting up (batch jobs); the router's index serves only a ready fleet.
    not_ready: usize,
    max_waiting: Option<u64>,
    pipeline: Option<Pipeline>,
    block_size: u32,
    metrics: Metrics,
    finished: Vec<Finished>,
    /// Multi-turn requests due now because their session's previous turn ended.
    follow_ups: Vec<RequestSpec>,
    now: SimTime,
    oom: Option<StartupFailure>,
    /// The vLLM memory plan (also the weights figure for the static engine).
    memory: MemoryBreakdown,
    /// API server and client time before an online request reaches the router.
    frontend_overhead: Nanos,
    /// Requests inside the front end (an `Enter` event queued).
    in_frontend: u64,
    /// Multi-turn requests due but parked until their session's previous turn ends.
    parked: u64,
    violations: Vec<String>,
    /// Ray Serve autoscaling, when the fleet has it.
    scaling: Option<Scaling>,
    /// The decode pool and the link of a disaggregated fleet (the prefill pool is `engines[..
    /// offset]` behind `router` and `fleet`); `None` for a unified one.
    decode: Option<disagg::DecodePool>,
}

/// An autoscaled fleet: the policy, the replica slots, and what a new replica is built from.
struct Scaling {
    autoscaler: Autoscaler,
    slots: ScaledFleet,
    case: Box<Case>,
    step_time: Arc<dyn StepTimeModel>,
}

/// Runs one case with one seed to completion or to a limit.
pub fn run_case(case: &Case, seed: u64, capture: Capture) -> RunResult {
    let plan_of = |c: &Case| match memory::plan(&c.model, &c.gpu, &c.memory_config()) {
        Ok(plan) => (plan, None),
        Err(failure) => (failure.breakdown.clone(), Some(*failure)),
    };
    // A disaggregated fleet starts when both pools do; its reported memory plan is the decode
    // pool's (the one whose KV room decides the batch), unless the prefill pool fails.
    let pools = case.disagg.as_ref().map(|d| (case.pool_case(&d.prefill), case.pool_case(&d.decode)));
    let (memory, startup_failure) = match &pools {
        None => plan_of(case),
        Some((prefill, decode)) => {
            let (p, d) = (plan_of(prefill), plan_of(decode));
            if p.1.is_some() {
                p
            } else {
                d
            }
        }
    };
    if case.engine.kind == EngineKind::Vllm && startup_failure.is_some() {
        let metrics = Metrics::new(capture, case.goodput, case.slots() as usize);
        return RunResult {
            outcome: Outcome::Oom,
            startup_failure,
            memory,
            metrics,
            events: 0,
            end_time: SimTime::ZERO,
            violations: Vec::new(),
        };
    }
    let streams = Streams::new(seed);
    let kernels = case.kernel_model();
    let slots = case.slots() as usize;
    let step_time = step_time_model(case, kernels.clone());
    let engines: Vec<Engine> = match &pools {
        None => (0..slots as u32).map(|i| build_engine(case, &memory, &step_time, i)).collect(),
        Some((prefill, decode)) => {
            let (prefill_memory, decode_memory) = (plan_of(prefill).0, plan_of(decode).0);
            let prefill_step = step_time_model(prefill, prefill.kernel_model());
            let decode_step = step_time_model(decode, decode.kernel_model());
            (0..prefill.replicas)
                .map(|i| build_engine(prefill, &prefill_memory, &prefill_step, i))
                .chain(
                    (0..decode.replicas)
                        .map(|i| build_engine(decode, &decode_memory, &decode_step, prefill.replicas + i)),
                )
                .collect()
        }
    };
    let first_pool = pools.as_ref().map_or(slots, |(prefill, _)| prefill.replicas as usize);
    let mut workload = Workload::new(&case.workload, &streams, &case.base_dir);
    if case.engine.enable_prefix_caching {
        workload.find_private_blocks(&case.workload, &case.base_dir);
    }
    let mut world = World {
        queue: EventQueue::new(),
        workload,
        engines,
        ready: vec![true; slots],
        wake_pending: vec![false; slots],
        router: Router::new(
            pools.as_ref().map_or(case.router, |(prefill, _)| prefill.router),
            streams.get(Stream::Router),
        ),
        views: Vec::with_capacity(slots),
        fleet: FleetIndex::new(first_pool),
        not_ready: 0,
        max_waiting: case.max_waiting,
        pipeline: case.batch.map(|config| Pipeline {
            config,
            next_row: 0,
            in_progress: vec![0; slots],
            batches: Vec::new(),
        }),
        block_size: case.engine.block_size,
        metrics: {
            let mut metrics = Metrics::new(capture, case.goodput, slots);
            metrics.watch = case.slo_watch.as_ref().map(SloWatch::new);
            metrics.disagg = case.disagg.as_ref().map(disagg::metrics_for);
            metrics
        },
        finished: Vec::new(),
        follow_ups: Vec::new(),
        now: SimTime::ZERO,
        oom: None,
        memory: memory.clone(),
        // The host profile's under the kernel tables, the roofline parameters' otherwise (an
        // uncalibrated GPU's carry the host profile's too); a constant step-time model has none.
        frontend_overhead: match case.step_time {
            StepTimeChoice::Constant { .. } => Nanos::ZERO,
            _ if kernels.is_some() => Nanos::from_secs_f64(case.host.frontend_overhead_us * 1e-6),
            _ => Nanos::from_secs_f64(case.gpu.step_time.frontend_overhead_us * 1e-6),
        },
        in_frontend: 0,
        parked: 0,
        violations: Vec::new(),
        scaling: case.autoscaling.map(|config| Scaling {
            autoscaler: Autoscaler::new(config),
            slots: ScaledFleet::new(slots as u32, config.initial_replicas),
            case: Box::new(case.clone()),
            step_time: step_time.clone(),
        }),
        decode: case.disagg.as_ref().map(|d| disagg::decode_pool(case, d, &streams)),
    };
    world.start(case);
    let (outcome, events) = world.run(&case.limits);
    world.engines.iter_mut().for_each(Engine::settle);
    (world.metrics.trace_rows_skipped, world.metrics.trace_failed_skipped) = world.workload.trace_skips();
    if let Some(error) = world.workload.trace_error.clone() {
        // Listed last among the run's requests: it has no place in the workload's order.
        world.metrics.record_refused(u64::MAX, world.now, 0, "trace_error", &error);
        // The row that could not be read counts as one arrival, refused.
        world.metrics.arrivals += 1;
    }
    for engine in &world.engines {
        let stats = engine.prefix_stats();
        world.metrics.prefix_queries += stats.queries;
        world.metrics.prefix_hits += stats.hits;
        if let Some(tier) = engine.tier_stats() {
            world.metrics.offload.get_or_insert_with(TierStats::default).add(&tier);
        }
    }
    if let (Some(totals), Some(config)) = (&mut world.metrics.offload, offload_tier(case, &memory)) {
        totals.bytes_per_block = config.rank_block_bytes * config.ranks;
        totals.cpu_blocks = config.num_blocks as u64;
    }
    let end_time = world.now;
    if let Some(scaling) = &world.scaling {
        let f = &scaling.slots;
        world.metrics.scaling = Some(ScalingRecord {
            scale_ups: f.scale_ups,
            scale_downs: f.scale_downs,
            replicas_started: f.replicas_started,
            replicas_stopped: f.replicas_stopped,
            peak_replicas: f.peak_up,
            held: f.held_periods(end_time),
        });
    }
    let violations = world.finish_accounting();
    RunResult { outcome, startup_failure: world.oom, memory, metrics: world.metrics, events, end_time, violations }
}

/// The step-time model every replica of the case shares.
fn step_time_model(case: &Case, kernels: Option<KernelStepTime>) -> Arc<dyn StepTimeModel> {
    match (case.step_time, kernels) {
        (StepTimeChoice::Constant { per_step, per_token }, _) => Arc::new(ConstantStepTime { per_step, per_token }),
        (_, Some(k)) => Arc::new(k),
        // The CLI warns when the kernel tables asked for by name could not price the case
        // (`kernel_fallback`).
        _ => {
            Arc::new(Roofline::new(&case.model, &case.gpu, case.quant, case.kv_dtype, case.tp, case.serving_options()))
        }
    }
}

/// Replica `i`'s engine, fresh: an empty queue and a cold prefix cache.
fn build_engine(case: &Case, memory: &MemoryBreakdown, step_time: &Arc<dyn StepTimeModel>, i: u32) -> Engine {
    let scheduler = SchedulerConfig {
        max_num_batched_tokens: case.engine.max_num_batched_tokens,
        max_num_seqs: case.engine.max_num_seqs,
        max_model_len: case.engine.max_model_len,
        enable_chunked_prefill: case.engine.enable_chunked_prefill,
        long_prefill_token_threshold: case.engine.long_prefill_token_threshold,
        async_scheduling: case.engine.async_scheduling,
    };
    match case.engine.kind {
        EngineKind::Vllm => {
            let kv = KvCache::new(
                u32::try_from(memory.num_gpu_blocks).expect("validation keeps blocks under MAX_BLOCKS"),
                case.engine.block_size,
                case.engine.enable_prefix_caching,
            );
            let mut replica = Replica::new(i, scheduler, kv, step_time.clone());
            replica.scheduler.offload = offload_tier(case, memory).map(|c| Box::new(Offload::new(c)));
            // The decode fast path does not store the blocks decodes fill; with a CPU tier
            // every step takes the full path (same results, `tests/it/fast_path.rs`).
            replica.fast_path = !case.limits.step_by_step && replica.scheduler.offload.is_none();
            if case.limits.step_by_step || replica.scheduler.offload.is_some() {
                // The reference path registers private blocks as they fill, as vLLM does; so
                // does a replica with a CPU tier, whose stores and loads go by hash.
                replica.kv.register_every_block();
            }
            replica.door = match case.engine.entrypoint {
                Entrypoint::Server => FrontDoor::ApiServer,
                Entrypoint::Offline => FrontDoor::Offline,
            };
            Engine::Vllm(replica)
        }
        EngineKind::Static => Engine::Static(StaticEngine::new(
            i,
            case.model.clone(),
            case.gpu.clone(),
            case.memory_config(),
            case.engine.max_num_seqs,
            static_step_time(case, step_time),
        )),
    }
}

/// The CPU KV tier of each replica, when the case turns offload on: its size in blocks from
/// the case, one block's bytes from the memory plan's KV bytes per token (per rank), the link
/// from the GPU catalog (validation made sure it has one).
pub fn offload_tier(case: &Case, memory: &MemoryBreakdown) -> Option<TierConfig> {
    let size = case.engine.kv_offloading?;
    let rank_block_bytes = memory.kv_bytes_per_token * memory.block_size;
    let num_blocks = size.num_blocks(rank_block_bytes, case.tp).min(u32::MAX as u64 - 1) as u32;
    Some(TierConfig {
        num_blocks,
        rank_block_bytes,
        ranks: case.tp,
        link_bytes_per_s: case.gpu.host_link_gbps.expect("validation requires a host link") * 1e9,
        link_latency: Nanos::from_secs_f64(case.gpu.host_link_latency_us.unwrap_or(0.0) * 1e-6),
    })
}

/// The static engine's step model: eager `generate` with HF's default DynamicCache, unless the
/// case asks for a constant step time (tests).
fn static_step_time(case: &Case, chosen: &Arc<dyn StepTimeModel>) -> Arc<dyn StepTimeModel> {
    match case.step_time {
        StepTimeChoice::Constant { .. } => chosen.clone(),
        StepTimeChoice::Auto | StepTimeChoice::Roofline | StepTimeChoice::Kernels => Arc::new(HfEagerStepTime::new(
            &case.model,
            &case.gpu,
            case.quant,
            case.kv_dtype,
            case.tp,
            CacheKind::Dynamic,
        )),
    }
}

impl World {
    /// Seeds the queue: the first arrivals, or the batch job's replicas and first batches.
    fn start(&mut self, case: &Case) {
        match self.pipeline.as_ref().map(|p| p.config) {
            None => {
                for ticket in self.workload.initial() {
                    self.queue.push(ticket.arrival, Event::Arrival(ticket));
                }
                if let Some(scaling) = &self.scaling {
                    // Slots beyond the initial replicas are off until a scale-up starts them.
                    for slot in scaling.autoscaler.config.initial_replicas as usize..self.engines.len() {
                        self.fleet.set_available(slot, false);
                        self.ready[slot] = false;
                    }
                    self.metrics.fleet_counts = Some(scaling.slots.counts());
                    self.queue.push(SimTime::ZERO, Event::ScaleTick);
                }
            }
            Some(config) => {
                let load = config.load_bytes_per_s.map_or(Nanos::ZERO, |bw| {
                    let weights = ParamBreakdown::of(&case.model).weight_bytes_per_rank(case.quant, case.tp);
                    Nanos::from_secs_f64(weights / bw)
                });
                let startup = config.startup + load;
                if startup > Nanos::ZERO {
                    self.ready.iter_mut().for_each(|r| *r = false);
                    self.not_ready = self.ready.len();
                    for replica in 0..self.engines.len() as u32 {
                        self.queue.push(SimTime::ZERO + startup, Event::Ready { replica });
                    }
                } else {
                    self.dispatch_batches(SimTime::ZERO);
                }
            }
        }
    }

    fn run(&mut self, limits: &Limits) -> (Outcome, u64) {
        let mut events = 0u64;
        let horizon = SimTime::from_secs_f64(super::bounds::HORIZON_S);
        while let Some((now, event)) = self.queue.pop() {
            if now < self.now && self.violations.len() < 8 {
                // Checked in every build: one comparison per event.
                self.violations.push(format!("time went backwards: an event at {now:?} popped after {:?}", self.now));
            }
            self.now = now;
            if now > limits.max_sim_time {
                return (Outcome::TimeLimit, events);
            }
            if now > horizon {
                return (Outcome::TimeOverflow, events);
            }
            events += 1;
            self.sample_queue(now);
            match event {
                Event::Arrival(ticket) => self.on_arrival(now, ticket),
                Event::StepDone { replica } => self.on_step_done(now, replica as usize),
                Event::Wake { replica } => self.on_wake(now, replica as usize),
                Event::Ready { replica } => self.on_ready(now, replica as usize),
                Event::Dispatch => self.dispatch_batches(now),
                Event::Enter(spec) => {
                    self.in_frontend -= 1;
                    self.route_and_admit(now, *spec)
                }
                Event::ScaleTick => self.on_scale_tick(now),
                Event::ReplicaUp { replica, generation } => self.on_replica_up(now, replica, generation),
                Event::Handoff(request) => self.on_handoff(now, *request),
                Event::TransferDone { decode, id, prefill, parked } => {
                    self.on_transfer_done(now, decode as usize, id, prefill as usize, parked)
                }
            }
            self.drain_follow_ups(now);
            if self.oom.is_some() {
                return (Outcome::Oom, events);
            }
            if events >= limits.max_events {
                return (Outcome::EventLimit, events);
            }
            if self.metrics.watch.as_ref().is_some_and(|w| w.should_stop()) {
                return (Outcome::SloBroken, events);
            }
        }
        if self.engines.iter().any(|e| e.outstanding() > 0) {
            return (Outcome::Stalled, events);
        }
        (Outcome::Completed, events)
    }

    /// Counts the requests left unfinished and checks, in every build, that every arrival is
    /// accounted for and every replica's KV blocks balance. Returns the broken invariants.
    fn finish_accounting(&mut self) -> Vec<String> {
        let outstanding: u64 = self.engines.iter().map(|e| e.outstanding() as u64).sum();
        let follow_ups = self.follow_ups.len() as u64;
        let handing_off = self.decode.as_ref().map_or(0, |d| d.in_handoff);
        self.metrics.unfinished = outstanding + self.parked + self.in_frontend + follow_ups + handing_off;
        let mut violations = std::mem::take(&mut self.violations);
        violations.extend(self.metrics.check_accounting().err());
        for (i, engine) in self.engines.iter().enumerate() {
            violations.extend(engine.check_accounting().err().map(|e| format!("replica {i}: {e}")));
        }
        violations
    }

    /// Records the fleet-wide queue at each sampling time passed (state just before `now`).
    fn sample_queue(&mut self, now: SimTime) {
        let Some(interval) = self.metrics.queue_interval else { return };
        let next = self.metrics.queue_samples.last().map_or(SimTime::ZERO, |s| s.time + interval);
        if now < next {
            return;
        }
        let (mut waiting, mut outstanding) = (self.fleet.waiting(), self.fleet.outstanding());
        if let Some(d) = &self.decode {
            (waiting, outstanding) = (waiting + d.fleet.waiting(), outstanding + d.fleet.outstanding());
        }
        let running = (outstanding - waiting) as u32;
        let waiting = waiting as u32;
        let periods = (now.0 - next.0) / interval.0.max(1);
        let time = SimTime(next.0 + periods * interval.0.max(1));
        self.metrics.queue_samples.push(crate::report::metrics::QueueSample { time, waiting, running });
    }

    fn on_arrival(&mut self, now: SimTime, ticket: Ticket) {
        if ticket.client.is_none() {
            if let Some(next) = self.workload.next_open_loop() {
                self.queue.push(next.arrival, Event::Arrival(next));
            }
        }
        self.metrics.arrivals += 1;
        if let Some(spec) = self.workload.realize(ticket, now) {
            self.metrics.request_entered(spec.arrival);
            if self.frontend_overhead > Nanos::ZERO {
                self.in_frontend += 1;
                self.queue.push(now + self.frontend_overhead, Event::Enter(Box::new(spec)));
            } else {
                self.route_and_admit(now, spec);
            }
        } else {
            self.parked += 1;
        }
    }

    /// Online front end: the admission limit, then the router.
    fn route_and_admit(&mut self, now: SimTime, spec: RequestSpec) {
        let (client, session) = (spec.client, spec.session);
        let output = Segment { id: spec.output_segment, len: 0 };
        let waiting = self.fleet.waiting() + self.decode.as_ref().map_or(0, |d| d.fleet.waiting());
        if self.max_waiting.is_some_and(|limit| waiting >= limit) {
            self.metrics.record_refused(
                spec.index,
                spec.arrival,
                spec.prompt_tokens,
                "admission_limit",
                &format!("rejected at the front end: {waiting} requests already waiting (fleet.max_waiting)"),
            );
            self.request_done(now, client, session, false, output);
            return;
        }
        let mut request = Request::new(spec.index, spec);
        if let Some(pool) = &self.decode {
            // The decode pool serves the client's output: refuse at the proxy what it would
            // refuse, before any prefill work.
            if let Some(rejection) = self.engines[pool.offset].length_rejection(&request) {
                let (index, arrival, prompt_tokens) = (request.seq_no, request.arrival, request.prompt_tokens);
                self.metrics.record_refused(index, arrival, prompt_tokens, rejection.reason, &rejection.message);
                self.request_done(now, client, session, false, output);
                return;
            }
            request = request.for_prefill();
        }
        let lookup = self.router.needs_prefix_lookup();
        if !lookup && self.not_ready == 0 {
            let replica = self.router.choose_indexed(&self.fleet);
            self.admit(now, replica, request, client, session, output);
            return;
        }
        if lookup {
            // Every replica applies the same length rules, so a request they would all refuse
            // is refused before its prompt is hashed for the lookups: a conversation that
            // outgrew the model would otherwise hash its whole history on every turn. The
            // prefix-affinity choice has no state, so results are the same.
            if let Some(rejection) = self.engines[0].length_rejection(&request) {
                let (index, arrival, prompt_tokens) = (request.seq_no, request.arrival, request.prompt_tokens);
                self.metrics.record_refused(index, arrival, prompt_tokens, rejection.reason, &rejection.message);
                self.row_done(now, index);
                self.request_done(now, client, session, false, output);
                return;
            }
        }
        self.views.clear();
        let prompt_blocks = if lookup { prompt_block_hashes(&mut request, self.block_size).len() } else { 0 };
        let hashes = &request.kv.block_hashes[..prompt_blocks];
        let pool = self.decode.as_ref().map_or(self.engines.len(), |d| d.offset);
        for (i, engine) in self.engines[..pool].iter().enumerate() {
            self.views.push(ReplicaView {
                ready: self.ready[i],
                outstanding: engine.outstanding(),
                kv_usage: engine.kv_usage(),
                cached_blocks: if lookup { engine.cached_prefix_blocks(hashes) } else { 0 },
            });
        }
        let replica = self.router.choose(&self.views).unwrap_or(0);
        self.admit(now, replica, request, client, session, output);
    }

    fn admit(
        &mut self,
        now: SimTime,
        replica: usize,
        request: Request,
        client: Option<u32>,
        session: Option<u32>,
        output: Segment,
    ) {
        let (index, arrival, prompt_tokens) = (request.seq_no, request.arrival, request.prompt_tokens);
        match self.engines[replica].admit(request) {
            Ok(()) => {
                self.refresh(replica);
                self.metrics.note_waiting(self.engines[replica].waiting());
                self.wake(now, replica);
            }
            Err(rejection) => {
                self.metrics.record_refused(index, arrival, prompt_tokens, rejection.reason, &rejection.message);
                self.row_done(now, index);
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
                self.metrics.request_entered(next.arrival);
                self.parked -= 1;
                self.follow_ups.push(next);
            }
        }
    }

    /// Routes the multi-turn follow-ups that `request_done` queued, and theirs in turn, in the
    /// order a recursive call would take them; a loop, since a burst that the admission limit
    /// refuses would otherwise recurse once per refused turn and overflow the stack.
    fn drain_follow_ups(&mut self, now: SimTime) {
        while let Some(next) = self.follow_ups.pop() {
            self.route_and_admit(now, next);
        }
    }

    /// Tells the fleet index replica `replica`'s load after the engine changed it.
    fn refresh(&mut self, replica: usize) {
        let engine = &self.engines[replica];
        let load =
            ReplicaLoad { outstanding: engine.outstanding(), waiting: engine.waiting(), kv_usage: engine.kv_usage() };
        match &mut self.decode {
            Some(d) if replica >= d.offset => d.fleet.update(replica - d.offset, load),
            _ => self.fleet.update(replica, load),
        }
    }

    fn wake(&mut self, now: SimTime, replica: usize) {
        if !self.engines[replica].is_busy() && !self.wake_pending[replica] {
            self.wake_pending[replica] = true;
            self.queue.push(now, Event::Wake { replica: replica as u32 });
        }
    }

    fn on_wake(&mut self, now: SimTime, replica: usize) {
        self.wake_pending[replica] = false;
        if !self.engines[replica].is_busy() {
            self.start_step(now, replica);
        }
    }

    fn on_ready(&mut self, now: SimTime, replica: usize) {
        if !std::mem::replace(&mut self.ready[replica], true) {
            self.not_ready -= 1;
        }
        self.metrics.replicas[replica].ready_at = now;
        self.dispatch_batches(now);
    }

    fn start_step(&mut self, now: SimTime, replica: usize) {
        let started = self.engines[replica].start_step(now, &mut self.metrics);
        if self.decode.is_some() {
            self.start_transfers(now, replica);
        }
        self.refresh(replica);
        match started {
            Ok(Some(duration)) => self.queue.push(now + duration, Event::StepDone { replica: replica as u32 }),
            Ok(None) => {
                // Idle while requests wait for loads from the CPU tier: look again when the
                // next one is done (wake_pending is for same-time wakes, so it is left alone).
                if let Some(at) = self.engines[replica].next_wake() {
                    self.queue.push(at.max(now), Event::Wake { replica: replica as u32 });
                }
            }
            Err(plan) => {
                self.oom = Some(StartupFailure {
                    message: plan.oom_message(),
                    breakdown: self.memory.clone(),
                    static_batch: Some(*plan),
                })
            }
        }
    }

    fn on_step_done(&mut self, now: SimTime, replica: usize) {
        let mut finished = std::mem::take(&mut self.finished);
        finished.clear();
        self.engines[replica].finish_step(now, &mut self.metrics, &mut finished);
        if self.decode.is_some() {
            self.hand_off(now, replica);
        }
        self.refresh(replica);
        for f in &finished {
            self.row_done(now, f.index);
            self.request_done(now, f.client, f.session, true, f.output);
            self.drain_follow_ups(now);
        }
        self.finished = finished;
        self.start_step(now, replica);
        if self.pipeline.is_some() {
            self.dispatch_batches(now);
        }
        self.leave_if_drained(now, replica);
    }

    /// Batch jobs: a row ended (finished or refused); a batch whose rows all ended completes
    /// and frees a slot on its replica.
    fn row_done(&mut self, now: SimTime, index: u64) {
        let Some(pipeline) = &mut self.pipeline else { return };
        // Batches are consecutive runs of `batch_size` rows, handed out in order.
        let batch = (index / pipeline.config.batch_size as u64) as usize;
        let (replica, dispatched, left) = &mut pipeline.batches[batch];
        *left -= 1;
        if *left == 0 {
            pipeline.in_progress[*replica as usize] -= 1;
            self.metrics.batches.push(BatchRecord {
                replica: *replica,
                dispatched: *dispatched,
                completed: now,
                rows: pipeline.config.batch_size,
            });
        }
    }

    /// Hands batches to ready replicas with room, least-loaded first (ties: lowest index).
    fn dispatch_batches(&mut self, now: SimTime) {
        loop {
            let Some(pipeline) = &mut self.pipeline else { return };
            if pipeline.next_row >= pipeline.config.rows {
                return;
            }
            let target = (0..self.engines.len())
                .filter(|&i| self.ready[i] && pipeline.in_progress[i] < pipeline.config.max_concurrent_batches)
                .min_by_key(|&i| pipeline.in_progress[i]);
            let Some(replica) = target else { return };
            let first = pipeline.next_row;
            let last = (first + pipeline.config.batch_size as u64).min(pipeline.config.rows);
            let batch = pipeline.batches.len() as u32;
            pipeline.batches.push((replica as u32, now, (last - first) as u32));
            pipeline.in_progress[replica] += 1;
            pipeline.next_row = last;
            for row in first..last {
                self.metrics.arrivals += 1;
                let ticket = Ticket { index: row, arrival: now, client: None };
                let spec = self.workload.realize(ticket, now).expect("batch rows have no sessions");
                self.metrics.request_entered(spec.arrival);
                let output = Segment { id: spec.output_segment, len: 0 };
                self.admit(now, replica, Request::new(row, spec), None, None, output);
            }
            let ended = self.pipeline.as_ref().is_some_and(|p| p.batches[batch as usize].2 == 0);
            if ended {
                self.queue.push(now, Event::Dispatch);
                return;
            }
        }
    }
}
