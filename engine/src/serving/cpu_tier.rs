//! The CPU tier of vLLM's KV offloading (`OffloadingConnector` with the native CPU backend):
//! a second pool of KV blocks in host memory, filled as GPU blocks fill and read back over the
//! host link (PCIe) when a prefix is found there and not in the GPU's own prefix cache.
//!
//! The rules, each from vLLM's source (`vllm/distributed/kv_transfer/kv_connector/v1/
//! offloading_connector.py` and, in later versions, `.../offloading/scheduler.py`, class
//! `OffloadingConnectorScheduler`; `vllm/v1/kv_offload/lru_manager.py`,
//! `LRUOffloadingManager`):
//!
//! - What is stored, and when: `_get_reqs_to_store`, called by `build_connector_meta` for every
//!   step's scheduler output, takes each scheduled request's blocks that are full once the
//!   step's tokens are computed (`min(num_computed_tokens + new_tokens, num_tokens)`), from the
//!   request's `_next_stored_block_idx` on, prompt and output blocks alike; it does not wait
//!   for the request to finish or for the GPU block to be evicted. `prepare_store` drops blocks
//!   already in the tier; when it cannot make room it returns `None`, nothing is stored and the
//!   same blocks are tried again next step (the index does not advance).
//! - Store cost: the worker copies after the step's forward pass (`wait_for_save` ->
//!   `prepare_store_kv`, submitted with the next `start_kv_transfers`) on its own CUDA stream
//!   by DMA (`vllm/v1/kv_offload/worker/cpu_gpu.py`), so a store never delays a step: it
//!   occupies the device-to-host direction of the link, and the stored blocks become hits
//!   only when the copy is done (`lookup` stops at a block that `is_ready` is false for).
//! - Eviction: LRU (`LRUOffloadingManager.prepare_store`): the least recently used blocks with
//!   no pending load (`ref_cnt == 0`, which also excludes blocks still being stored) are
//!   evicted, scanning from the LRU end. `touch` moves blocks to the MRU end in reverse, so a
//!   request's first block ends most recent; a lookup touches all of the request's blocks and
//!   a store touches all blocks up to the stored ones.
//! - Lookup: `get_num_new_matched_tokens(request, num_computed_tokens)` counts consecutive
//!   ready CPU blocks from the end of the GPU prefix hit, over the request's full blocks; a hit
//!   shorter than a block is ignored. The scheduler then allocates GPU blocks for the hit
//!   (without registering them in the GPU prefix cache: `delay_cache_blocks`), and the request
//!   waits (`WAITING_FOR_REMOTE_KVS`) without taking token budget until the worker reports the
//!   load finished; `_update_waiting_for_remote_kv` then registers the blocks and sets its
//!   computed tokens, one short of all tokens if the load covered them all (the last token is
//!   always computed).
//! - Size: `--kv-offloading-size` GiB (or `kv_connector_extra_config.cpu_bytes_to_use`) over
//!   all ranks; `CPUOffloadingSpec` makes it `bytes // (page bytes x layers x world size)`
//!   blocks of the GPU block size.
//!
//! Loads and stores are priced as `latency + bytes / bandwidth` per transfer, on the host link
//! of one GPU (each tensor-parallel rank moves its own shard over its own link at the same
//! time), transfers in one direction queued one after another.

use std::hash::BuildHasherDefault;

use crate::sim::{Nanos, SimTime};

/// Hash -> slot. Lookups and removals only, never iterated (why std's HashMap is allowed).
#[allow(clippy::disallowed_types)]
type SlotMap = std::collections::HashMap<u64, u32, BuildHasherDefault<super::kv_cache::PassThrough>>;

const NONE: u32 = u32::MAX;

