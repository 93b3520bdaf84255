//! A plan as files: report.json (every configuration and what the search learned of it),
//! report.md (the answer first, then the evidence) and winner.json (a scenario file that
//! reruns the winning fleet with `symbiote run`).
//!
//! Honesty rules: every row says whether its GPU's step-time model is calibrated and the
//! error band that goes with it; the winner's margin to each target is stated; candidates
//! whose costs differ by less than their error band are reported as a tie.

use serde_json::{json, Map, Value};

use super::search::cost_per_hour;
use super::slo::Slo;
use super::space::router_name;
use super::{Plan, PlanInput};

/// The format tag of a plan's report.json.
pub const FORMAT: &str = "symbiote-plan/1";

pub(super) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Cost per million output tokens of candidate `i`'s verified run.
fn per_million_tokens(plan: &Plan, i: usize) -> Option<f64> {
    let run = plan.verified[i].as_ref()?.run.as_ref()?;
    let hours = run.duration_s / 3600.0;
    (run.output_tokens > 0)
        .then(|| cost_per_hour(&plan.candidates[i], run.replicas) * hours / (run.output_tokens as f64 / 1e6))
}

/// The row of candidate `i` in report.json.
fn candidate_json(plan: &Plan, slo: &Slo, i: usize) -> Map<String, Value> {
    let c = &plan.candidates[i];
    let e = &c.case.engine;
    let screen = &plan.screens[i];
    let mut row = Map::new();
    row.insert("label".into(), c.label().into());
    row.insert("gpu".into(), c.case.gpu.name.clone().into());
    row.insert("quant".into(), c.config.quant.clone().into());
    row.insert("tp".into(), c.case.tp.into());
    row.insert("max_num_seqs".into(), e.max_num_seqs.into());
    row.insert("max_num_batched_tokens".into(), e.max_num_batched_tokens.into());
    row.insert("enable_chunked_prefill".into(), e.enable_chunked_prefill.into());
    if let Some(size) = c.config.kv_offloading_size {
        row.insert("kv_offloading_size".into(), size.into());
    }
    row.insert("router".into(), router_name(c.config.router).into());
    row.insert("calibrated".into(), c.calibrated().into());
    row.insert("error_band".into(), c.error_band().into());
    row.insert("usd_per_gpu_hour".into(), c.usd_per_gpu_hour.into());
    row.insert("price_basis".into(), c.price_basis.clone().into());
    row.insert("knee_rps_per_replica".into(), screen.knee.map(|k| round(k, 4)).into());
    row.insert("knee_is_lower_bound".into(), screen.beyond_cap.into());
    row.insert("estimated_replicas".into(), plan.estimates[i].into());
    row.insert("estimated_usd_per_hour".into(), plan.estimated_cost(i).map(|x| round(x, 4)).into());
    if let Some(k) = screen.knee {
        let r = plan.estimates[i].unwrap_or(0) as f64;
        row.insert("estimated_capacity_rps".into(), round(k * r, 4).into());
    }
    let status = match (&plan.verified[i], screen.knee) {
        (Some(v), _) if v.run.is_some() => "verified",
        (Some(_), _) => "failed_verification",
        (None, None) => "cannot_meet_slo",
        (None, Some(_)) if plan.estimates[i].is_none() => "needs_more_replicas_than_allowed",
        (None, Some(_)) => "screened",
    };
    row.insert("status".into(), status.into());
    if let Some(run) = plan.verified[i].as_ref().and_then(|v| v.run.as_ref()) {
        row.insert("replicas".into(), run.replicas.into());
        row.insert("gpus".into(), (run.replicas as u64 * c.gpus_per_replica()).into());
        row.insert("cost_usd_per_hour".into(), round(cost_per_hour(c, run.replicas), 4).into());
        row.insert(
            "cost_usd_per_million_output_tokens".into(),
            per_million_tokens(plan, i).map(|x| round(x, 4)).into(),
        );
        if plan.autoscaled.is_some() {
            // Beside autoscaled fleets, the same measures for the fixed one.
            let gpu_hours = run.summary.get("gpu_hours").and_then(Value::as_f64).unwrap_or(0.0);
            row.insert("fleet".into(), "fixed".into());
            row.insert("gpu_hours".into(), round(gpu_hours, 4).into());
            row.insert("run_cost_usd".into(), round(gpu_hours * c.usd_per_gpu_hour, 4).into());
        }
        row.insert("slo".into(), slo_json(slo, &run.summary, &run.violations, &run.allowed).into());
    }
    if let Some(&(factor, capped)) = plan.headroom.get(&i) {
        row.insert("headroom_factor".into(), round(factor, 4).into());
        row.insert("headroom_is_lower_bound".into(), capped.into());
    } else if let (Some(run), Some(knee)) = (plan.verified[i].as_ref().and_then(|v| v.run.as_ref()), screen.knee) {
        // Not simulated: the screen's knee times the fleet, over the target rate.
        row.insert("estimated_headroom_factor".into(), round(knee * run.replicas as f64 / plan.target_rate, 4).into());
    }
    row
}

