//! The loop's part of disaggregated prefill/decode serving, as vLLM runs it with the NIXL
//! connector behind its proxy (`tests/v1/kv_connector/nixl_integration/toy_proxy_server.py`):
//!
//! 1. the proxy sends each request to a prefill replica (the fleet's router over the prefill
//!    pool) with `max_tokens=1` and `do_remote_decode`; the replica computes the prompt's KV,
//!    samples one token that the proxy drops, and finishes, keeping its blocks
//!    (`NixlConnectorScheduler.request_finished`: `delay_free_blocks`);
//! 2. the proxy sends the request with the returned `kv_transfer_params` to a decode replica
//!    (the decode pool's router), through that replica's API server (the front-end overhead
//!    again); its scheduler allocates blocks for the whole prompt before reading anything,
//!    and waits in the queue while they are missing (`Scheduler.schedule`, `load_kv_async`);
//! 3. the read runs over the link (`hardware::link`): each GPU link carries one transfer at a
//!    time, first come first served, so a prefill replica's or a decode replica's transfers
//!    queue behind each other; the read ends `bytes / bandwidth` after it starts, plus the
//!    link's latency;
//! 4. on arrival the prefill side frees its blocks (the decode side's notification,
//!    `get_finished`) and the decode side counts the prompt as computed but for its last
//!    token, which its next step recomputes to sample the first output token
//!    (`Scheduler._update_waiting_for_remote_kv`). So the client's first token comes from the
//!    decode replica, and TTFT holds the prefill queue and step, the hand-off, the decode
//!    side's block wait, the transfer and that first decode step.
//!
//! Each hand-off and each transfer costs O(1) events and O(1) work (a router choice over one
//! pool's index, two link clocks), never a pass over the fleet.

use super::{Event, World};
use crate::hardware::link::Link;
use crate::report::disagg::DisaggMetrics;
use crate::serving::fleet_index::FleetIndex;
use crate::serving::replica::{Rejection, TransferStart};
use crate::serving::request::{RemoteKv, Request};
use crate::serving::router::Router;
use crate::serving::Engine;
use crate::sim::{Nanos, SimTime};
use crate::workload::Segment;

/// The decode pool and the link: state the loop keeps only for a disaggregated fleet.
pub(super) struct DecodePool {
    /// Global index of the first decode replica (the prefill replicas come first).
    pub offset: usize,
    pub router: Router,
    pub fleet: FleetIndex,
    pub link: Link,
    pub latency: Nanos,
    /// KV bytes one GPU link carries per token of a transfer.
    pub bytes_per_token: u64,
    pub block_size: u32,
    /// When each replica's links finish the transfers queued on them.
    pub link_free: Vec<SimTime>,
    /// Requests between their prefill's end and their decode replica's door.
    pub in_handoff: u64,
    pub started: Vec<TransferStart>,
}

impl World {
    /// A prefill replica's finished requests go to the decode pool, each after the decode
    /// API server's front-end time.
    pub(super) fn hand_off(&mut self, now: SimTime, replica: usize) {
        let Some(pool) = &mut self.decode else { return };
        let Engine::Vllm(r) = &mut self.engines[replica] else { return };
        for handoff in r.handoffs.drain(..) {
            pool.in_handoff += 1;
            if let Some(m) = &mut self.metrics.disagg {
                m.handoffs += 1;
            }
            self.queue.push(now + self.frontend_overhead, Event::Handoff(Box::new(handoff.request)));
        }
    }

    /// The proxy sends a prefilled request to a decode replica.
    pub(super) fn on_handoff(&mut self, now: SimTime, mut request: Request) {
        let pool = self.decode.as_mut().expect("hand-offs come only from a disaggregated fleet");
        pool.in_handoff -= 1;
        let replica = pool.offset + pool.router.choose_indexed(&pool.fleet);
        let (index, arrival, prompt_tokens) = (request.seq_no, request.arrival, request.prompt_tokens);
        let (client, session) = (request.client, request.session);
        let output = Segment { id: request.output_segment, len: 0 };
        if let RemoteKv::Pending { since, .. } = &mut request.remote {
            *since = now;
        }
        let remote = request.remote;
        match self.engines[replica].admit(request) {
            Ok(()) => {
                self.refresh(replica);
                self.metrics.note_waiting(self.engines[replica].waiting());
                self.wake(now, replica);
            }
            Err(Rejection { reason, message }) => {
                // The prefill pool checked the lengths against the decode pool's limits, so
                // this is only reached if the pools' limits differ: free the parked blocks.
                if let RemoteKv::Pending { prefill, parked, .. } = remote {
                    self.release_parked(now, prefill as usize, parked);
                }
                self.metrics.record_refused(index, arrival, prompt_tokens, reason, &message);
                self.request_done(now, client, session, false, output);
            }
        }
    }