/// The CPU tier's configuration, resolved from the scenario and the catalog.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierConfig {
    /// Blocks the tier holds (`CPUOffloadingSpec.num_blocks`).
    pub num_blocks: u32,
    /// Bytes of one block on one tensor-parallel rank: what one GPU's link carries.
    pub rank_block_bytes: u64,
    /// Tensor-parallel ranks: the whole model's block is `rank_block_bytes x ranks`.
    pub ranks: u64,
    /// Effective bandwidth of one GPU's host link, one direction, bytes per second.
    pub link_bytes_per_s: f64,
    /// Fixed cost of one transfer (DMA submission and completion).
    pub link_latency: Nanos,
}

/// Counters for the report: where admitted requests' tokens came from and what moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Tokens of admitted requests found in the GPU prefix cache.
    pub gpu_hit_tokens: u64,
    /// Tokens of admitted requests loaded from the CPU tier.
    pub cpu_hit_tokens: u64,
    /// Tokens of admitted requests found in neither tier (computed).
    pub miss_tokens: u64,
    pub loads: u64,
    pub loaded_blocks: u64,
    pub stored_blocks: u64,
    pub evicted_blocks: u64,
    /// Store attempts `prepare_store` refused (no evictable room), retried next step.
    pub stores_refused: u64,
    /// The tier's size and one whole-model block's bytes (set for the report, not summed).
    pub cpu_blocks: u64,
    pub bytes_per_block: u64,
}