/// Each SLO target's observed value (from `summary`, when the run finished), threshold,
/// violations against the allowance, and margin.
pub(super) fn slo_json(
    slo: &Slo,
    summary: &Map<String, Value>,
    violations: &[u64],
    allowed: &[u64],
) -> Map<String, Value> {
    let mut observed = Map::new();
    for (k, t) in slo.targets.iter().enumerate() {
        let key = t.key();
        let value = summary.get(&key).and_then(Value::as_f64);
        observed.insert(
            key.clone(),
            json!({"value_ms": value.map(|x| round(x, 3)), "threshold_ms": t.threshold_ms,
                   "violations": violations.get(k), "allowed_violations": allowed.get(k),
                   "margin": value.map(|x| round(1.0 - x / t.threshold_ms, 4))}),
        );
    }
    observed
}

/// Indices on the frontier of `points` (index, cost, value), lower cost and `better` value.
fn frontier(mut points: Vec<(usize, f64, f64)>, higher_is_better: bool) -> Vec<usize> {
    points.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut out = Vec::new();
    let mut best: Option<f64> = None;
    for (i, _, v) in points {
        let improves = best.is_none_or(|b| if higher_is_better { v > b } else { v < b });
        if improves {
            out.push(i);
            best = Some(v);
        }
    }
    out
}

/// Whether fixed fleets may be the answer (always, unless `--autoscale` left out `off`).
/// The short-request caveat (`report::caveats`) as a sentence to follow the "How sure" one, or
/// nothing for a workload of longer requests (or one whose lengths are not known up front).
fn caveat_sentence(mean_tokens: Option<f64>) -> String {
    mean_tokens.and_then(crate::report::caveats::short_requests).map_or(String::new(), |line| {
        let mut line = line;
        line[..1].make_ascii_uppercase();
        format!(" **Short requests:** {line}.")
    })
}

/// [`caveat_sentence`] for the planned traffic's mean prompt + output tokens.
fn short_request_caveat(plan: &Plan) -> String {
    let f = &plan.full_census;
    caveat_sentence((f.requests > 0).then(|| (f.input_tokens + f.output_tokens) as f64 / f.requests as f64))
}

/// The weight-only caveat (`report::caveats`) as a sentence, for a candidate whose quantization
/// runs as weight-only kernels on its GPU; nothing otherwise.
fn weight_only_sentence(c: &super::space::Candidate) -> String {
    if !c.case.quant.weight_only(&c.case.gpu) {
        return String::new();
    }
    let line = crate::report::caveats::weight_only(&[format!("{} on {}", c.case.quant, c.case.gpu.name)]);
    format!(" **Weight-only:** {line}.")
}

pub fn fixed_offered(input: &PlanInput) -> bool {
    input.autoscale.as_ref().is_none_or(|a| a.fixed)
}

/// Fleets within the error band of the answer's cost, the answer excluded: (label, $/hour),
/// cheapest first (ties on cost: fixed fleets, then autoscaled, each in the order of the space).
pub fn ties(plan: &Plan, input: &PlanInput) -> Vec<(String, f64)> {
    // (kind: 0 fixed, 1 autoscaled; index; cost per hour; error band)
    let mut fleets: Vec<(u8, usize, f64, f64)> = Vec::new();
    if fixed_offered(input) {
        for (i, c) in plan.candidates.iter().enumerate() {
            if let Some(cost) = plan.verified_cost(i) {
                fleets.push((0, i, cost, c.error_band()));
            }
        }
    }
    for (k, r) in plan.autoscaled.iter().flatten().enumerate() {
        if let Some(cost) = r.cost_per_hour(&plan.candidates) {
            fleets.push((1, k, cost, plan.candidates[r.candidate].error_band()));
        }
    }
    let answer = match (plan.autoscaled_winner, plan.winner) {
        (Some(k), _) => (1, k),
        (None, Some(w)) if fixed_offered(input) => (0, w),
        _ => return Vec::new(),
    };
    let Some(&(_, _, cost, band)) = fleets.iter().find(|f| (f.0, f.1) == answer) else { return Vec::new() };
    let mut out: Vec<(u8, usize, f64, f64)> =
        fleets.into_iter().filter(|f| (f.0, f.1) != answer && f.2 <= cost * (1.0 + f.3.max(band))).collect();
    out.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let autoscaled = plan.autoscaled.as_deref().unwrap_or(&[]);
    out.into_iter()
        .map(|(kind, i, cost, _)| {
            let label = if kind == 0 { plan.candidates[i].label() } else { autoscaled[i].label(&plan.candidates) };
            (label, cost)
        })
        .collect()
}

