//! Ray Serve's default autoscaling policy, as a pure decision rule plus the little state it
//! keeps between control-loop iterations: how many replicas a deployment should have, given the
//! ongoing requests its running replicas report.
//!
//! What Ray Serve does, and where (ray-project/ray, `python/ray/serve/`):
//! - `autoscaling_policy.py`, `_core_replica_queue_length_policy`: `desired = running *
//!   (total_num_requests / (target_ongoing_requests * running))`, a float (that is
//!   `total_num_requests / target_ongoing_requests`).
//! - `_apply_scaling_factors`: `ceil(current + factor * (desired - current))`, the factor being
//!   `upscaling_factor` or `downscaling_factor` (each defaulting to the older
//!   `smoothing_factor`, 1.0: `config.py`, `AutoscalingConfig.get_upscaling_factor`); a
//!   downscale that the factor would round away still removes one replica.
//! - `_apply_bounds`: clamped to `[min_replicas, max_replicas]`.
//! - `_apply_delay_logic`: a decision counter, +1 per control-loop iteration that wants more
//!   replicas than the current target and -1 per one that wants fewer (reset when the direction
//!   changes or when the wish equals the target); the target moves only once the counter passes
//!   `int(upscale_delay_s / CONTROL_LOOP_INTERVAL_S)` (or the downscale one), i.e. once the wish
//!   has held for the delay. `CONTROL_LOOP_INTERVAL_S` is 0.1 s (`_private/constants.py`).
//! - `total_num_requests` (`_private/autoscaling_state.py`, `get_total_num_requests`): the
//!   ongoing requests (queued and running) of the *running* replicas, averaged over
//!   `look_back_period_s` from records each replica takes every 0.5 s
//!   (`RAY_SERVE_REPLICA_AUTOSCALING_METRIC_RECORD_INTERVAL_S`) and pushes every
//!   `metrics_interval_s`; replicas that are starting or stopping are not counted.
//!
//! The simulator's tick is the control loop (0.1 s); every 5th tick records the running
//! replicas' ongoing requests into a ring of `look_back_period_s / 0.5 s` records (a running sum,
//! O(1) per tick), and every `metrics_interval_s` the ring's mean is published to the policy.

use std::collections::VecDeque;

use crate::sim::Nanos;

/// Ray Serve's control-loop period, `CONTROL_LOOP_INTERVAL_S` (0.1 s,
/// `ray/serve/_private/constants.py`): the autoscaler decides once per period.
pub const CONTROL_LOOP_INTERVAL: Nanos = Nanos(100_000_000);
/// How often a replica records its ongoing requests,
/// `RAY_SERVE_REPLICA_AUTOSCALING_METRIC_RECORD_INTERVAL_S` (0.5 s, same file).
pub const METRIC_RECORD_INTERVAL: Nanos = Nanos(500_000_000);

/// `autoscaling_config` of a Ray Serve deployment, validated, with Ray's defaults applied
/// (`ray.serve.config.AutoscalingConfig`), plus the cold start of a new replica.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoscalingConfig {
    /// Default 1. symbiote needs at least 1 (scale-to-zero is not modelled).
    pub min_replicas: u32,
    /// Default 1 in Ray (`PositiveInt`).
    pub max_replicas: u32,
    /// Replicas up at t = 0; default `min_replicas` (Ray starts at `initial_replicas` when set,
    /// else `min_replicas`: `autoscaling_state.py`, `register`).
    pub initial_replicas: u32,
    /// Default 2.0 (since Ray 2.32; 1.0 before).
    pub target_ongoing_requests: f64,
    /// Default 30 s.
    pub upscale_delay: Nanos,
    /// Default 600 s.
    pub downscale_delay: Nanos,
    /// Default 10 s: how often the replicas' averages reach the controller.
    pub metrics_interval: Nanos,
    /// Default 30 s: the window the averages cover.
    pub look_back_period: Nanos,
    /// `upscaling_factor`, else `upscale_smoothing_factor`, else `smoothing_factor` (1.0).
    pub upscaling_factor: f64,
    /// `downscaling_factor`, else `downscale_smoothing_factor`, else `smoothing_factor` (1.0).
    pub downscaling_factor: f64,
    /// A new replica's weights read: per-rank weight bytes over the stated bandwidth.
    pub weights_load: Nanos,
    /// vLLM's engine start-up after the weights (profiling, KV cache, CUDA graphs, API server).
    pub engine_startup: Nanos,
}

impl AutoscalingConfig {
    /// From a scale-up decision to the moment the new replica can serve.
    pub fn cold_start(&self) -> Nanos {
        self.weights_load + self.engine_startup
    }
}