impl TierStats {
    /// Adds another replica's counters.
    pub fn add(&mut self, other: &TierStats) {
        self.gpu_hit_tokens += other.gpu_hit_tokens;
        self.cpu_hit_tokens += other.cpu_hit_tokens;
        self.miss_tokens += other.miss_tokens;
        self.loads += other.loads;
        self.loaded_blocks += other.loaded_blocks;
        self.stored_blocks += other.stored_blocks;
        self.evicted_blocks += other.evicted_blocks;
        self.stores_refused += other.stores_refused;
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    hash: u64,
    /// When the block's store completes; a lookup counts it only from then on.
    ready_at: SimTime,
    /// Loads in flight reading this block (`BlockStatus.ref_cnt`).
    pins: u32,
    prev: u32,
    next: u32,
}

/// The CPU tier of one replica: an LRU of block hashes and the two directions of the link.
#[derive(Debug)]
pub struct CpuTier {
    config: TierConfig,
    map: SlotMap,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// LRU end (next to evict) and MRU end of the list of slots in use.
    head: u32,
    tail: u32,
    /// When each direction of the link is next free.
    load_free: SimTime,
    store_free: SimTime,
    pub stats: TierStats,
}

impl CpuTier {
    pub fn new(config: TierConfig) -> CpuTier {
        CpuTier {
            config,
            map: SlotMap::default(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            head: NONE,
            tail: NONE,
            load_free: SimTime::ZERO,
            store_free: SimTime::ZERO,
            stats: TierStats::default(),
        }
    }

    pub fn config(&self) -> &TierConfig {
        &self.config
    }

    /// Blocks held (stored or being stored).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// One transfer of `blocks` blocks: latency plus bytes over bandwidth (one rank's share).
    pub fn transfer_time(&self, blocks: usize) -> Nanos {
        let bytes = blocks as f64 * self.config.rank_block_bytes as f64;
        self.config.link_latency + Nanos::from_secs_f64(bytes / self.config.link_bytes_per_s)
    }

    /// Bytes of `blocks` whole-model blocks (all ranks), for the report.
    pub fn bytes(&self, blocks: u64) -> u64 {
        blocks * self.config.rank_block_bytes * self.config.ranks
    }

    fn unlink(&mut self, slot: u32) {
        let Slot { prev, next, .. } = self.slots[slot as usize];
        if prev == NONE {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NONE {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }

    fn push_tail(&mut self, slot: u32) {
        self.slots[slot as usize].prev = self.tail;
        self.slots[slot as usize].next = NONE;
        if self.tail == NONE {
            self.head = slot;
        } else {
            self.slots[self.tail as usize].next = slot;
        }
        self.tail = slot;
    }

    /// `LRUOffloadingManager.touch`: the blocks present move to the MRU end, last first, so
    /// that the first block ends most recent.
    pub fn touch(&mut self, hashes: &[u64]) {
        for hash in hashes.iter().rev() {
            if let Some(&slot) = self.map.get(hash) {
                if self.tail != slot {
                    self.unlink(slot);
                    self.push_tail(slot);
                }
            }
        }
    }

    /// `LRUOffloadingManager.lookup`: consecutive blocks from the first of `hashes` that are in
    /// the tier and stored by `now`.
    pub fn lookup(&self, hashes: &[u64], now: SimTime) -> usize {
        hashes
            .iter()
            .take_while(|h| self.map.get(h).is_some_and(|&slot| self.slots[slot as usize].ready_at <= now))
            .count()
    }

    /// `prepare_load` and the worker's copy: pins the blocks and queues one transfer on the
    /// host-to-device direction from `now`. Returns when the load is done.
    pub fn start_load(&mut self, hashes: &[u64], now: SimTime) -> SimTime {
        for hash in hashes {
            let slot = self.map[hash];
            self.slots[slot as usize].pins += 1;
        }
        let done = self.load_free.max(now) + self.transfer_time(hashes.len());
        self.load_free = done;
        self.stats.loads += 1;
        self.stats.loaded_blocks += hashes.len() as u64;
        done
    }

    /// `complete_load`: unpins the blocks a finished load read.
    pub fn finish_load(&mut self, hashes: &[u64]) {
        for hash in hashes {
            let slot = self.map[hash] as usize;
            assert!(self.slots[slot].pins > 0, "a CPU block unpinned twice");
            self.slots[slot].pins -= 1;
        }
    }

    /// `prepare_store` for a request's newly full blocks `new` (decided at `now`, copied from
    /// `copy_from`, the end of the step that computes them), then the `touch` of the request's
    /// blocks up to them, `upto`. False, storing nothing, when there is no evictable room.
    pub fn store(&mut self, new: &[u64], upto: &[u64], now: SimTime, copy_from: SimTime) -> bool {
        let fresh = new.iter().filter(|h| !self.map.contains_key(h)).count();
        let room = self.config.num_blocks as usize - self.map.len();
        if fresh > room && !self.evict(fresh - room, now) {
            self.stats.stores_refused += 1;
            return false;
        }
        if fresh == 0 {
            return true;
        }
        let done = self.store_free.max(copy_from) + self.transfer_time(fresh);
        self.store_free = done;
        for &hash in new {
            if self.map.contains_key(&hash) {
                continue;
            }
            let slot = Slot { hash, ready_at: done, pins: 0, prev: NONE, next: NONE };
            let index = match self.free_slots.pop() {
                Some(i) => {
                    self.slots[i as usize] = slot;
                    i
                }
                None => {
                    self.slots.push(slot);
                    self.slots.len() as u32 - 1
                }
            };
            self.map.insert(hash, index);
            self.push_tail(index);
        }
        self.stats.stored_blocks += fresh as u64;
        self.touch(upto);
        true
    }

    /// Evicts `count` blocks from the LRU end, skipping those pinned by a load or not yet
    /// stored; false, evicting nothing, when fewer than `count` qualify.
    fn evict(&mut self, count: usize, now: SimTime) -> bool {
        let mut victims = Vec::with_capacity(count);
        let mut slot = self.head;
        while slot != NONE && victims.len() < count {
            let s = &self.slots[slot as usize];
            if s.pins == 0 && s.ready_at <= now {
                victims.push(slot);
            }
            slot = s.next;
        }
        if victims.len() < count {
            return false;
        }
        for slot in victims {
            self.unlink(slot);
            self.map.remove(&self.slots[slot as usize].hash);
            self.free_slots.push(slot);
        }
        self.stats.evicted_blocks += count as u64;
        true
    }

    /// The O(1) check run after every step in debug builds.
    pub fn check_invariants_cheap(&self) {
        assert!(self.map.len() <= self.config.num_blocks as usize, "CPU tier over capacity");
        if self.map.len() <= 4096 {
            self.check_invariants();
        }
    }

    /// Checks the list against the map (tests and debug builds).
    pub fn check_invariants(&self) {
        assert!(self.map.len() <= self.config.num_blocks as usize, "CPU tier over capacity");
        let mut walked = 0;
        let mut slot = self.head;
        while slot != NONE {
            let s = &self.slots[slot as usize];
            assert_eq!(self.map.get(&s.hash), Some(&slot), "CPU tier list and map disagree");
            walked += 1;
            slot = s.next;
        }
        assert_eq!(walked, self.map.len(), "CPU tier list length");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(blocks: u32) -> CpuTier {
        // 1 MB blocks over a 1 GB/s link with 10 us latency: 1.01 ms per one-block transfer.
        CpuTier::new(TierConfig {
            num_blocks: blocks,
            rank_block_bytes: 1_000_000,
            ranks: 1,
            link_bytes_per_s: 1e9,
            link_latency: Nanos(10_000),
        })
    }

    const T0: SimTime = SimTime(0);

    #[test]
    fn a_stored_block_is_a_hit_only_once_its_copy_is_done() {
        let mut t = tier(4);
        // Two blocks copied from 5 ms: 10 us + 2 MB / 1 GB/s = 2.01 ms, done at 7.01 ms.
        assert!(t.store(&[1, 2], &[1, 2], T0, SimTime(5_000_000)));
        assert_eq!(t.lookup(&[1, 2], SimTime(7_009_999)), 0);
        assert_eq!(t.lookup(&[1, 2, 3], SimTime(7_010_000)), 2);
        // A later store queues behind the first on the device-to-host direction.
        assert!(t.store(&[3], &[1, 2, 3], T0, SimTime(6_000_000)));
        assert_eq!(t.lookup(&[3], SimTime(8_019_999)), 0);
        assert_eq!(t.lookup(&[3], SimTime(8_020_000)), 1);
        t.check_invariants();
    }

    #[test]
    fn loads_queue_on_the_host_to_device_direction() {
        let mut t = tier(4);
        assert!(t.store(&[1, 2, 3], &[1, 2, 3], T0, T0));
        let ready = SimTime(4_000_000);
        assert_eq!(t.start_load(&[1, 2], ready), SimTime(4_000_000 + 2_010_000));
        assert_eq!(t.start_load(&[3], ready), SimTime(6_010_000 + 1_010_000));
        assert_eq!(t.stats.loaded_blocks, 3);
    }

    #[test]
    fn eviction_is_lru_and_skips_pinned_and_unfinished_blocks() {
        let mut t = tier(3);
        let now = SimTime(100_000_000);
        assert!(t.store(&[1, 2, 3], &[1, 2, 3], T0, T0));
        // touch reverses: after touching [1, 2, 3] the order (LRU first) is 3, 2, 1.
        t.start_load(&[3], now);
        // Block 3 is pinned, so storing 4 evicts block 2, the next least recent.
        assert!(t.store(&[4], &[4], now, now));
        assert_eq!(t.lookup(&[3], now), 1);
        assert_eq!(t.lookup(&[2], now), 0);
        assert_eq!(t.lookup(&[1], now), 1);
        // Block 4 is still being copied and 3 pinned: only block 1 can go, so two new blocks
        // are refused and nothing changes.
        assert!(!t.store(&[5, 6], &[5, 6], now, now));
        assert_eq!(t.stats.stores_refused, 1);
        assert_eq!(t.len(), 3);
        t.finish_load(&[3]);
        let later = SimTime(200_000_000);
        assert!(t.store(&[5, 6], &[5, 6], later, later));
        assert_eq!(t.stats.evicted_blocks, 3);
        t.check_invariants();
    }

    #[test]
    fn blocks_already_stored_are_not_copied_again() {
        let mut t = tier(4);
        assert!(t.store(&[1, 2], &[1, 2], T0, T0));
        assert!(t.store(&[1, 2], &[1, 2], T0, T0));
        assert_eq!(t.stats.stored_blocks, 2);
        assert_eq!(t.bytes(t.stats.stored_blocks), 2_000_000);
    }
}