/// report.json.
pub fn report_json(plan: &Plan, input: &PlanInput) -> Value {
    let slo = &input.slo;
    let f = &plan.full_census;
    let pruned = plan.rows.iter().filter(|r| r.pruned.is_some()).count();
    let verified = plan.verified.iter().filter(|v| v.is_some()).count();
    let rows: Vec<Value> = plan
        .rows
        .iter()
        .map(|r| match (r.candidate, &r.pruned) {
            (Some(i), _) => Value::Object(candidate_json(plan, slo, i)),
            (None, why) => json!({"gpu": r.config.gpu, "quant": r.config.quant, "tp": r.config.tp,
                                   "max_num_seqs": r.config.max_num_seqs, "max_num_batched_tokens": r.config.max_num_batched_tokens,
                                   "enable_chunked_prefill": r.config.chunked_prefill, "router": router_name(r.config.router),
                                   "status": "pruned", "pruned": why}),
        })
        .collect();
    let latency_key = slo.targets[0].key();
    let latency_points: Vec<(usize, f64, f64)> = (0..plan.candidates.len())
        .filter_map(|i| {
            let run = plan.verified[i].as_ref()?.run.as_ref()?;
            Some((i, plan.verified_cost(i)?, run.summary.get(&latency_key)?.as_f64()?))
        })
        .collect();
    let capacity_points: Vec<(usize, f64, f64)> = (0..plan.candidates.len())
        .filter_map(|i| Some((i, plan.estimated_cost(i)?, plan.screens[i].knee? * plan.estimates[i]? as f64)))
        .collect();
    let labels =
        |v: Vec<usize>| -> Vec<Value> { v.into_iter().map(|i| Value::from(plan.candidates[i].label())).collect() };
    let tied: Vec<Value> = ties(plan, input).into_iter().map(|(label, _)| Value::from(label)).collect();
    let winner = match (plan.autoscaled_winner, plan.winner) {
        (Some(k), _) => Some(super::autoscale_output::autoscaled_json(plan, input, k)),
        (None, Some(w)) if fixed_offered(input) => Some(candidate_json(plan, slo, w)),
        _ => None,
    }
    .map(|mut row| {
        row.insert("ties".into(), tied.into());
        Value::Object(row)
    });
    let mut out = json!({
        "format": FORMAT,
        "workload": {
            "label": input.workload_label, "requests": f.requests, "span_s": round(f.span_s, 3),
            "native_rate_rps": round(f.rate, 6), "target_rate_rps": round(plan.target_rate, 6),
            "mean_input_tokens": round(f.input_tokens as f64 / f.requests as f64, 2),
            "mean_output_tokens": round(f.output_tokens as f64 / f.requests as f64, 2),
            "model": input.base.get("model").cloned().unwrap_or(Value::Null), "seed": input.seed,
        },
        "slo": {"text": slo.describe(), "goodput_pct": slo.goodput_pct,
                "targets": slo.targets.iter().map(|t| json!({"key": t.key(), "threshold_ms": t.threshold_ms})).collect::<Vec<_>>()},
        "search": {
            "configurations": plan.rows.len(), "pruned": pruned, "screened": plan.candidates.len(), "verified": verified,
            "simulations": plan.work.total().simulations, "simulated_requests": plan.work.total().requests,
            "by_stage": {"screen": {"simulations": plan.work.screen.simulations, "requests": plan.work.screen.requests},
                         "verify": {"simulations": plan.work.verify.simulations, "requests": plan.work.verify.requests},
                         "headroom": {"simulations": plan.work.headroom.simulations, "requests": plan.work.headroom.requests}},
            "screen_sample_requests": plan.sample_census.requests, "knee_precision": input.settings.precision,
            "max_replicas": input.settings.max_replicas, "verify_per_gpu": input.settings.verify_per_gpu,
            "prior_fleet_ratio": super::search::PRIOR_FLEET_RATIO,
            "method": "screen every configuration on one replica with a thinned sample (knee by geometric bisection), verify the cheapest per GPU type on the full traffic (smallest replica count meeting the SLO), measure the winner's headroom on the full traffic",
        },
        "winner": winner,
        "best_per_gpu": plan.best_per_gpu.values().map(|&i| Value::Object(candidate_json(plan, slo, i))).collect::<Vec<_>>(),
        "pareto_cost_vs_latency": {"latency_key": latency_key, "configurations": labels(frontier(latency_points, false))},
        "pareto_cost_vs_capacity": labels(frontier(capacity_points, true)),
        "configurations": rows,
    });
    if input.autoscale.is_some() {
        super::autoscale_output::add_json(&mut out, plan, input);
    }
    out
}

