//! The scheduler side of vLLM's OffloadingConnector (`OffloadingConnectorScheduler`): which
//! blocks a waiting request loads from the CPU tier, the requests waiting for their loads, and
//! which blocks each step stores. The tier itself (LRU, link timing) is `cpu_tier`; its module
//! doc cites the vLLM functions each rule comes from.

use super::cpu_tier::{CpuTier, TierConfig};
use super::request::{Request, RequestSlab};
use crate::sim::SimTime;

/// A request whose blocks are being loaded (`WAITING_FOR_REMOTE_KVS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loading {
    pub id: u32,
    /// When the worker reports the load finished.
    pub ready: SimTime,
    /// The loaded blocks: `blocks` blocks from block index `first_block`.
    pub first_block: u32,
    pub blocks: u32,
    /// The request's computed tokens once loaded.
    pub computed: u32,
}

/// One replica's offloading connector.
#[derive(Debug)]
pub struct Offload {
    pub tier: CpuTier,
    /// Requests waiting for their loads, in the order they were admitted.
    pub loading: Vec<Loading>,
}

impl Offload {
    pub fn new(config: TierConfig) -> Offload {
        Offload { tier: CpuTier::new(config), loading: Vec::new() }
    }

    /// `get_num_new_matched_tokens(request, gpu_blocks x block_size)`: touches all the
    /// request's full blocks in the tier, then counts the ready CPU blocks that follow the GPU
    /// prefix hit. Returns the blocks to load.
    pub fn lookup(&mut self, request: &mut Request, gpu_blocks: usize, block_size: u32, now: SimTime) -> usize {
        let full = (request.num_tokens() / block_size) as usize;
        request.ensure_block_hashes(full as u32 * block_size, block_size);
        let hashes = &request.kv.block_hashes[..full];
        self.tier.touch(hashes);
        if full <= gpu_blocks {
            return 0;
        }
        self.tier.lookup(&hashes[gpu_blocks..], now)
    }

    /// `update_state_after_alloc` and the worker's load: the request waits for `blocks` CPU
    /// blocks after its `gpu_blocks` GPU hit, loaded from `now`, and then has `computed`
    /// tokens. Stores resume after the loaded blocks (`_next_stored_block_idx`).
    pub fn start_load(
        &mut self,
        id: u32,
        request: &mut Request,
        gpu_blocks: u32,
        blocks: u32,
        computed: u32,
        now: SimTime,
    ) {
        let range = gpu_blocks as usize..(gpu_blocks + blocks) as usize;
        let ready = self.tier.start_load(&request.kv.block_hashes[range], now);
        request.offload_stored_blocks = gpu_blocks + blocks;
        self.loading.push(Loading { id, ready, first_block: gpu_blocks, blocks, computed });
    }

    /// When the next load finishes, if any is in flight.
    pub fn next_ready(&self) -> Option<SimTime> {
        self.loading.iter().map(|l| l.ready).min()
    }

    /// Moves the loads done by `now` into `out`, in admission order, unpinning their blocks.
    pub fn take_ready(&mut self, now: SimTime, out: &mut Vec<Loading>, requests: &RequestSlab) {
        out.clear();
        if self.loading.iter().all(|l| l.ready > now) {
            return;
        }
        let tier = &mut self.tier;
        self.loading.retain(|l| {
            if l.ready > now {
                return true;
            }
            let hashes = &requests.get(l.id).kv.block_hashes;
            tier.finish_load(&hashes[l.first_block as usize..(l.first_block + l.blocks) as usize]);
            out.push(*l);
            false
        });
    }

    /// `_get_reqs_to_store` for one scheduled request, after the scheduler advanced its
    /// computed tokens: its blocks full by the end of the step (`step_end`) that are not stored
    /// yet go to the tier.
    pub fn store_step(&mut self, request: &mut Request, block_size: u32, now: SimTime, step_end: SimTime) {
        let full = request.num_computed.min(request.num_tokens()) / block_size;
        let from = request.offload_stored_blocks;
        if full <= from {
            return;
        }
        request.ensure_block_hashes(full * block_size, block_size);
        let hashes = &request.kv.block_hashes[..full as usize];
        if self.tier.store(&hashes[from as usize..], hashes, now, step_end) {
            request.offload_stored_blocks = full;
        }
    }
}
