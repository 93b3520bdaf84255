//! Validation of `fleet.disaggregation`: the two pools (GPU, TP size, replicas, router) and the
//! link between them, with a JSON path and a fix for every problem.

use super::file::{DisaggregationFile, PoolFile};
use super::validate::{Ctx, MAX_REPLICAS};
use super::{Disaggregation, Pool};
use crate::hardware::{GpuSpec, HostParams, ModelSpec};
use crate::serving::router::RouterPolicy;

/// Most microseconds a link's latency override may be (one second: anything longer is a typo).
const MAX_LATENCY_US: f64 = 1e6;

/// Resolves the pools and the link; `None` (with problems pushed) when any part is wrong.
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve(
    d: &DisaggregationFile,
    model: &ModelSpec,
    case_gpu: &GpuSpec,
    case_tp: u32,
    router: RouterPolicy,
    host: &HostParams,
    path: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Disaggregation> {
    let path = format!("{path}.fleet.disaggregation");
    let prefill = pool(&d.prefill, model, case_gpu, case_tp, router, host, &format!("{path}.prefill"), ctx);
    // The decode side reads every prompt block from the prefill side (symbiote does not model
    // its own prefix hits on a remote load), so prefix affinity has nothing to aim at there:
    // a fleet routed by prefix affinity sends its decodes to the least loaded replica.
    if d.decode.router == Some(RouterPolicy::PrefixAffinity) {
        ctx.push(
            format!("{path}.decode.router"),
            "prefix_affinity cannot route decodes: the decode side reads the whole prompt from the prefill side; use least_outstanding, least_kv, round_robin or random",
        );
    }
    let decode_default = if router == RouterPolicy::PrefixAffinity { RouterPolicy::LeastOutstanding } else { router };
    let decode = pool(&d.decode, model, case_gpu, case_tp, decode_default, host, &format!("{path}.decode"), ctx);
    let (prefill, decode) = (prefill?, decode?);
    if prefill.replicas + decode.replicas > MAX_REPLICAS {
        ctx.push(
            path.clone(),
            format!(
                "the two pools hold {} replicas, above the limit of {MAX_REPLICAS}; use fewer",
                prefill.replicas + decode.replicas
            ),
        );
    }
    let mut link = crate::hardware::link::resolve(&d.link, &prefill.gpu, &decode.gpu)
        .map_err(|e| ctx.push(format!("{path}.link"), e))
        .ok()?;
    if let Some(us) = d.link_latency_us {
        if !(0.0..=MAX_LATENCY_US).contains(&us) {
            ctx.push(
                format!("{path}.link_latency_us"),
                format!("need 0 to {MAX_LATENCY_US} microseconds, got {us}; remove it to use the link's own figure"),
            );
            return None;
        }
        link.latency_s = us * 1e-6;
    }
    Some(Disaggregation { prefill, decode, link_name: d.link.clone(), link })
}

#[allow(clippy::too_many_arguments)]
fn pool(
    p: &PoolFile,
    model: &ModelSpec,
    case_gpu: &GpuSpec,
    case_tp: u32,
    router: RouterPolicy,
    host: &HostParams,
    path: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Pool> {
    let before = ctx.problem_count();
    if p.replicas == 0 || p.replicas > MAX_REPLICAS {
        ctx.push(format!("{path}.replicas"), format!("need 1 to {MAX_REPLICAS} replicas, got {}", p.replicas));
    }
    let tp = p.tp.unwrap_or(case_tp);
    if !(1..=8).contains(&tp) {
        ctx.push(format!("{path}.tp"), format!("tensor parallel size must be 1 to 8, got {tp}"));
    } else if model.num_attention_heads % tp as u64 != 0 {
        ctx.push(
            format!("{path}.tp"),
            format!(
                "Total number of attention heads ({}) must be divisible by tensor parallel size ({tp}) (vLLM's start-up check); use a divisor of {}",
                model.num_attention_heads, model.num_attention_heads
            ),
        );
    }
    let gpu = match &p.gpu {
        None => Some(case_gpu.clone()),
        Some(name) => {
            let catalog = crate::hardware::active_catalog();
            catalog
                .gpu(name)
                .map(|g| crate::hardware::transfer::effective_gpu(g, host))
                .map_err(|e| ctx.push(format!("{path}.gpu"), e.to_string()))
                .ok()
        }
    }?;
    if ctx.problem_count() > before {
        return None;
    }
    let catalog_gpu = crate::hardware::active_catalog().gpu(&gpu.name).ok();
    let price = catalog_gpu.and_then(|g| crate::hardware::PriceBook::builtin().price(g));
    Some(Pool { gpu, tp: tp as u64, replicas: p.replicas, router: p.router.unwrap_or(router), price })
}