pub(super) fn money(x: f64) -> String {
    format!("${x:.2}")
}

/// report.md: the answer, the per-GPU table, the frontiers, then every screened configuration.
pub fn report_markdown(plan: &Plan, input: &PlanInput, json: &Value) -> String {
    let mut md = String::new();
    let w = &json["workload"];
    md.push_str(&format!("# Plan: {}\n\n", crate::report::markdown::md_text(&input.workload_label)));
    md.push_str(&format!(
        "Traffic: {} requests over {:.0} s, {:.3} req/s as given, planned at **{:.3} req/s**; mean {} input / {} output tokens; model `{}`.\n\n",
        w["requests"], w["span_s"].as_f64().unwrap_or(0.0), w["native_rate_rps"].as_f64().unwrap_or(0.0), plan.target_rate,
        w["mean_input_tokens"], w["mean_output_tokens"], w["model"].as_str().unwrap_or("?")
    ));
    md.push_str(&format!("SLO: {}.\n\n", input.slo.describe()));
    let answer = match (plan.autoscaled_winner, plan.winner) {
        (Some(k), _) => plan.autoscaled.as_ref().map(|runs| runs[k].candidate),
        (None, w) => w.filter(|_| fixed_offered(input)),
    };
    match answer {
        Some(i) => {
            let c = &plan.candidates[i];
            let row = &json["winner"];
            if plan.autoscaled_winner.is_some() {
                md.push_str(&super::autoscale_output::headline(row));
            } else {
                md.push_str(&format!(
                    "**Cheapest: {} x {}** ({} GPUs) at **{}/hour**, {} per million output tokens.\n\n",
                    row["replicas"],
                    c.label(),
                    row["gpus"],
                    money(row["cost_usd_per_hour"].as_f64().unwrap_or(0.0)),
                    row["cost_usd_per_million_output_tokens"].as_f64().map_or("-".into(), money)
                ));
            }
            let margins: Vec<String> = input
                .slo
                .targets
                .iter()
                .map(|t| {
                    let o = &row["slo"][t.key()];
                    let value = o["value_ms"].as_f64().map_or("-".into(), |v| format!("{v:.1} ms"));
                    let margin = o["margin"].as_f64().map_or(String::new(), |m| format!(", {:.0}% under", m * 100.0));
                    format!(
                        "{} {value} against {} ms{margin} ({} of {} allowed violations)",
                        t.key(),
                        t.threshold_ms,
                        o["violations"],
                        o["allowed_violations"]
                    )
                })
                .collect();
            md.push_str(&format!("Margin to the SLO: {}.\n\n", margins.join("; ")));
            if let Some(&(factor, capped)) = plan.headroom.get(&i) {
                md.push_str(&format!(
                    "Headroom: the rate can grow by {}{:.0}% (to {:.3} req/s) before the SLO breaks on this fleet.\n\n",
                    if capped { "at least " } else { "" },
                    (factor - 1.0) * 100.0,
                    factor * plan.target_rate
                ));
            }
            let how_sure = if c.calibrated() {
                format!(
                    "{}'s step times rest on measurements of it (vLLM runs or kernel timings; error band {:.0}%).",
                    c.case.gpu.name,
                    c.error_band() * 100.0
                )
            } else {
                format!(
                    "**{} is uncalibrated**: its step times are datasheet estimates, off by up to {:.0}% on measured runs of uncalibrated GPUs; treat the replica count as a first estimate.",
                    c.case.gpu.name,
                    c.error_band() * 100.0
                )
            };
            md.push_str(&format!(
                "{how_sure}{}{} Price: {} per GPU-hour ({}).\n\n",
                short_request_caveat(plan),
                weight_only_sentence(c),
                money(c.usd_per_gpu_hour),
                c.price_basis
            ));
            let tied = ties(plan, input);
            if !tied.is_empty() {
                let names: Vec<String> =
                    tied.iter().map(|(label, cost)| format!("{label} ({}/hour)", money(*cost))).collect();
                md.push_str(&format!(
                    "**Tie** within the simulator's error band: {}. The simulator cannot tell these apart; measure before choosing.\n\n",
                    names.join("; ")
                ));
            }
        }
        None => md.push_str("**No configuration met the SLO** within the space and replica limit searched.\n\n"),
    }
    md.push_str("## Cheapest per GPU type\n\n| GPU | configuration | replicas | GPUs | $/hour | $/M output tokens | headroom | calibrated |\n|---|---|---:|---:|---:|---:|---:|---|\n");
    for row in json["best_per_gpu"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row["gpu"].as_str().unwrap_or(""),
            crate::report::markdown::md_text(row["label"].as_str().unwrap_or("")),
            row["replicas"],
            row["gpus"],
            money(row["cost_usd_per_hour"].as_f64().unwrap_or(0.0)),
            row["cost_usd_per_million_output_tokens"].as_f64().map_or("-".into(), money),
            match (row["headroom_factor"].as_f64(), row["estimated_headroom_factor"].as_f64()) {
                (Some(h), _) => {
                    format!(
                        "{}{:.0}%",
                        if row["headroom_is_lower_bound"] == true { ">=" } else { "" },
                        (h - 1.0) * 100.0
                    )
                }
                (None, Some(h)) => format!("{:.0}% (est.)", (h - 1.0) * 100.0),
                (None, None) => "-".into(),
            },
            if row["calibrated"] == true { "yes" } else { "no (uncalibrated)" }
        ));
    }
    if input.autoscale.is_some() {
        md.push_str(&super::autoscale_output::markdown_section(json, input));
    }
    let list = |v: &Value| {
        v.as_array().map_or(String::new(), |a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
    };
    md.push_str(&format!(
        "\n## Pareto frontiers\n\nCost per hour against {} (verified fleets): {}.\n\nCost per hour against capacity (estimated fleets, knee x replicas): {}.\n\n",
        json["pareto_cost_vs_latency"]["latency_key"].as_str().unwrap_or(""),
        list(&json["pareto_cost_vs_latency"]["configurations"]),
        list(&json["pareto_cost_vs_capacity"])
    ));
    let s = &json["search"];
    md.push_str(&format!(
        "## How it was searched\n\n{} configurations: {} pruned before simulating, {} screened, {} verified; {} simulations, {} simulated requests. Screening sample: {} requests; knee precision {:.0}%; at most {} replicas.\n\n",
        s["configurations"], s["pruned"], s["screened"], s["verified"], s["simulations"], s["simulated_requests"],
        s["screen_sample_requests"], input.settings.precision * 100.0, input.settings.max_replicas
    ));
    let mut reasons: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in &plan.rows {
        if let Some(why) = &r.pruned {
            let kind = why.split(':').next().unwrap_or(why).to_string();
            *reasons.entry(kind).or_default() += 1;
        }
    }
    for (why, n) in reasons {
        md.push_str(&format!("- pruned, {}: {n}\n", crate::report::markdown::md_text(&why)));
    }
    md.push_str("\n## Screened configurations (cheapest estimate first, up to 40)\n\n| configuration | knee req/s per replica | est. replicas | est. $/hour | status |\n|---|---:|---:|---:|---|\n");
    let mut order: Vec<usize> = (0..plan.candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) =
            (plan.estimated_cost(a).unwrap_or(f64::INFINITY), plan.estimated_cost(b).unwrap_or(f64::INFINITY));
        ca.total_cmp(&cb).then(a.cmp(&b))
    });
    for &i in order.iter().take(40) {
        let row = candidate_json(plan, &input.slo, i);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            crate::report::markdown::md_text(&plan.candidates[i].label()),
            plan.screens[i]
                .knee
                .map_or("-".into(), |k| format!("{}{k:.3}", if plan.screens[i].beyond_cap { ">=" } else { "" })),
            plan.estimates[i].map_or("-".into(), |r| r.to_string()),
            plan.estimated_cost(i).map_or("-".into(), money),
            row["status"].as_str().unwrap_or("")
        ));
    }
    md
}