/// The replica count Ray's default policy wants for `total_num_requests` ongoing requests over
/// `running` running replicas, before the delay logic: the policy, the scaling factors and the
/// bounds, in that order (`_apply_default_params`).
pub fn desired_replicas(config: &AutoscalingConfig, total_num_requests: f64, running: u32) -> u32 {
    let current = running as f64;
    // `_core_replica_queue_length_policy`: running * error_ratio, where error_ratio is the
    // total over (target per replica * running).
    let desired =
        if running == 0 { 0.0 } else { current * (total_num_requests / (config.target_ongoing_requests * current)) };
    // `_apply_scaling_factors`.
    let delta = desired - current;
    let factor = if delta > 0.0 { config.upscaling_factor } else { config.downscaling_factor };
    let mut scaled = (current + factor * delta).ceil();
    if desired.ceil() < current && scaled == current {
        scaled -= 1.0;
    }
    // `_apply_bounds`; the float is finite and at most `max_replicas` after the clamp.
    let bounded = scaled.clamp(config.min_replicas as f64, config.max_replicas as f64);
    bounded as u32
}

/// The policy's state between ticks: the metric window and the decision counter.
#[derive(Debug)]
pub struct Autoscaler {
    pub config: AutoscalingConfig,
    /// The deployment's target replica count (`curr_target_num_replicas`).
    pub target: u32,
    /// `SERVE_AUTOSCALING_DECISION_COUNTERS_KEY`: positive while upscale wishes accumulate,
    /// negative while downscale ones do.
    decision_counter: i64,
    /// The last `look_back_period / METRIC_RECORD_INTERVAL` records and their sum.
    records: VecDeque<u64>,
    records_sum: u64,
    window: usize,
    /// The average last pushed to the controller.
    published: f64,
    /// Control-loop ticks since t = 0.
    ticks: u64,
    record_every: u64,
    push_every: u64,
    upscale_periods: i64,
    downscale_periods: i64,
}

impl Autoscaler {
    pub fn new(config: AutoscalingConfig) -> Autoscaler {
        let periods = |d: Nanos, unit: Nanos| (d.0 / unit.0) as i64;
        Autoscaler {
            config,
            target: config.initial_replicas,
            decision_counter: 0,
            records: VecDeque::new(),
            records_sum: 0,
            window: (config.look_back_period.0 / METRIC_RECORD_INTERVAL.0).max(1) as usize,
            published: 0.0,
            ticks: 0,
            record_every: METRIC_RECORD_INTERVAL.0 / CONTROL_LOOP_INTERVAL.0,
            // Pushes fall on control-loop ticks: the interval rounded down to whole ticks.
            push_every: (config.metrics_interval.0 / CONTROL_LOOP_INTERVAL.0).max(1),
            // `int(upscale_delay_s / CONTROL_LOOP_INTERVAL_S)`: Python's int() truncates.
            upscale_periods: periods(config.upscale_delay, CONTROL_LOOP_INTERVAL),
            downscale_periods: periods(config.downscale_delay, CONTROL_LOOP_INTERVAL),
        }
    }

    /// One control-loop iteration: records `ongoing` (the running replicas' queued and running
    /// requests now) when a record is due, publishes the window's mean when a push is due, and
    /// returns the new target replica count. O(1).
    pub fn tick(&mut self, ongoing: u64, running: u32) -> u32 {
        if self.ticks % self.record_every == 0 {
            self.records.push_back(ongoing);
            self.records_sum += ongoing;
            if self.records.len() > self.window {
                self.records_sum -= self.records.pop_front().unwrap_or(0);
            }
        }
        if self.ticks % self.push_every == 0 {
            self.published = self.records_sum as f64 / self.records.len().max(1) as f64;
        }
        self.ticks += 1;
        let desired = desired_replicas(&self.config, self.published, running);
        self.target = self.apply_delay(desired);
        self.target
    }

    /// `_apply_delay_logic` (scale-to-zero aside: `min_replicas` is at least 1 here).
    fn apply_delay(&mut self, desired: u32) -> u32 {
        let current = self.target;
        if desired > current {
            self.decision_counter = self.decision_counter.max(0) + 1;
            if self.decision_counter > self.upscale_periods {
                self.decision_counter = 0;
                return desired;
            }
        } else if desired < current {
            self.decision_counter = self.decision_counter.min(0) - 1;
            if self.decision_counter < -self.downscale_periods {
                self.decision_counter = 0;
                return desired.max(1);
            }
        } else {
            self.decision_counter = 0;
        }
        current
    }

