//! The fast path for runs of pure-decode steps (issue 15, item 2). Between the events that
//! change a batch (an admission, a completion, a preemption), every running request decodes one
//! token per step: the plan is the same, the step's price depends only on the batch's size and
//! its summed context, and the only per-request work is at KV block boundaries. Such a step is
//! applied here in O(requests at a block boundary) instead of a scheduler pass and a
//! `finish_step` over the whole batch, with the same effects on the KV cache, the metrics and
//! the clock as the step-by-step path: the loop still sees one event per step, so arrivals,
//! limits and sampling happen exactly where they did.
//!
//! The requests' counters (computed and output tokens, last token time) are brought up to date
//! lazily: a request at a block boundary when it gets there, all of them when the run ends
//! (before the full path touches the batch again, and at the end of the simulation).

use super::Replica;
use crate::report::metrics::Metrics;
use crate::sim::{Nanos, SimTime};

/// A run of pure-decode steps on one replica.
#[derive(Debug, Default)]
pub(super) struct DecodeRun {
    /// The step the scheduler planned last can open a run: every running request decodes one
    /// token in it, nothing was admitted or preempted, and each sampled its last token when the
    /// step began (so they all see the same gap when it ends).
    pub(super) anchored: bool,
    /// The anchored step's cached tokens, summed over its sequences (the step-time input).
    pub(super) anchor_cached: u64,
    /// The head of the waiting queue when the anchored step was planned (it was not admitted).
    pub(super) blocked_head: Option<u32>,
    /// A run is open on the anchored batch; `steps` steps after the anchored one were applied.
    active: bool,
    steps: u32,
    /// The first step, counted from the anchored one as 1, at whose end a request finishes: the
    /// run applies the steps before it.
    finish: u32,
    /// When the last applied step began: each request's last token time.
    last: SimTime,
    /// Per running position: the applied steps already added to the request's counters.
    synced: Vec<u32>,
    /// Running positions grouped by computed tokens modulo the block size (ascending within a
    /// group); group `g` is `order[start[g]..start[g + 1]]`.
    order: Vec<u32>,
    start: Vec<u32>,
}

impl Replica {
    /// Ends the step that ended at `now` and starts the next, as `finish_step` then
    /// `start_step` would, when the step is part of a pure-decode run: no request finishes, the
    /// next plan is the same batch with one token each, no request needs a block the pool
    /// lacks, and the waiting queue's head stays where it is without a lookup. `None` when the
    /// full path must run.
    pub fn fold_step(&mut self, now: SimTime, metrics: &mut Metrics) -> Option<Nanos> {
        // Per-request token gaps (`--vllm-bench-json`) need every request every step.
        if !self.fast_path || !self.run.anchored || metrics.detail.is_some() {
            return None;
        }
        if !self.run.active && !self.open_run() {
            self.run.anchored = false;
            return None;
        }
        let step = self.run.steps + 1;
        let block_size = self.kv.block_size();
        let allocating = self.group((block_size - (step - 1) % block_size) % block_size).len() as u32;
        if step >= self.run.finish || !self.waiting_stays_put() || allocating > self.kv.num_free() {
            return None;
        }
        // The step that ended: every request samples one token after the same gap.
        let batch = self.scheduler.running.len();
        metrics.record_itl_n(now.since(self.step_started), batch as u64);
        self.run.steps = step;
        self.run.last = now;
        // The next step: one token each, and a KV cache that changes only at block boundaries.
        self.cross_block_boundaries(step, now);
        let cached = self.run.anchor_cached + step as u64 * batch as u64;
        let duration = self.step_time.decode_step_time(batch as u32, cached);
        self.release_held();
        self.busy = true;
        self.step_started = now;
        let waiting = self.scheduler.waiting.len();
        metrics.on_step(now, self.index, duration, batch as u32, batch, waiting, self.kv.usage());
        self.check_invariants();
        Some(duration)
    }

    /// Brings every request of an open run up to date and closes it; the full path then sees
    /// the state the step-by-step path would have left.
    pub fn settle(&mut self) {
        self.run.anchored = false;
        if !std::mem::take(&mut self.run.active) {
            return;
        }
        let (steps, last) = (self.run.steps, self.run.last);
        for (position, &id) in self.scheduler.running.iter().enumerate() {
            let lag = steps - self.run.synced[position];
            if lag > 0 {
                let request = self.requests.get_mut(id);
                request.num_computed += lag;
                request.output_tokens += lag;
                request.last_token = Some(last);
            }
        }
    }