/// winner.json: a scenario file that reruns the winning fleet (`symbiote run winner.json`).
pub fn winner_scenario(plan: &Plan, input: &PlanInput) -> Option<Value> {
    let (c, mut case, fleet_text, cost) = match (plan.autoscaled_winner, plan.winner) {
        (Some(k), _) => {
            let run = &plan.autoscaled.as_ref()?[k];
            let c = &plan.candidates[run.candidate];
            let mut case = super::space::merged(&input.base, &c.config.overrides(false));
            let range = (run.min_replicas, run.max_replicas);
            case["fleet"] = super::autoscale::fleet_json(
                input.autoscale.as_ref()?,
                &router_name(c.config.router),
                range,
                run.target_ongoing_requests?,
            );
            (c, case, run.label(&plan.candidates), run.cost_per_hour(&plan.candidates)?)
        }
        (None, Some(w)) if fixed_offered(input) => {
            let c = &plan.candidates[w];
            let replicas = plan.verified[w].as_ref()?.run.as_ref()?.replicas;
            let mut case = super::space::merged(&input.base, &c.config.overrides(false));
            match &c.config.pd {
                None => case["fleet"]["replicas"] = replicas.into(),
                Some(pd) => {
                    case["fleet"]["disaggregation"]["prefill"]["replicas"] = (pd.prefill * replicas).into();
                    case["fleet"]["disaggregation"]["decode"]["replicas"] = (pd.decode * replicas).into();
                }
            }
            (c, case, format!("{replicas} x {}", c.label()), cost_per_hour(c, replicas))
        }
        _ => return None,
    };
    if let Some(trace) = case.pointer_mut("/workload/trace") {
        // Make the path independent of where the file is written.
        if let Some(path) = trace.get("path").and_then(Value::as_str) {
            let full = input.base_dir.join(path);
            trace["path"] = full.display().to_string().into();
        }
        let speed =
            plan.target_rate / plan.full_census.rate * trace.get("speedup").and_then(Value::as_f64).unwrap_or(1.0);
        trace["speedup"] = speed.into();
    } else if plan.target_rate != plan.full_census.rate {
        let spec = super::traffic::faster(&c.case.workload, plan.target_rate / plan.full_census.rate);
        case["workload"] = serde_json::to_value(&spec).ok()?;
    }
    let mut slo = Map::new();
    for t in input.slo.targets.iter().filter(|t| t.percentile == 99.0) {
        if let Some(key) = match t.metric {
            crate::report::attainment::SloMetric::Ttft => Some("p99_ttft_ms"),
            crate::report::attainment::SloMetric::Tpot => Some("p99_tpot_ms"),
            crate::report::attainment::SloMetric::E2el => Some("p99_e2el_ms"),
            crate::report::attainment::SloMetric::Itl => None,
        } {
            slo.insert(key.into(), t.threshold_ms.into());
        }
    }
    Some(json!({
        "name": "plan_winner",
        "description": format!("The cheapest deployment `symbiote plan` found for {}: {} at {:.2} $/hour, planned for {:.3} req/s under {}.",
                               input.workload_label, fleet_text, cost, plan.target_rate, input.slo.describe()),
        "seeds": [input.seed],
        "slo": slo,
        "base": case,
        "cases": [{"name": "winner"}],
    }))
}

