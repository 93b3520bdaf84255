//! `fleet.autoscaling_config` and `fleet.cold_start` as written, to the validated
//! [`AutoscalingConfig`]: Ray Serve's defaults applied, seconds converted to nanoseconds, the
//! cold start priced from the model's weight bytes, every problem named with its field and fix.

use super::file::{AutoscalingConfigFile, ColdStartFile, FleetFile};
use super::validate::{Ctx, MAX_REPLICAS};
use crate::hardware::shape::ParamBreakdown;
use crate::hardware::{ModelSpec, Quant};
use crate::serving::autoscaler::AutoscalingConfig;
use crate::sim::bounds::MAX_SECONDS;
use crate::sim::Nanos;

/// Weight-loading bandwidth per GPU when the file gives none, bytes/s. An assumption, sourced:
/// vLLM issue #20264 logs "Loading weights took 0.69 seconds" for 3.42 GiB (5.3 GB/s) from a
/// warm page cache; #19824 reports about 10 s for Llama-70B FP8 over 8 GPUs (about 7 GB/s per
/// GPU), also from a warm page cache. Cold network storage is slower: set `load_gbps`.
pub const DEFAULT_LOAD_GBPS: f64 = 5.0;
/// vLLM's start-up after the weights, seconds, when the file gives none: vLLM issue #20264
/// (Llama-3.2 on one GPU, torch.compile cache reused) logs engine init (profiling, KV cache,
/// warm-up, 17 s of CUDA-graph capture) at 34 s and the first response 59 s after launch, 0.9 s
/// of which loaded weights; 58 s is that launch-to-response time less the load. How sure: low
/// (a factor of 2 either way); a cold compile cache adds minutes (#19824: 70 s torch.compile,
/// 60 s graph capture for Llama-70B on TP 8).
pub const DEFAULT_ENGINE_STARTUP_S: f64 = 58.0;

/// Ray Serve's defaults (`ray.serve.config.AutoscalingConfig`).
const DEFAULT_TARGET_ONGOING_REQUESTS: f64 = 2.0;
const DEFAULT_UPSCALE_DELAY_S: f64 = 30.0;
const DEFAULT_DOWNSCALE_DELAY_S: f64 = 600.0;
const DEFAULT_METRICS_INTERVAL_S: f64 = 10.0;
const DEFAULT_LOOK_BACK_PERIOD_S: f64 = 30.0;

/// Resolves the fleet's autoscaling; `None` when it has none (or it is broken: the problems
/// are in `ctx`). `fixed_replicas` and `batch` are what else the file set, for conflicts.
pub(super) fn resolve(
    fleet: &FleetFile,
    batch: bool,
    model: Option<&ModelSpec>,
    quant: Quant,
    tp: u32,
    path: &str,
    ctx: &mut Ctx<'_>,
) -> Option<AutoscalingConfig> {
    let path = format!("{path}.fleet");
    let Some(a) = &fleet.autoscaling_config else {
        if fleet.cold_start.is_some() {
            ctx.push(
                format!("{path}.cold_start"),
                "a cold start applies to replicas the autoscaler adds; add `fleet.autoscaling_config` or remove `cold_start`",
            );
        }
        return None;
    };
    let before = ctx.problem_count();
    if batch {
        ctx.push(format!("{path}.autoscaling_config"), BATCH_AUTOSCALING);
    }
    if fleet.replicas.is_some() {
        ctx.push(
            format!("{path}.replicas"),
            "with `autoscaling_config` the autoscaler sets the replica count (as Ray Serve refuses num_replicas beside it); remove `replicas` and use `autoscaling_config.initial_replicas`",
        );
    }
    let config = resolve_config(a, &format!("{path}.autoscaling_config"), ctx);
    let (weights_load, engine_startup) = resolve_cold_start(fleet.cold_start.as_ref(), model, quant, tp, &path, ctx);
    let config = AutoscalingConfig { weights_load, engine_startup, ..config };
    (ctx.problem_count() == before).then_some(config)
}

