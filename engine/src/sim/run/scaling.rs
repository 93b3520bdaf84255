//! The loop's autoscaling handlers: Ray Serve's control loop ticks, replicas coming up after
//! their cold start, and draining replicas leaving. The policy itself is
//! `serving::autoscaler`, the slot bookkeeping `serving::scaled_fleet`; this only applies their
//! decisions to the engines, the router's index and the metrics. Each tick is O(1) plus
//! O(log replicas) per replica started or stopped: the metric is the fleet index's running
//! total, never a scan.

use super::{build_engine, Event, World};
use crate::serving::autoscaler::CONTROL_LOOP_INTERVAL;
use crate::serving::scaled_fleet::{Change, SlotState};
use crate::sim::SimTime;

impl World {
    pub(super) fn on_scale_tick(&mut self, now: SimTime) {
        let Some(scaling) = &mut self.scaling else { return };
        // Ray counts the ongoing requests of running replicas only (`autoscaling_state.py`,
        // `_collect_replica_running_requests` over `_running_replicas`).
        let running = scaling.slots.counts().up;
        let target = scaling.autoscaler.tick(self.fleet.available_outstanding(), running);
        if target != scaling.slots.live() {
            for change in scaling.slots.scale_to(target, now) {
                self.apply(now, change);
            }
        }
        // Nothing else queued: no arrival, step or start is left, so the run is over.
        if !self.queue.is_empty() {
            self.queue.push(now + CONTROL_LOOP_INTERVAL, Event::ScaleTick);
        }
    }

    fn apply(&mut self, now: SimTime, change: Change) {
        let Some(scaling) = &mut self.scaling else { return };
        match change {
            Change::Start { slot, generation } => {
                let i = slot as usize;
                // A fresh engine in the slot; what the previous one did stays counted.
                let fresh = build_engine(&scaling.case, &self.memory, &scaling.step_time, slot);
                let old = std::mem::replace(&mut self.engines[i], fresh);
                self.retire(i, old);
                self.refresh(i);
                let cold_start = self.scaling.as_ref().map(|s| s.autoscaler.config.cold_start()).unwrap_or_default();
                self.queue.push(now + cold_start, Event::ReplicaUp { replica: slot, generation });
                self.scale_event(now, i, "start");
            }
            Change::Cancel { slot } => self.scale_event(now, slot as usize, "cancel"),
            Change::Drain { slot } => {
                let i = slot as usize;
                self.fleet.set_available(i, false);
                self.ready[i] = false;
                self.scale_event(now, i, "drain");
                self.leave_if_drained(now, i);
            }
        }
    }

    pub(super) fn on_replica_up(&mut self, now: SimTime, replica: u32, generation: u32) {
        let Some(scaling) = &mut self.scaling else { return };
        if !scaling.slots.on_ready(replica, generation) {
            return;
        }
        let i = replica as usize;
        self.fleet.set_available(i, true);
        self.ready[i] = true;
        self.metrics.replicas[i].ready_at = now;
        self.scale_event(now, i, "up");
    }

    /// A draining replica with no request left leaves (Ray's graceful shutdown, without its
    /// `graceful_shutdown_timeout_s`: see docs/autoscaling.md).
    pub(super) fn leave_if_drained(&mut self, now: SimTime, replica: usize) {
        let Some(scaling) = &mut self.scaling else { return };
        if scaling.slots.state(replica) == SlotState::Draining && self.engines[replica].outstanding() == 0 {
            scaling.slots.leave(replica, now);
            self.scale_event(now, replica, "leave");
        }
    }

    /// Folds a replaced engine's prefix-cache counters and KV accounting into the run's.
    fn retire(&mut self, replica: usize, mut old: crate::serving::Engine) {
        old.settle();
        let stats = old.prefix_stats();
        self.metrics.prefix_queries += stats.queries;
        self.metrics.prefix_hits += stats.hits;
        if let Err(e) = old.check_accounting() {
            self.violations.push(format!("replica {replica} (retired): {e}"));
        }
    }

    fn scale_event(&mut self, now: SimTime, replica: usize, event: &'static str) {
        let Some(scaling) = &self.scaling else { return };
        let counts = scaling.slots.counts();
        let engine = &self.engines[replica];
        let load = (engine.waiting(), engine.outstanding() - engine.waiting(), engine.kv_usage());
        self.metrics.on_scale_event(now, replica as u32, event, counts, load);
    }
}