    /// The average the policy currently sees (`total_num_requests`).
    pub fn published(&self) -> f64 {
        self.published
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AutoscalingConfig {
        AutoscalingConfig {
            min_replicas: 1,
            max_replicas: 10,
            initial_replicas: 2,
            target_ongoing_requests: 2.0,
            upscale_delay: Nanos::from_secs_f64(30.0),
            downscale_delay: Nanos::from_secs_f64(600.0),
            metrics_interval: Nanos::from_secs_f64(10.0),
            look_back_period: Nanos::from_secs_f64(30.0),
            upscaling_factor: 1.0,
            downscaling_factor: 1.0,
            weights_load: Nanos::ZERO,
            engine_startup: Nanos::ZERO,
        }
    }

    #[test]
    fn the_decision_rule_against_hand_numbers() {
        let c = config();
        // 9 ongoing over 2 replicas at target 2: 9 / 2 = 4.5, ceil 5.
        assert_eq!(desired_replicas(&c, 9.0, 2), 5);
        // Exactly on target: 8 / 2 = 4.
        assert_eq!(desired_replicas(&c, 8.0, 4), 4);
        // 30 / 2 = 15, clamped to max_replicas 10.
        assert_eq!(desired_replicas(&c, 30.0, 3), 10);
        // Nothing ongoing: 0, clamped to min_replicas 1.
        assert_eq!(desired_replicas(&c, 0.0, 4), 1);
        // Upscaling factor 0.5: 2 + 0.5 * (4.5 - 2) = 3.25, ceil 4.
        let half = AutoscalingConfig { upscaling_factor: 0.5, downscaling_factor: 0.5, ..c };
        assert_eq!(desired_replicas(&half, 9.0, 2), 4);
        // Downscaling factor 0.5 from 4 toward 3.5 (7 ongoing): 4 + 0.5 * -0.5 = 3.75, ceil 4
        // equals the current count while ceil(3.5) = 4 is not below it: stays at 4.
        assert_eq!(desired_replicas(&half, 7.0, 4), 4);
        // Toward 2 (4 ongoing): 4 + 0.5 * -2 = 3.
        assert_eq!(desired_replicas(&half, 4.0, 4), 3);
        // Toward 2.5 with factor 0.1: 4 - 0.15 = 3.85, ceil 4 == current while ceil(2.5) = 3 < 4:
        // Ray removes one anyway.
        let tenth = AutoscalingConfig { downscaling_factor: 0.1, ..c };
        assert_eq!(desired_replicas(&tenth, 5.0, 4), 3);
    }

    #[test]
    fn the_upscale_waits_out_its_delay_in_control_loop_periods() {
        let c = AutoscalingConfig { upscale_delay: Nanos::from_secs_f64(1.0), ..config() };
        let mut a = Autoscaler::new(c);
        // 10 ongoing on 2 running replicas: desired 5. The first tick (t = 0) records and
        // publishes 10. int(1.0 / 0.1) = 10 periods: the counter must pass 10, so ticks 1..=10
        // keep the target and tick 11 (t = 1.0 s) moves it.
        for tick in 1..=10 {
            assert_eq!(a.tick(10, 2), 2, "tick {tick}");
        }
        assert_eq!(a.tick(10, 2), 5);
        // A wish equal to the target resets the counter.
        assert_eq!(a.tick(10, 5), 5);
    }

    #[test]
    fn a_downscale_wish_interrupted_by_an_upscale_one_starts_over() {
        let c = AutoscalingConfig {
            downscale_delay: Nanos::from_secs_f64(1.0),
            upscale_delay: Nanos::from_secs_f64(10.0),
            metrics_interval: Nanos::from_secs_f64(0.1),
            look_back_period: Nanos::from_secs_f64(0.5),
            ..config()
        };
        let mut a = Autoscaler::new(c);
        // A window of one record, taken every 5th tick and published every tick. Ticks 0..=4
        // see 0 ongoing (desired 1): counter -1..-5 of the -11 that int(1.0 / 0.1) = 10 needs.
        let ongoing = |tick: u32| if (5..10).contains(&tick) { 10 } else { 0 };
        for tick in 0..20 {
            assert_eq!(a.tick(ongoing(tick), 2), 2, "tick {tick}");
        }
        // Ticks 5..=9 wished for 5 replicas (counter reset to +1..+5); from tick 10 the downscale
        // count starts over at -1, so it is tick 20, not tick 10, that moves the target.
        assert_eq!(a.tick(0, 2), 1);
    }
}