/// report.json of an offline batch-job plan.
pub fn offline_json(
    rows: &[super::Row],
    candidates: &[super::space::Candidate],
    planned: &super::offline::OfflinePlan,
    input: &PlanInput,
    job: &super::offline::Job,
) -> Value {
    let configurations: Vec<Value> = rows
        .iter()
        .map(|r| match r.candidate {
            Some(i) => {
                let mut row = super::offline::row(&candidates[i], &planned.sizings[i]);
                row["status"] = if planned.sizings[i].replicas.is_some() { "sized" } else { "cannot_meet_deadline" }.into();
                row
            }
            None => json!({"gpu": r.config.gpu, "quant": r.config.quant, "tp": r.config.tp, "status": "pruned", "pruned": r.pruned}),
        })
        .collect();
    let mut best_per_gpu: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let Some(cost) = planned.sizings[i].cost_usd else { continue };
        let better = best_per_gpu
            .get(&c.case.gpu.name)
            .is_none_or(|&b| cost < planned.sizings[b].cost_usd.unwrap_or(f64::INFINITY));
        if better {
            best_per_gpu.insert(c.case.gpu.name.clone(), i);
        }
    }
    let points: Vec<(usize, f64, f64)> = (0..candidates.len())
        .filter_map(|i| Some((i, planned.sizings[i].cost_usd?, planned.sizings[i].makespan_s?)))
        .collect();
    let winner = planned.winner.map(|w| {
        let mut row = super::offline::row(&candidates[w], &planned.sizings[w]);
        if let Some(v) = &planned.verification {
            row["verified"] = json!({"replicas": v.replicas, "share_rows": v.share_rows, "rows_simulated": v.rows_simulated,
                                     "makespan_h": v.makespan_s / 3600.0, "meets_deadline": v.meets_deadline,
                                     "job_cost_usd": v.replicas as f64 * candidates[w].case.tp as f64 * candidates[w].usd_per_gpu_hour * v.makespan_s / 3600.0});
        }
        row["error_band"] = candidates[w].error_band().into();
        row
    });
    json!({
        "format": FORMAT,
        "mode": "offline",
        "job": {"rows": job.rows, "deadline_h": job.deadline_s / 3600.0, "objective": format!("{:?}", job.objective).to_lowercase(),
                "model": input.base.get("model").cloned().unwrap_or(Value::Null), "seed": job.seed, "label": input.workload_label},
        "search": {"configurations": rows.len(), "pruned": rows.iter().filter(|r| r.pruned.is_some()).count(),
                   "sized": candidates.len(), "sample_rows": job.sample_rows.min(job.rows), "verify_rows": job.verify_rows,
                   "simulations": planned.work.simulations, "simulated_requests": planned.work.requests,
                   "max_replicas": input.settings.max_replicas,
                   "method": "one replica per configuration runs a sample of rows without start-up for its steady throughput; the fleet for the deadline and the job's makespan and cost are extrapolated; the winner's per-replica share is simulated with its start-up"},
        "winner": winner,
        "best_per_gpu": best_per_gpu.values().map(|&i| super::offline::row(&candidates[i], &planned.sizings[i])).collect::<Vec<_>>(),
        "pareto_cost_vs_makespan": frontier(points, false).into_iter().map(|i| Value::from(candidates[i].label())).collect::<Vec<_>>(),
        "configurations": configurations,
    })
}

