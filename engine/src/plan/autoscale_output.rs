//! The autoscaled fleets of a plan (`--autoscale`) in its reports: their rows in report.json,
//! the winner's headline when one of them is the answer, and their table in report.md. Each
//! row states the range, the target, the peak replicas, the GPU-hours held and what they cost,
//! and the SLO's violations against its allowance.

use serde_json::{json, Map, Value};

use super::autoscale::Outcome;
use super::output::{money, round, slo_json};
use super::{Plan, PlanInput};
use crate::report::markdown::md_text;

/// How fixed and autoscaled fleets are compared, in the report's words.
pub const COST_MEASURE: &str = "mean cost per hour over the run: GPU-hours held x price per GPU-hour / the run's hours (time 0 to the last completion); an autoscaled replica is held from its scale-up decision until it leaves (cold start and drain paid), a fixed fleet's are held throughout, so its cost is replicas x GPUs per replica x price";

/// The row of autoscaled run `k` in report.json.
pub fn autoscaled_json(plan: &Plan, input: &PlanInput, k: usize) -> Map<String, Value> {
    let run = &plan.autoscaled.as_ref().expect("called only with autoscaled runs")[k];
    let c = &plan.candidates[run.candidate];
    let mut row = Map::new();
    row.insert("label".into(), run.label(&plan.candidates).into());
    row.insert("fleet".into(), "autoscaled".into());
    row.insert("configuration".into(), c.label().into());
    row.insert("gpu".into(), c.case.gpu.name.clone().into());
    row.insert("quant".into(), c.config.quant.clone().into());
    row.insert("tp".into(), c.case.tp.into());
    row.insert("router".into(), super::space::router_name(c.config.router).into());
    row.insert("min_replicas".into(), run.min_replicas.into());
    row.insert("max_replicas".into(), run.max_replicas.into());
    row.insert("target_ongoing_requests".into(), run.target_ongoing_requests.into());
    row.insert("calibrated".into(), c.calibrated().into());
    row.insert("error_band".into(), c.error_band().into());
    row.insert("usd_per_gpu_hour".into(), c.usd_per_gpu_hour.into());
    row.insert("price_basis".into(), c.price_basis.clone().into());
    if let Some(fixed) = plan.verified[run.candidate].as_ref().and_then(|v| v.run.as_ref()) {
        row.insert("fixed_replicas".into(), fixed.replicas.into());
        row.insert("fixed_cost_usd_per_hour".into(), round(super::search::cost_per_hour(c, fixed.replicas), 4).into());
    }
    match &run.outcome {
        Outcome::Met(r) => {
            row.insert("status".into(), "verified".into());
            row.insert("peak_replicas".into(), r.peak_replicas.into());
            row.insert("scale_ups".into(), r.scale_ups.into());
            row.insert("scale_downs".into(), r.scale_downs.into());
            row.insert("cold_start_s".into(), round(r.cold_start_s, 3).into());
            row.insert("duration_s".into(), round(r.duration_s, 3).into());
            row.insert("gpus".into(), round(r.mean_gpus, 4).into());
            row.insert("gpu_hours".into(), round(r.gpu_hours, 4).into());
            row.insert("cost_usd_per_hour".into(), round(r.mean_gpus * c.usd_per_gpu_hour, 4).into());
            row.insert("run_cost_usd".into(), round(r.gpu_hours * c.usd_per_gpu_hour, 4).into());
            let per_million = (r.output_tokens > 0)
                .then(|| round(r.gpu_hours * c.usd_per_gpu_hour / (r.output_tokens as f64 / 1e6), 4));
            row.insert("cost_usd_per_million_output_tokens".into(), per_million.into());
            row.insert("slo".into(), slo_json(&input.slo, &r.summary, &r.violations, &r.allowed).into());
        }
        Outcome::Missed { violations, allowed } => {
            row.insert("status".into(), "missed_slo".into());
            row.insert("slo".into(), slo_json(&input.slo, &Map::new(), violations, allowed).into());
        }
        Outcome::Skipped(why) => {
            row.insert("status".into(), "skipped".into());
            row.insert("skipped".into(), why.clone().into());
        }
    }
    row
}