/// The most replicas an autoscaled fleet may reach: half the scenario limit, because a run
/// sets up twice `max_replicas` slots (`Case::replica_slots`).
pub const MAX_AUTOSCALED_REPLICAS: u32 = MAX_REPLICAS / 2;

/// What is wrong with a `min_replicas`..`max_replicas` range, as (field, message) pairs:
/// scale-to-zero, a maximum out of bounds, a minimum above the maximum. Shared with
/// `symbiote plan --autoscale`, so both say the same.
pub fn range_problems(min_replicas: u32, max_replicas: u32) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if min_replicas == 0 {
        out.push((
            "min_replicas",
            "scale-to-zero (min_replicas 0) is not modelled: requests would wait at Ray's handle for a cold start; use at least 1".to_string(),
        ));
    }
    if max_replicas == 0 || max_replicas > MAX_AUTOSCALED_REPLICAS {
        out.push(("max_replicas", format!("need 1 to {MAX_AUTOSCALED_REPLICAS} replicas, got {max_replicas}")));
    }
    if min_replicas > max_replicas {
        out.push((
            "min_replicas",
            format!("min_replicas ({min_replicas}) is above max_replicas ({max_replicas}); lower min_replicas or raise max_replicas (Ray's default max_replicas is 1)"),
        ));
    }
    out
}

/// Why a disaggregated fleet cannot autoscale (the scenario layer and `plan` both say it).
pub const DISAGGREGATED_AUTOSCALING: &str =
    "autoscaling a disaggregated fleet's pools is not modelled; remove `fleet.autoscaling_config` or `fleet.disaggregation`";

/// Why a batch job cannot autoscale.
pub const BATCH_AUTOSCALING: &str =
    "autoscaling applies to online fleets; a batch job's replicas are `batch.concurrency`, remove `autoscaling_config`";

