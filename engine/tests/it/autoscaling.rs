//! Ray Serve autoscaling (issue 17, item 3): the cold start of a scale-up worked by hand, GPU
//! time from the scale events, determinism, and the validation errors of bad configs.
// See: issue 17

use symbiote::hardware::shape::ParamBreakdown;
use symbiote::hardware::Quant;
use symbiote::report::metrics::{Capture, TimelineRow};
use symbiote::report::summary::summarize;
use symbiote::scenario::parse;
use symbiote::sim::run::{run_case, Outcome};
use symbiote::sim::{Nanos, SimTime};

use crate::scenario;

/// A tiny fleet on the constant step-time model (10 ms a step): one replica up, at most two,
/// `target_ongoing_requests` 1, no upscale delay, the metric published every 0.1 s from a window
/// of one 0.5 s record, arrivals every 0.5 s for 15 s, then every 2 s. `load_gbps` is set from the model's weight bytes
/// so that the weights take exactly 3 s; with `engine_startup_s` 7 the cold start is 10 s.
fn tiny_fleet(extra: &str) -> String {
    let s = scenario(&case_text("1", ""));
    let weights = ParamBreakdown::of(&s.cases[0].model).weight_bytes_per_rank(Quant::Bf16, 1);
    case_text(&format!("{:?}", weights / 3e9), extra)
}

fn case_text(load_gbps: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "autoscaling", "base": {{"model": "qwen2.5-0.5b", "gpu": "a100-80gb", "quant": "bf16",
            "step_time": {{"model": "constant", "step_ms": 10}},
            "fleet": {{"router": "least_outstanding",
                      "autoscaling_config": {{"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
                          "upscale_delay_s": 0, "downscale_delay_s": 5, "metrics_interval_s": 0.1,
                          "look_back_period_s": 0.5 {extra}}},
                      "cold_start": {{"load_gbps": {load_gbps}, "engine_startup_s": 7}}}},
            "workload": {{"arrival": {{"process": "constant", "rate": 2,
                                      "multipliers": [{{"start_s": 15, "end_s": 30, "factor": 0.25}}]}}, "duration_s": 30,
                         "prompt": {{"dist": "fixed", "value": 64}}, "output": {{"dist": "fixed", "value": 100}}}}}}}}"#
    )
}

fn events(rows: &[TimelineRow], name: &str) -> Vec<(SimTime, u32)> {
    rows.iter().filter(|r| r.event == Some(name)).map(|r| (r.time, r.replica)).collect()
}

fn capture() -> Capture {
    Capture { requests: true, timeline: Some(Nanos::from_secs_f64(1.0)), ..Capture::default() }
}

/// The scale-up decision starts replica 1; 3 s of weights plus 7 s of engine start-up later it
/// is up, and the arrival due at that instant (the 0.5 s grid holds every decision time, as
/// records are taken every 0.5 s) is the first request it serves: its first step starts
/// exactly 10 s after the decision.
#[test]
fn issue_17_a_scale_up_serves_its_first_request_exactly_cold_start_after_the_decision() {
    let s = scenario(&tiny_fleet(""));
    let case = &s.cases[0];
    assert_eq!(case.autoscaling.unwrap().cold_start(), Nanos(10_000_000_000));
    let result = run_case(case, 1, capture());
    assert_eq!(result.outcome, Outcome::Completed);
    assert!(result.violations.is_empty(), "{:?}", result.violations);
    let starts = events(&result.metrics.timeline, "start");
    let ups = events(&result.metrics.timeline, "up");
    let (decision, replica) = starts[0];
    assert_eq!(replica, 1);
    assert_eq!(ups[0], (decision + Nanos(10_000_000_000), 1));
    let records = result.metrics.records.as_ref().unwrap();
    let first_on_new = records.iter().filter(|r| r.replica == 1).map(|r| r.first_scheduled).min().unwrap();
    assert_eq!(first_on_new.0 - decision.0, 10_000_000_000);
    // Nothing reached the new replica before it was up.
    assert!(records.iter().filter(|r| r.replica == 1).all(|r| r.arrival >= ups[0].0));
}

