//! `symbiote plan` (issue 13): the search against brute force, the cost arithmetic by hand,
//! more traffic never cheaper, the same answer at any thread count, and the command line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};
use symbiote::plan::offline::{Job, Objective};
use symbiote::plan::search::Settings;
use symbiote::plan::slo::Slo;
use symbiote::plan::space::Space;
use symbiote::plan::{output, plan, plan_job, traffic, Plan, PlanInput, RateTarget};
use symbiote::report::metrics::Capture;
use symbiote::serving::router::RouterPolicy;
use symbiote::sim::run::run_case;

use crate::{symbiote, temp_dir};

/// 1,200 requests at 20 req/s of 200-1200 prompt and 8-64 output tokens on Llama-3.1-8B; two
/// GPU types, two batch limits, two routers: eight configurations.
pub(crate) fn input(rate: RateTarget) -> PlanInput {
    PlanInput {
        base: json!({"model": "llama-3.1-8b",
                     "workload": {"arrival": {"rate": 20}, "num_requests": 1200,
                                  "prompt": {"dist": "uniform", "min": 200, "max": 1200},
                                  "output": {"dist": "uniform", "min": 8, "max": 64}}}),
        base_dir: PathBuf::from("."),
        workload_label: "test".into(),
        space: Space {
            gpus: vec!["a100-80gb".into(), "h100-80gb".into()],
            quants: vec!["fp16".into()],
            tps: vec![1],
            max_num_seqs: vec![Some(16), None],
            max_num_batched_tokens: vec![None],
            chunked_prefill: vec![None],
            kv_offloading: vec![None],
            routers: vec![RouterPolicy::LeastOutstanding, RouterPolicy::RoundRobin],
            pd_splits: vec![None],
        },
        slo: Slo::parse("p99_ttft_ms=500,p99_itl_ms=60", None).unwrap(),
        rate,
        prices: [("a100-80gb", 1.5), ("h100-80gb", 2.5)]
            .into_iter()
            .map(|(g, p)| (g.to_string(), (p, "test price".to_string())))
            .collect::<BTreeMap<_, _>>(),
        seed: 1,
        screen_requests: 300,
        settings: Settings { max_replicas: 12, precision: 0.04, verify_per_gpu: 3 },
        autoscale: None,
    }
}

/// Every candidate at every replica count, each run to its end: the cheapest (cost, then
/// place in the space) and its replica count.
fn brute_force(plan: &Plan, input: &PlanInput) -> Option<(usize, u32, f64)> {
    let mut best: Option<(usize, u32, f64)> = None;
    for (i, candidate) in plan.candidates.iter().enumerate() {
        let census = traffic::census(&candidate.case.workload, input.seed, &candidate.case.base_dir).unwrap();
        let workload = traffic::faster(&candidate.case.workload, plan.target_rate / census.rate);
        for replicas in 1..=input.settings.max_replicas {
            let mut case = candidate.case.clone();
            case.replicas = replicas;
            case.workload = workload.clone();
            case.slo_watch = Some(input.slo.watch(&census, false));
            let result = run_case(&case, input.seed, Capture::default());
            if input.slo.met(&result) {
                let cost = replicas as f64 * candidate.case.tp as f64 * candidate.usd_per_gpu_hour;
                if best.is_none_or(|b| cost < b.2) {
                    best = Some((i, replicas, cost));
                }
                break;
            }
        }
    }
    best
}

#[test]
fn issue_13_the_search_finds_what_brute_force_finds() {
    let input = input(RateTarget::Native);
    let plan = plan(&input).unwrap();
    let (index, replicas, cost) = brute_force(&plan, &input).expect("some configuration meets the SLO");
    let winner = plan.winner.expect("the search found one too");
    let found = plan.verified[winner].as_ref().unwrap().run.as_ref().unwrap();
    assert_eq!(
        (plan.verified_cost(winner).unwrap(), found.replicas),
        (cost, replicas),
        "search: {} x {}; brute force: {} x {}",
        found.replicas,
        plan.candidates[winner].label(),
        replicas,
        plan.candidates[index].label()
    );
    // The search simulated far fewer requests than brute force would (8 candidates x up to 12
    // fleets x 1,200 requests).
    assert!(plan.work.total().requests < 8 * 12 * 1200 / 2, "{:?}", plan.work);
}

