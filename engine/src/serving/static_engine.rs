//! The static batching engine, as a plain Hugging Face `generate` loop runs: it takes up to
//! `max_batch` waiting requests, pads them to the longest prompt, reserves KV for prompt +
//! output tokens of every row up front, runs one prefill step and then decode steps until the
//! longest output is done, and admits nothing until the batch ends. Every row stays in the
//! batch (as padding) until then, and `generate` returns the whole batch at its end, so that is
//! when each row finishes. A batch that does not fit in memory is an out-of-memory outcome.

use std::collections::VecDeque;
use std::sync::Arc;

use super::replica::{Finished, Rejection};
use super::request::{Request, RequestSlab, Status};
use crate::hardware::hf_memory::CacheKind;
use crate::hardware::memory::{plan_static, MemoryConfig, StaticMemory};
use crate::hardware::{GpuSpec, ModelSpec, SeqWork, StepTimeModel};
use crate::report::metrics::{Metrics, RequestRecord};
use crate::sim::{Nanos, SimTime};

pub struct StaticEngine {
    pub index: u32,
    requests: RequestSlab,
    waiting: VecDeque<u32>,
    batch: Vec<u32>,
    max_batch: u32,
    max_model_len: u32,
    model: ModelSpec,
    gpu: GpuSpec,
    memory: MemoryConfig,
    step_time: Arc<dyn StepTimeModel>,
    work: Vec<SeqWork>,
    padded_prompt: u32,
    batch_output: u32,
    steps_done: u32,
    busy: bool,
    /// Fraction of GPU memory the current batch reserves (reported as its KV usage).
    reserved: f64,
    pub accepted: u64,
    pub finished: u64,
}

impl StaticEngine {
    pub fn new(
        index: u32,
        model: ModelSpec,
        gpu: GpuSpec,
        memory: MemoryConfig,
        max_batch: u32,
        step_time: Arc<dyn StepTimeModel>,
    ) -> StaticEngine {
        StaticEngine {
            index,
            requests: RequestSlab::default(),
            waiting: VecDeque::new(),
            batch: Vec::new(),
            max_batch,
            max_model_len: memory.max_model_len as u32,
            model,
            gpu,
            memory,
            step_time,
            work: Vec::new(),
            padded_prompt: 0,
            batch_output: 0,
            steps_done: 0,
            busy: false,
            reserved: 0.0,
            accepted: 0,
            finished: 0,
        }
    }

    pub fn admit(&mut self, request: Request) -> Result<(), Rejection> {
        if request.prompt_tokens + request.max_output_tokens > self.max_model_len {
            return Err(Rejection {
                reason: "sequence_too_long",
                message: format!(
                    "Input length of input_ids is {} and max_new_tokens is {}, more than the model's maximum length {}",
                    request.prompt_tokens, request.max_output_tokens, self.max_model_len
                ),
            });
        }
        let id = self.requests.insert(request);
        self.waiting.push_back(id);
        self.accepted += 1;
        Ok(())
    }

    pub fn is_busy(&self) -> bool {
        self.busy
    }

    pub fn outstanding(&self) -> usize {
        self.requests.live()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn usage(&self) -> f64 {
        self.reserved
    }

    /// Forms a batch when none is running; `Err` when it does not fit in memory.
    fn form_batch(&mut self) -> Result<(), Box<StaticMemory>> {
        let rows = self.waiting.len().min(self.max_batch as usize);
        self.batch.extend(self.waiting.drain(..rows));
        self.padded_prompt = self.batch.iter().map(|&id| self.requests.get(id).prompt_tokens).max().unwrap_or(0);
        self.batch_output = self.batch.iter().map(|&id| self.requests.get(id).max_output_tokens).max().unwrap_or(0);
        self.steps_done = 0;
        let plan = plan_static(
            &self.model,
            &self.gpu,
            &self.memory,
            CacheKind::Dynamic,
            self.batch.len() as u64,
            self.padded_prompt as u64,
            self.batch_output as u64,
        );
        if !plan.fits() {
            return Err(Box::new(plan));
        }
        self.reserved = plan.needed_bytes() as f64 / plan.total_visible_bytes as f64;
        Ok(())
    }

    /// Plans the next step of the batch (forming one if needed) and prices it.
    pub fn start_step(&mut self, now: SimTime, metrics: &mut Metrics) -> Result<Option<Nanos>, Box<StaticMemory>> {
        if self.batch.is_empty() {
            if self.waiting.is_empty() {
                return Ok(None);
            }
            self.form_batch()?;
        }
        self.work.clear();
        let (query, cached) =
            if self.steps_done == 0 { (self.padded_prompt, 0) } else { (1, self.padded_prompt + self.steps_done - 1) };
        for &id in &self.batch {
            self.work.push(SeqWork { query_tokens: query, cached_tokens: cached });
            self.requests.get_mut(id).first_scheduled.get_or_insert(now);
        }
        let duration = self.step_time.step_time(&self.work);
        self.busy = true;
        let tokens = query * self.batch.len() as u32;
        metrics.on_step(now, self.index, duration, tokens, self.batch.len(), self.waiting.len(), self.reserved);
        Ok(Some(duration))
    }

    pub fn finish_step(&mut self, now: SimTime, metrics: &mut Metrics, finished: &mut Vec<Finished>) {
        self.busy = false;
        for &id in &self.batch {
            let request = self.requests.get_mut(id);
            if request.output_tokens >= request.max_output_tokens {
                continue; // a finished row rides along as padding
            }
            request.output_tokens += 1;
            match request.last_token {
                None => request.first_token = Some(now),
                Some(last) => metrics.record_itl(request.seq_no, now.since(last)),
            }
            request.last_token = Some(now);
        }
        self.steps_done += 1;
        if self.steps_done < self.batch_output {
            return;
        }
        for id in self.batch.drain(..) {
            let mut request = self.requests.remove(id);
            request.status = Status::Finished;
            metrics.record_request(RequestRecord::of(&request, now, self.index));
            finished.push(Finished::of(&request));
            self.finished += 1;
        }
        self.reserved = 0.0;
        debug_assert_eq!(self.accepted, self.finished + self.requests.live() as u64, "requests not conserved");
    }
}