    /// Opens a run on the anchored batch; false when a request's KV blocks are not exactly
    /// those its computed tokens fill (the schedule of block boundaries below assumes it).
    fn open_run(&mut self) -> bool {
        let block_size = self.kv.block_size();
        let prefix_caching = self.kv.prefix_caching();
        let max_model_len = self.scheduler.config.max_model_len;
        let run = &mut self.run;
        run.start.clear();
        run.start.resize(block_size as usize + 1, 0);
        let mut finish = u32::MAX;
        for &id in &self.scheduler.running {
            let r = self.requests.get(id);
            let computed = r.num_computed;
            let exact_blocks = r.kv.blocks.len() == computed.div_ceil(block_size) as usize
                && (!prefix_caching || r.kv.num_cached_blocks == (computed / block_size) as usize);
            if computed != r.num_tokens() || !exact_blocks {
                return false;
            }
            // It finishes at the end of the step that reaches its output length or max_model_len.
            let left = r.max_output_tokens.saturating_sub(r.output_tokens).min(max_model_len.saturating_sub(computed));
            finish = finish.min(left);
            run.start[(computed % block_size) as usize] += 1;
        }
        // A counting sort of the positions by group, keeping running order within each.
        let mut total = 0;
        for begin in run.start.iter_mut() {
            (*begin, total) = (total, total + *begin);
        }
        run.order.clear();
        run.order.resize(self.scheduler.running.len(), 0);
        for (position, &id) in self.scheduler.running.iter().enumerate() {
            let group = (self.requests.get(id).num_computed % block_size) as usize;
            run.order[run.start[group] as usize] = position as u32;
            run.start[group] += 1;
        }
        run.start.copy_within(0..block_size as usize, 1);
        run.start[0] = 0;
        run.synced.clear();
        run.synced.resize(self.scheduler.running.len(), 0);
        (run.active, run.steps, run.finish) = (true, 0, finish);
        true
    }

    /// Positions whose computed tokens at the run's start were `group` modulo the block size.
    fn group(&self, group: u32) -> &[u32] {
        let (begin, end) = (self.run.start[group as usize], self.run.start[group as usize + 1]);
        &self.run.order[begin as usize..end as usize]
    }

    /// Whether the scheduler's admission pass would leave the waiting queue alone without side
    /// effects: empty, no room for another sequence or token, or (without prefix caching, whose
    /// lookup counts hit-rate statistics) the same head that the anchored step could not admit,
    /// which still cannot be admitted since the run only takes free blocks.
    fn waiting_stays_put(&self) -> bool {
        let Some(&head) = self.scheduler.waiting.front() else { return true };
        let config = &self.scheduler.config;
        let batch = self.scheduler.running.len();
        batch >= config.max_num_seqs as usize
            || batch as u32 >= config.max_num_batched_tokens
            || (!self.kv.prefix_caching() && self.run.blocked_head == Some(head))
    }

    /// Plans `step`'s one token per request where it does anything: a request whose computed
    /// tokens fill their last block takes a new one, and (with prefix caching) one that fills a
    /// block registers it. Both go through `allocate_slots`, in running order, as the
    /// scheduler's pass would; the caller checked that the pool has the blocks.
    fn cross_block_boundaries(&mut self, step: u32, now: SimTime) {
        let block_size = self.kv.block_size();
        let allocating = (block_size - (step - 1) % block_size) % block_size;
        let filling = (block_size - step % block_size) % block_size;
        // The two groups merged in running order (one group when one call does both).
        let both = self.kv.prefix_caching() && filling != allocating;
        let (a, f) = (self.group(allocating).len(), if both { self.group(filling).len() } else { 0 });
        let (mut i, mut j) = (0, 0);
        while i < a || j < f {
            let next_allocating = self.group(allocating).get(i).copied();
            let next_filling = if j < f { self.group(filling).get(j).copied() } else { None };
            let position = match (next_allocating, next_filling) {
                (Some(x), Some(y)) if y < x => {
                    j += 1;
                    y
                }
                (Some(x), _) => {
                    i += 1;
                    x
                }
                (None, Some(y)) => {
                    j += 1;
                    y
                }
                (None, None) => unreachable!("the loop stops when both groups are done"),
            };
            let lag = step - std::mem::replace(&mut self.run.synced[position as usize], step);
            let id = self.scheduler.running[position as usize];
            let request = self.requests.get_mut(id);
            // Up to date as the step-by-step path leaves it once the tokens were sampled at
            // `now`, with this step's token not yet computed.
            request.num_computed += lag - 1;
            request.output_tokens += lag;
            request.last_token = Some(now);
            let allocated = self.kv.allocate_slots(request, 1, &[], self.scheduler.config.max_model_len);
            assert!(allocated, "a decode run took a block the pool did not have");
            request.num_computed += 1;
        }
    }
}