#[test]
fn issue_13_costs_add_up_by_hand() {
    let input = input(RateTarget::Native);
    let plan = plan(&input).unwrap();
    let report = output::report_json(&plan, &input);
    let w = &report["winner"];
    let (replicas, tp, price) =
        (w["replicas"].as_f64().unwrap(), w["tp"].as_f64().unwrap(), w["usd_per_gpu_hour"].as_f64().unwrap());
    assert!((w["cost_usd_per_hour"].as_f64().unwrap() - replicas * tp * price).abs() < 1e-3);
    assert_eq!(w["gpus"].as_f64().unwrap(), replicas * tp);
    let run = plan.verified[plan.winner.unwrap()].as_ref().unwrap().run.as_ref().unwrap();
    // Dollars for the run's duration over millions of output tokens.
    let by_hand = replicas * tp * price * (run.duration_s / 3600.0) / (run.output_tokens as f64 / 1e6);
    assert!((w["cost_usd_per_million_output_tokens"].as_f64().unwrap() - by_hand).abs() < 1e-3, "{by_hand}");
    // The SLO margin is stated against each threshold.
    assert_eq!(w["slo"]["p99_ttft_ms"]["threshold_ms"], json!(500.0));
    assert!(
        w["slo"]["p99_itl_ms"]["violations"].as_u64().unwrap()
            <= w["slo"]["p99_itl_ms"]["allowed_violations"].as_u64().unwrap()
    );
    assert_eq!(w["calibrated"], json!(plan.candidates[plan.winner.unwrap()].case.gpu.name == "h100-80gb"));
}

#[test]
fn issue_13_more_traffic_never_costs_less() {
    let mut last = 0.0;
    for factor in [1.0, 1.5, 2.0] {
        let plan = plan(&input(RateTarget::Speedup(factor))).unwrap();
        let cost = plan.winner.and_then(|w| plan.verified_cost(w)).unwrap_or(f64::INFINITY);
        assert!(cost >= last, "at {factor}x the rate the plan costs {cost} $/h, less than {last} $/h");
        last = cost;
    }
}

#[test]
fn issue_13_the_answer_does_not_depend_on_the_thread_count() {
    let input = input(RateTarget::Native);
    let report = |threads: usize| -> Value {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let plan = pool.install(|| plan(&input)).unwrap();
        output::report_json(&plan, &input)
    };
    assert_eq!(report(1).to_string(), report(2).to_string());
}