/// report.md of an offline batch-job plan.
pub fn offline_markdown(
    json: &Value,
    candidates: &[super::space::Candidate],
    planned: &super::offline::OfflinePlan,
) -> String {
    let j = &json["job"];
    let mut md = format!(
        "# Plan: {} (Ray Data batch job)\n\n{} rows of `{}`, deadline {} h, objective: {}.\n\n",
        crate::report::markdown::md_text(j["label"].as_str().unwrap_or("")),
        j["rows"],
        j["model"].as_str().unwrap_or("?"),
        j["deadline_h"],
        j["objective"].as_str().unwrap_or("")
    );
    match (planned.winner, &json["winner"]) {
        (Some(w), row) => {
            let c = &candidates[w];
            let v = &row["verified"];
            md.push_str(&format!(
                "**Winner: {} x {}** ({} GPUs): {:.2} h, **${:.2}** for the job ({:.0} rows/s per replica, start-up {:.0} s).\n\n",
                v["replicas"], row["label"].as_str().unwrap_or(""), v["replicas"].as_u64().unwrap_or(0) * c.case.tp,
                v["makespan_h"].as_f64().unwrap_or(0.0), v["job_cost_usd"].as_f64().unwrap_or(0.0),
                row["rows_per_s_per_replica"].as_f64().unwrap_or(0.0), row["startup_s"].as_f64().unwrap_or(0.0)
            ));
            md.push_str(&format!(
                "Verified: one replica's share of {} rows, {} of them simulated{}; it {} the deadline.\n\n",
                v["share_rows"],
                v["rows_simulated"],
                if v["share_rows"] == v["rows_simulated"] {
                    ""
                } else {
                    " (the rest extrapolated at the simulated rate)"
                },
                if v["meets_deadline"] == true { "meets" } else { "**misses**" }
            ));
            md.push_str(&if c.calibrated() {
                format!("{}'s step times rest on measurements of it (vLLM runs or kernel timings; error band {:.0}%).", c.case.gpu.name, c.error_band() * 100.0)
            } else {
                format!("**{} is uncalibrated**: throughput may be off by up to {:.0}%; leave that much slack in the deadline.", c.case.gpu.name, c.error_band() * 100.0)
            });
            let w = &c.case.workload;
            let mean = w.prompt.as_ref().zip(w.output.as_ref()).map(|(p, o)| p.mean() + o.mean());
            md.push_str(&format!("{}{}\n\n", caveat_sentence(mean), weight_only_sentence(c)));
        }
        _ => md.push_str("**No configuration finishes within the deadline** with the replicas allowed.\n\n"),
    }
    md.push_str("## Cheapest per GPU type\n\n| configuration | rows/s per replica | replicas | GPUs | hours | job $ | calibrated |\n|---|---:|---:|---:|---:|---:|---|\n");
    for row in json["best_per_gpu"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {:.1} | {} | {} | {:.2} | {:.2} | {} |\n",
            crate::report::markdown::md_text(row["label"].as_str().unwrap_or("")),
            row["rows_per_s_per_replica"].as_f64().unwrap_or(0.0),
            row["replicas"],
            row["gpus"],
            row["makespan_h"].as_f64().unwrap_or(0.0),
            row["job_cost_usd"].as_f64().unwrap_or(0.0),
            if row["calibrated"] == true { "yes" } else { "no (uncalibrated)" }
        ));
    }
    let s = &json["search"];
    md.push_str(&format!(
        "\n## How it was searched\n\n{} configurations: {} pruned, {} sized on {} sample rows each; {} simulations, {} simulated rows.\n",
        s["configurations"], s["pruned"], s["sized"], s["sample_rows"], s["simulations"], s["simulated_requests"]
    ));
    md
}