fn resolve_config(a: &AutoscalingConfigFile, path: &str, ctx: &mut Ctx<'_>) -> AutoscalingConfig {
    let max_allowed = MAX_AUTOSCALED_REPLICAS;
    let min_replicas = a.min_replicas.unwrap_or(1);
    let max_replicas = a.max_replicas.unwrap_or(1);
    for (field, message) in range_problems(min_replicas, max_replicas) {
        ctx.push(format!("{path}.{field}"), message);
    }
    let initial_replicas = a.initial_replicas.unwrap_or(min_replicas);
    if a.initial_replicas.is_some() && !(min_replicas..=max_replicas).contains(&initial_replicas) {
        ctx.push(
            format!("{path}.initial_replicas"),
            format!("initial_replicas ({initial_replicas}) must be within min_replicas ({min_replicas}) and max_replicas ({max_replicas}), as Ray Serve requires"),
        );
    }
    let target_ongoing_requests = a.target_ongoing_requests.unwrap_or(DEFAULT_TARGET_ONGOING_REQUESTS);
    if !(target_ongoing_requests > 0.0 && target_ongoing_requests <= 1e6) {
        ctx.push(
            format!("{path}.target_ongoing_requests"),
            format!("must be a positive number of requests per replica (up to 1e6), got {target_ongoing_requests}; Ray's default is 2"),
        );
    }
    let mut seconds = |field: &str, value: Option<f64>, default: f64, positive: bool| {
        let s = value.unwrap_or(default);
        let ok = if positive { s > 0.0 } else { s >= 0.0 } && s <= MAX_SECONDS;
        if !ok {
            let low = if positive { "above 0" } else { "from 0" };
            ctx.push(
                format!("{path}.{field}"),
                format!("must be a number of seconds {low} up to {MAX_SECONDS}, got {s}; Ray's default is {default}"),
            );
        }
        Nanos::from_secs_f64(if ok { s } else { default })
    };
    let upscale_delay = seconds("upscale_delay_s", a.upscale_delay_s, DEFAULT_UPSCALE_DELAY_S, false);
    let downscale_delay = seconds("downscale_delay_s", a.downscale_delay_s, DEFAULT_DOWNSCALE_DELAY_S, false);
    let metrics_interval = seconds("metrics_interval_s", a.metrics_interval_s, DEFAULT_METRICS_INTERVAL_S, true);
    let look_back_period = seconds("look_back_period_s", a.look_back_period_s, DEFAULT_LOOK_BACK_PERIOD_S, true);
    let mut factor = |field: &str, value: Option<f64>| {
        if let Some(x) = value.filter(|x| !(*x > 0.0 && *x <= 100.0)) {
            ctx.push(
                format!("{path}.{field}"),
                format!("must be a positive factor up to 100, got {x}; Ray's default is 1"),
            );
        }
        value.filter(|x| *x > 0.0 && *x <= 100.0)
    };
    let smoothing = factor("smoothing_factor", a.smoothing_factor).unwrap_or(1.0);
    let up_smoothing = factor("upscale_smoothing_factor", a.upscale_smoothing_factor);
    let down_smoothing = factor("downscale_smoothing_factor", a.downscale_smoothing_factor);
    // `AutoscalingConfig.get_upscaling_factor`: upscaling_factor, else the upscale smoothing
    // factor, else smoothing_factor (and the same downward).
    let upscaling_factor = factor("upscaling_factor", a.upscaling_factor).or(up_smoothing).unwrap_or(smoothing);
    let downscaling_factor = factor("downscaling_factor", a.downscaling_factor).or(down_smoothing).unwrap_or(smoothing);
    AutoscalingConfig {
        min_replicas: min_replicas.max(1),
        max_replicas: max_replicas.clamp(1, max_allowed),
        initial_replicas: initial_replicas.clamp(1, max_allowed),
        target_ongoing_requests: if target_ongoing_requests > 0.0 { target_ongoing_requests } else { 1.0 },
        upscale_delay,
        downscale_delay,
        metrics_interval,
        look_back_period,
        upscaling_factor,
        downscaling_factor,
        weights_load: Nanos::ZERO,
        engine_startup: Nanos::ZERO,
    }
}

/// Weights load (per-rank weight bytes / bandwidth) and engine start-up.
fn resolve_cold_start(
    c: Option<&ColdStartFile>,
    model: Option<&ModelSpec>,
    quant: Quant,
    tp: u32,
    path: &str,
    ctx: &mut Ctx<'_>,
) -> (Nanos, Nanos) {
    let load_gbps = c.and_then(|c| c.load_gbps).unwrap_or(DEFAULT_LOAD_GBPS);
    // Below 1 MB/s, loading even a small model's weights would take longer than a run may last.
    if !(1e-3..=1e6).contains(&load_gbps) {
        ctx.push(
            format!("{path}.cold_start.load_gbps"),
            format!("must be a bandwidth within 0.001..1e6 GB/s, got {load_gbps}; the default is {DEFAULT_LOAD_GBPS}"),
        );
    }
    let startup_s = c.and_then(|c| c.engine_startup_s).unwrap_or(DEFAULT_ENGINE_STARTUP_S);
    if !(0.0..=MAX_SECONDS).contains(&startup_s) {
        ctx.push(
            format!("{path}.cold_start.engine_startup_s"),
            format!("must be a number of seconds from 0 up to {MAX_SECONDS}, got {startup_s}; the default is {DEFAULT_ENGINE_STARTUP_S}"),
        );
    }
    let weights = model.map_or(0.0, |m| ParamBreakdown::of(m).weight_bytes_per_rank(quant, tp.max(1) as u64));
    let load =
        if (1e-3..=1e6).contains(&load_gbps) { Nanos::from_secs_f64(weights / (load_gbps * 1e9)) } else { Nanos::ZERO };
    let startup = if (0.0..=MAX_SECONDS).contains(&startup_s) { Nanos::from_secs_f64(startup_s) } else { Nanos::ZERO };
    (load, startup)
}