    /// The reads a decode replica's last plan started: each is timed on the two replicas'
    /// links and ends with a `TransferDone` event.
    pub(super) fn start_transfers(&mut self, now: SimTime, replica: usize) {
        let Some(pool) = &mut self.decode else { return };
        if replica < pool.offset {
            return;
        }
        let Engine::Vllm(r) = &mut self.engines[replica] else { return };
        r.take_transfers(&mut pool.started);
        if pool.started.is_empty() {
            return;
        }
        for t in pool.started.drain(..) {
            let bytes = t.blocks as u64 * pool.block_size as u64 * pool.bytes_per_token;
            let wire = Nanos::from_secs_f64(pool.link.wire_s(bytes));
            let prefill = t.prefill as usize;
            let start = now.max(pool.link_free[prefill]).max(pool.link_free[replica]);
            let end = start + wire;
            pool.link_free[prefill] = end;
            pool.link_free[replica] = end;
            let done = end + pool.latency;
            if let Some(m) = &mut self.metrics.disagg {
                m.bytes_per_gpu += bytes as u128;
                m.transfer_ns.push(done.since(now).0 as f64);
            }
            if let Some(m) = &mut self.metrics.disagg {
                m.block_wait_ns.push(now.since(t.since).0 as f64);
            }
            self.queue.push(
                done,
                Event::TransferDone { decode: replica as u32, id: t.id, prefill: t.prefill, parked: t.parked },
            );
        }
    }

    /// A read arrived: the decode side may schedule the request, the prefill side frees the
    /// blocks it held.
    pub(super) fn on_transfer_done(&mut self, now: SimTime, decode: usize, id: u32, prefill: usize, parked: u32) {
        if let Engine::Vllm(r) = &mut self.engines[decode] {
            r.transfer_done(id);
        }
        if let Some(m) = &mut self.metrics.disagg {
            m.transfers += 1;
        }
        self.refresh(decode);
        self.wake(now, decode);
        self.release_parked(now, prefill, parked);
    }

    fn release_parked(&mut self, now: SimTime, prefill: usize, parked: u32) {
        if let Engine::Vllm(r) = &mut self.engines[prefill] {
            r.release_parked(parked);
        }
        self.refresh(prefill);
        // Freed blocks may let a waiting prefill request in.
        self.wake(now, prefill);
    }
}

/// Builds the decode pool's loop state.
pub(super) fn decode_pool(
    case: &crate::scenario::Case,
    d: &crate::scenario::Disaggregation,
    streams: &crate::sim::Streams,
) -> DecodePool {
    let bytes_per_token = crate::hardware::link::transfer_bytes_per_token(
        &case.model,
        case.quant,
        case.kv_dtype,
        d.prefill.tp,
        d.decode.tp,
    );
    DecodePool {
        offset: d.prefill.replicas as usize,
        router: Router::new(d.decode.router, streams.get(crate::sim::Stream::DecodeRouter)),
        fleet: FleetIndex::new(d.decode.replicas as usize),
        link: d.link,
        latency: Nanos::from_secs_f64(d.link.latency_s),
        bytes_per_token,
        block_size: case.engine.block_size,
        link_free: vec![SimTime::ZERO; (d.prefill.replicas + d.decode.replicas) as usize],
        in_handoff: 0,
        started: Vec::new(),
    }
}

/// The metrics collector for a disaggregated case.
pub(super) fn metrics_for(d: &crate::scenario::Disaggregation) -> DisaggMetrics {
    DisaggMetrics::new(d.prefill.replicas, d.decode.replicas, &d.link_name)
}