/// Adds `autoscaling` (what was asked, the cost measure), `autoscaled` (every run) and the
/// stage's work to report.json.
pub fn add_json(out: &mut Value, plan: &Plan, input: &PlanInput) {
    let Some(space) = &input.autoscale else { return };
    let runs = plan.autoscaled.as_deref().unwrap_or(&[]);
    out["autoscaling"] = json!({
        "ranges": space.ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect::<Vec<_>>(),
        "fixed_fleets_offered": space.fixed,
        "target_ongoing_requests": space.targets.iter().map(|t| t.map_or(Value::from("knee concurrency"), Value::from)).collect::<Vec<_>>(),
        "target_source": space.target_source,
        "policy": space.policy,
        "cold_start": space.cold_start,
        "configurations": "those whose fixed fleet was verified; each range runs once on the full traffic at the target rate",
        "cost_measure": COST_MEASURE,
    });
    out["autoscaled"] = runs.iter().enumerate().map(|(k, _)| Value::Object(autoscaled_json(plan, input, k))).collect();
    out["search"]["by_stage"]["autoscale"] =
        json!({"simulations": plan.work.autoscale.simulations, "requests": plan.work.autoscale.requests});
}

/// The headline of report.md when an autoscaled fleet is the answer (`row`: its report.json row).
pub fn headline(row: &Value) -> String {
    let number = |key: &str| row[key].as_f64().unwrap_or(0.0);
    format!(
        "**Cheapest: {}** (Ray Serve autoscaling between {} and {} replicas; peak {}, {:.2} GPUs held on average, {:.3} GPU-hours over the run's {:.0} s) at **{}/hour** averaged over the run ({} for this traffic), {} per million output tokens; the same configuration's cheapest fixed fleet, {} replicas, costs {}/hour.\n\nEach replica it adds serves {:.1} s after its scale-up decision (weights at the stated bandwidth plus vLLM start-up: low-confidence defaults, docs/autoscaling.md). Headroom is not measured for an autoscaled fleet.\n\n",
        md_text(row["label"].as_str().unwrap_or("")),
        row["min_replicas"],
        row["max_replicas"],
        row["peak_replicas"],
        number("gpus"),
        number("gpu_hours"),
        number("duration_s"),
        money(number("cost_usd_per_hour")),
        money(number("run_cost_usd")),
        row["cost_usd_per_million_output_tokens"].as_f64().map_or("-".into(), money),
        row["fixed_replicas"],
        money(number("fixed_cost_usd_per_hour")),
        number("cold_start_s"),
    )
}

/// SLO cell: each target's violations against its allowance.
fn slo_cell(row: &Value) -> String {
    let Some(slo) = row["slo"].as_object() else { return "-".into() };
    let parts: Vec<String> = slo
        .iter()
        .map(|(key, o)| format!("{key} {} of {} allowed", o["violations"], o["allowed_violations"]))
        .collect();
    parts.join("; ")
}

/// report.md's table of autoscaled fleets.
pub fn markdown_section(json: &Value, input: &PlanInput) -> String {
    let Some(space) = &input.autoscale else { return String::new() };
    let targets: Vec<String> = space
        .targets
        .iter()
        .map(|t| t.map_or("each configuration's knee concurrency".into(), |t| t.to_string()))
        .collect();
    let target = format!("{} ({})", targets.join(", "), space.target_source);
    let mut md = format!(
        "\n## Autoscaled fleets (Ray Serve)\n\nRanges {} tried with each target for each configuration whose fixed fleet was verified, each in one run on the full traffic; target_ongoing_requests: {target}; fixed fleets {}. Cost: {}.\n\n| configuration | min-max | target | peak replicas | mean GPUs | GPU-hours | $/hour (mean over run) | $ for the run | fixed fleet | SLO violations | status |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|---|\n",
        space.ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect::<Vec<_>>().join(", "),
        if space.fixed { "compete (`off` given)" } else { "were searched to seed these but are not offered (no `off`)" },
        COST_MEASURE
    );
    for row in json["autoscaled"].as_array().into_iter().flatten() {
        let cell = |key: &str, digits: usize| row[key].as_f64().map_or("-".into(), |x| format!("{x:.digits$}"));
        let status = match row["status"].as_str().unwrap_or("") {
            "skipped" => format!("skipped: {}", row["skipped"].as_str().unwrap_or("")),
            other => other.to_string(),
        };
        md.push_str(&format!(
            "| {} | {}-{} | {} | {} | {} | {} | {} | {} | {} replicas, {}/hour | {} | {} |\n",
            md_text(row["configuration"].as_str().unwrap_or("")),
            row["min_replicas"],
            row["max_replicas"],
            cell("target_ongoing_requests", 1),
            row["peak_replicas"].as_u64().map_or("-".into(), |p| p.to_string()),
            cell("gpus", 2),
            cell("gpu_hours", 3),
            row["cost_usd_per_hour"].as_f64().map_or("-".into(), money),
            row["run_cost_usd"].as_f64().map_or("-".into(), money),
            row["fixed_replicas"],
            row["fixed_cost_usd_per_hour"].as_f64().map_or("-".into(), money),
            if row["status"] == "skipped" { "-".into() } else { slo_cell(row) },
            md_text(&status),
        ));
    }
    md
}