/// GPU time from the run's own scale events, by hand: replica 0 is held for the whole run
/// (to the last completion), each later replica from its `start` to its `leave` (or to the last
/// completion); gpu_hours is their sum over 3600 s.
#[test]
fn issue_17_gpu_hours_count_cold_starts_and_drains() {
    let s = scenario(&tiny_fleet(""));
    let result = run_case(&s.cases[0], 1, capture());
    let rows = &result.metrics.timeline;
    let end = result.metrics.last_finish;
    let mut held_ns = end.0;
    let leaves = events(rows, "leave");
    for (i, &(start, replica)) in events(rows, "start").iter().enumerate() {
        let leave = leaves.get(i).map_or(end, |l| l.0.min(end));
        assert!(leaves.get(i).is_none_or(|l| l.1 == replica));
        held_ns += leave.0 - start.0.min(leave.0);
    }
    // The load (2 requests a second, about 1 s each) keeps about 2 requests ongoing: the second
    // replica comes; after the load drops to one request per 2 s at 15 s, it goes once the
    // 5 s downscale delay has held.
    assert!(!leaves.is_empty(), "no replica left: {rows:?}");
    let m = summarize(&result.metrics, 1);
    let expected = held_ns as f64 / 1e9 / 3600.0;
    assert!((m["gpu_hours"].as_f64().unwrap() - expected).abs() < 1e-12, "{} vs {expected}", m["gpu_hours"]);
    assert_eq!(m["scale_ups"].as_u64().unwrap(), events(rows, "start").len() as u64);
    assert_eq!(m["peak_replicas"], 2);
}

/// Same scenario and seed: the same report, at 1 and 4 threads.
#[test]
fn issue_17_autoscaled_runs_are_deterministic() {
    let text = tiny_fleet("").replace(r#""name": "autoscaling","#, r#""name": "autoscaling", "seeds": [1, 2, 3],"#);
    let s = scenario(&text);
    let with = |threads| crate::report_at_threads(&s, threads);
    let one = with(1);
    assert_eq!(one, with(4));
    assert_eq!(one, with(1));
    assert!(one.contains("\"scale_ups\""));
}

fn problems(text: &str) -> String {
    match parse(text, "bad.json") {
        Ok(_) => panic!("accepted: {text}"),
        Err(p) => p.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"),
    }
}

#[test]
fn issue_17_bad_autoscaling_configs_name_the_field_and_the_fix() {
    let base = tiny_fleet("");
    let swap = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replace(from, to)
    };
    let p = problems(&swap(r#""min_replicas": 1, "max_replicas": 2"#, r#""min_replicas": 3, "max_replicas": 2"#));
    assert!(p.contains("at base.fleet.autoscaling_config.min_replicas: min_replicas (3) is above max_replicas (2); lower min_replicas or raise max_replicas"), "{p}");
    let p = problems(&swap(r#""upscale_delay_s": 0"#, r#""upscale_delay_s": -5"#));
    assert!(p.contains("at base.fleet.autoscaling_config.upscale_delay_s: must be a number of seconds from 0"), "{p}");
    assert!(p.contains("got -5; Ray's default is 30"), "{p}");
    let p = problems(&swap(r#""metrics_interval_s": 0.1"#, r#""metrics_interval_s": 0"#));
    assert!(p.contains("metrics_interval_s: must be a number of seconds above 0"), "{p}");
    let p = problems(&swap(r#""min_replicas": 1"#, r#""min_replicas": 0"#));
    assert!(p.contains("min_replicas: scale-to-zero (min_replicas 0) is not modelled"), "{p}");
    let p = problems(&swap(r#""target_ongoing_requests": 1"#, r#""target_ongoing_requests": 0"#));
    assert!(p.contains("target_ongoing_requests: must be a positive number"), "{p}");
    let p = problems(&swap(r#""router": "least_outstanding","#, r#""router": "least_outstanding", "replicas": 4,"#));
    assert!(
        p.contains("at base.fleet.replicas: with `autoscaling_config` the autoscaler sets the replica count"),
        "{p}"
    );
    let p = problems(&swap(r#""engine_startup_s": 7"#, r#""engine_startup_s": -1"#));
    assert!(p.contains("at base.fleet.cold_start.engine_startup_s: must be a number of seconds from 0"), "{p}");
    let p = problems(&tiny_fleet(r#", "initial_replicas": 5"#));
    assert!(p.contains("initial_replicas (5) must be within min_replicas (1) and max_replicas (2)"), "{p}");
    let p = problems(&tiny_fleet(r#", "upscaling_factor": -1"#));
    assert!(p.contains("upscaling_factor: must be a positive factor"), "{p}");
    let p = problems(&tiny_fleet(r#", "max_replicas_typo": 3"#));
    assert!(p.contains("max_replicas_typo"), "{p}");
}