/// winner.json of an offline plan: the batch job with the winning fleet.
pub fn offline_winner(
    input: &PlanInput,
    candidates: &[super::space::Candidate],
    planned: &super::offline::OfflinePlan,
    job: &super::offline::Job,
) -> Option<Value> {
    let w = planned.winner?;
    let replicas = planned.verification.as_ref()?.replicas;
    let mut case = super::space::merged(&input.base, &candidates[w].config.overrides(true));
    case["batch"]["concurrency"] = replicas.into();
    case["batch"]["rows"] = job.rows.into();
    Some(json!({
        "name": "plan_winner",
        "description": format!("The deployment `symbiote plan` chose for {} rows within {} h: {} replicas of {}.", job.rows, job.deadline_s / 3600.0, replicas, candidates[w].label()),
        "seeds": [job.seed],
        "base": case,
        "cases": [{"name": "winner", "expect": {"outcome": "completed"}}],
    }))
}

/// report.html: report.md as a page, with bar charts of each GPU type's cheapest fleet and of
/// what the screen measured.
pub fn report_html(json: &Value, md: &str) -> String {
    use crate::report::html::{render_page, PageChart};
    let offline = json["mode"] == "offline";
    let best: Vec<&Value> = json["best_per_gpu"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let label = |row: &Value| row["label"].as_str().unwrap_or("").to_string();
    let (cost_key, cost_unit, cost_title) = if offline {
        ("job_cost_usd", "$", "Cheapest job per GPU type, US dollars")
    } else {
        ("cost_usd_per_hour", "$/hour", "Cheapest fleet per GPU type, US dollars per hour")
    };
    let mut charts = vec![PageChart {
        id: "cost".into(),
        title: cost_title.into(),
        unit: cost_unit,
        bars: best.iter().map(|r| (label(r), r[cost_key].as_f64())).collect(),
    }];
    let configurations: Vec<&Value> = json["configurations"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    if offline {
        let rows: Vec<(String, Option<f64>)> = configurations
            .iter()
            .filter(|r| r["status"] != "pruned")
            .take(40)
            .map(|r| (label(r), r["rows_per_s_per_replica"].as_f64()))
            .collect();
        charts.push(PageChart {
            id: "throughput".into(),
            title: "Rows per second of one replica (first 40 configurations)".into(),
            unit: "rows/s",
            bars: rows,
        });
    } else {
        let mut screened: Vec<&&Value> = configurations.iter().filter(|r| r["status"] != "pruned").collect();
        screened.sort_by(|a, b| {
            let cost = |r: &Value| r["estimated_usd_per_hour"].as_f64().unwrap_or(f64::INFINITY);
            cost(a).total_cmp(&cost(b))
        });
        let rows: Vec<(String, Option<f64>)> =
            screened.iter().take(40).map(|r| (label(r), r["knee_rps_per_replica"].as_f64())).collect();
        charts.push(PageChart {
            id: "knee".into(),
            title: "Knee: the largest rate per replica meeting the SLO on the screening sample (cheapest 40 estimates)"
                .into(),
            unit: "req/s",
            bars: rows,
        });
    }
    let title = md.lines().next().unwrap_or("# Plan").trim_start_matches("# ").to_string();
    render_page(&title, md, &charts)
}