#[test]
fn issue_13_the_command_writes_a_report_and_a_winner_that_reruns() {
    let dir = temp_dir("plan-cli");
    let scenario = dir.join("traffic.json");
    std::fs::write(&scenario, json!({"name": "traffic", "base": input(RateTarget::Native).base}).to_string()).unwrap();
    let out = dir.join("out");
    let (code, stdout, stderr) = symbiote(&[
        "plan",
        scenario.to_str().unwrap(),
        "--gpus",
        "a100-80gb,h100-80gb",
        "--tp",
        "1",
        "--slo",
        "p99_ttft_ms=500,p99_itl_ms=60",
        "--max-replicas",
        "12",
        "--screen-requests",
        "300",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Cheapest: ") && stdout.contains("open "), "{stdout}");
    let folder = out.join("plan_traffic");
    let report: Value = serde_json::from_slice(&std::fs::read(folder.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["format"], json!(output::FORMAT));
    assert!(std::fs::read_to_string(folder.join("report.md")).unwrap().contains("Margin to the SLO"));
    let html = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Margin to the SLO") && !html.contains("**"), "report.html");
    // The winner reruns with `symbiote run` and meets the percentile SLO it carries.
    let (code, stdout, stderr) =
        symbiote(&["run", folder.join("winner.json").to_str().unwrap(), "--out", dir.join("rerun").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let rerun: Value =
        serde_json::from_slice(&std::fs::read(dir.join("rerun/plan_winner/report.json")).unwrap()).unwrap();
    let run = &rerun["cases"][0]["runs"][0];
    assert_eq!(run["outcome"], json!("completed"), "{run}");
    assert_eq!(run["replicas"].as_array().map(Vec::len), report["winner"]["replicas"].as_u64().map(|r| r as usize));
    assert!(run["metrics"]["p99_ttft_ms"].as_f64().unwrap() <= 500.0);

    // Bad input: exit 2 with what to fix.
    for (args, says) in [
        (vec!["--slo", "p99_ttft=5"], "end in _ms"),
        (vec!["--slo", "p99_ttft_ms=5", "--gpus", "nope"], "unknown gpu"),
        (vec!["--slo", "p99_ttft_ms=5", "--tp", "0"], "--tp"),
        (vec!["--slo", "p99_ttft_ms=5", "--rate", "0"], "--rate"),
    ] {
        let mut all = vec!["plan", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()];
        all.extend(args);
        let (code, _, stderr) = symbiote(&all);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
    let (code, _, stderr) = symbiote(&["plan", "--slo", "p99_ttft_ms=5"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--trace"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn batch_input() -> PlanInput {
    let mut input = input(RateTarget::Native);
    input.base = json!({"model": "llama-3.1-8b",
                        "workload": {"prompt": {"dist": "uniform", "min": 200, "max": 1200},
                                     "output": {"dist": "uniform", "min": 8, "max": 64}},
                        "batch": {"rows": 200_000, "batch_size": 32, "max_concurrent_batches": 4, "startup_s": 30}});
    input.space.routers = vec![RouterPolicy::RoundRobin];
    input.settings.max_replicas = 32;
    input
}

fn job(deadline_h: f64, objective: Objective) -> Job {
    Job { rows: 200_000, deadline_s: deadline_h * 3600.0, objective, sample_rows: 1000, verify_rows: 5000, seed: 1 }
}

#[test]
fn issue_13_a_batch_job_is_sized_by_hand_arithmetic_and_a_tighter_deadline_never_costs_less() {
    let input = batch_input();
    let (_, candidates, planned) = plan_job(&input, &job(1.0, Objective::Cost)).unwrap();
    let w = planned.winner.expect("some fleet finishes 200k rows in an hour");
    let (c, s) = (&candidates[w], &planned.sizings[w]);
    let (rate, r) = (s.rows_per_s.unwrap(), s.replicas.unwrap());
    // The fleet is the smallest whose share fits in the deadline after start-up.
    let makespan = |r: u64| 30.0 + 200_000u64.div_ceil(r) as f64 / rate;
    assert!(makespan(r as u64) <= 3600.0 && (r == 1 || makespan(r as u64 - 1) > 3600.0), "{r} replicas");
    assert!((s.makespan_s.unwrap() - makespan(r as u64)).abs() < 1e-6);
    let cost = r as f64 * c.case.tp as f64 * c.usd_per_gpu_hour * makespan(r as u64) / 3600.0;
    assert!((s.cost_usd.unwrap() - cost).abs() < 1e-9, "{} vs {cost}", s.cost_usd.unwrap());
    // The winner is the cheapest sized candidate.
    assert!(planned.sizings.iter().filter_map(|s| s.cost_usd).all(|other| other >= cost - 1e-9));
    let verification = planned.verification.as_ref().unwrap();
    assert_eq!(verification.rows_simulated, 5000, "the share is capped at --verify-rows");

    let mut last = 0.0;
    for deadline_h in [4.0, 1.0, 0.5] {
        let (_, _, planned) = plan_job(&input, &job(deadline_h, Objective::Cost)).unwrap();
        let cost = planned.winner.and_then(|w| planned.sizings[w].cost_usd).unwrap_or(f64::INFINITY);
        assert!(cost >= last - 1e-9, "a {deadline_h} h deadline costs {cost}, less than {last}");
        last = cost;
    }
    // Minimising the makespan takes every replica allowed.
    let (_, _, fastest) = plan_job(&input, &job(1.0, Objective::Makespan)).unwrap();
    assert_eq!(fastest.winner.and_then(|w| fastest.sizings[w].replicas), Some(32));
}
