//! The paged KV cache of one replica, as vLLM V1's `KVCacheManager` and `BlockPool` run it:
//! a block pool with reference counts, block 0 reserved as the null block, an LRU queue of
//! free blocks (allocation pops the head, freed blocks join the tail, a request's blocks are
//! freed tail-first: `free_queue`), and prefix caching of full blocks by their hash chain. A
//! free block keeps its hash, and can be hit again, until it is handed out and evicted.
//!
//! One departure from vLLM's bookkeeping, invisible in every result: a block that holds tokens
//! only its request has (`Request::private_from`) can be hit by no other request, so it is not
//! registered while the request runs. Only a preemption lets the request look its own blocks
//! up again, so they are registered then, before they are freed, which leaves the map as
//! vLLM's would be (issue 15: each insert and each eviction of such a block was a cache miss
//! in a fleet's pools, and its hash a computation nobody needed). `Limits::step_by_step`
//! registers every block eagerly, and `tests/it/fast_path.rs` compares the two.

mod free_queue;
mod prefix_memo;

use std::hash::{BuildHasherDefault, Hasher};

use free_queue::{Entry, FreeQueue, ANONYMOUS};
use prefix_memo::PrefixMemo;

use super::request::{KvState, Request};

/// Block hashes are already uniformly mixed 64-bit values, so the map hashes them as they are.
#[derive(Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Hash -> block. Lookups and removals only, never iterated, so its order cannot reach an
/// output or a decision (the reason std's HashMap is otherwise disallowed here).
#[allow(clippy::disallowed_types)]
type BlockMap = std::collections::HashMap<u64, u32, BuildHasherDefault<PassThrough>>;

const NONE: u32 = u32::MAX;

/// Entries the prefix map is sized for at start (at most one per block, so a pool of up to
/// this many blocks never rehashes; a larger one grows from here). Growing from empty was
/// 3-4% of the six phases, every run rebuilding its map (issue 15). 32,768 entries are about
/// 0.5 MB of address space, of which only the 32 KB of control bytes is written up front.
const PRESIZED_MAP: u32 = 1 << 15;

/// One block's state, kept together so that handing out, hitting or freeing a block touches
/// one cache line rather than one per field: a fleet's pools do not fit in a core's cache, and
/// with the fields in five vectors each of these cost up to five misses (issue 15: a
/// 64-replica fleet's requests cost 2.7x a single replica's, `perf` putting the difference in
/// the pools).
#[derive(Clone, Copy, Debug)]
struct Block {
    /// The prefix hash the block holds, valid when `hashed` is set.
    hash: u64,
    /// Its position in the free queue, valid while it is there (`ref_cnt` 0, handed out before).
    queued: u64,
    ref_cnt: u32,
    /// Whether `hash` is set.
    hashed: bool,
    /// Whether the block is the one `cached` maps its hash to, so that evicting a block
    /// probes the map only when there is an entry to remove.
    mapped: bool,
}

impl Block {
    /// A block just handed out (or block 0, the null block, which is never free).
    const HELD: Block = Block { hash: 0, queued: 0, ref_cnt: 1, hashed: false, mapped: false };

    fn hash(&self) -> Option<u64> {
        self.hashed.then_some(self.hash)
    }
}

/// Token counters behind vLLM's prefix-cache hit rate (`PrefixCacheStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixStats {
    pub queries: u64,
    pub hits: u64,
}

/// A pool's usable blocks by state (block 0, the null block, is not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCounts {
    /// In the free queue without a prefix hash.
    pub free: u32,
    /// In the free queue, still holding a prefix that can be hit (evictable).
    pub cached: u32,
    /// Referenced by a request.
    pub used: u32,
    pub total: u32,
    /// What the pool's free counter says (`free + cached` when the books balance).
    pub counted_free: u32,
    /// Blocks in the free queue that a request still references (0 when the books balance).
    pub queued_in_use: u32,
}

/// The free queue is vLLM's: at start every block in id order, allocation from the head,
/// frees to the tail, and a hit on a cached free block takes it from the middle. What is
/// handed out from each place in the queue follows vLLM, with one freedom: a free block that
/// is not its hash's map entry can be neither hit nor evicted, so all such blocks are alike
/// and only their number matters. Their places in the queue are kept (`ANONYMOUS` entries,
/// and the blocks never handed out, which head the queue at start), and each of those places
/// hands out the most recently freed such block (`spare`), or else one never handed out.
/// Every hit and every eviction is vLLM's; block ids, which no output shows, differ. Reusing
/// recent blocks keeps a fleet's pools small in the cache instead of cycling through every
/// block (issue 15), and the per-block records grow only as blocks are first used: memory
/// follows the blocks a run touches, not the pool's size.
#[derive(Debug)]
pub struct KvCache {
    block_size: u32,
    num_blocks: u32,
    /// The first block never handed out; blocks `fresh..num_blocks` are all untouched.
    fresh: u32,
    /// Blocks `0..fresh`.
    blocks: Vec<Block>,
    /// Places at the head of the free queue that blocks never handed out held at start.
    leading: u32,
    /// The rest of the free queue, in order: mapped blocks, and an `ANONYMOUS` place for each
    /// other block freed.
    queue: FreeQueue,
    /// Free blocks that are not map entries, handed out before; the last freed last.
    spare: Vec<u32>,
    num_free: u32,
    /// Hash -> a block holding it. Used for lookups only; never iterated.
    cached: BlockMap,
    /// Chains recent lookups found, checked against `blocks` before use (`prefix_memo`).
    memo: PrefixMemo,
    prefix_caching: bool,
    /// Whether private blocks wait for a preemption to be registered (module doc).
    defer_private: bool,
    pub stats: PrefixStats,
}

impl KvCache {
    /// A pool of `num_blocks` blocks; block 0 is the null block, so `num_blocks - 1` are usable.
    pub fn new(num_blocks: u32, block_size: u32, prefix_caching: bool) -> KvCache {
        assert!((2..NONE).contains(&num_blocks), "a KV cache needs at least one usable block");
        KvCache {
            block_size,
            num_blocks,
            fresh: 1,
            // Block 0, the null block, is never free.
            blocks: vec![Block::HELD],
            leading: num_blocks - 1,
            queue: FreeQueue::default(),
            spare: Vec::new(),
            num_free: num_blocks - 1,
            cached: if prefix_caching {
                BlockMap::with_capacity_and_hasher(num_blocks.min(PRESIZED_MAP) as usize, Default::default())
            } else {
                BlockMap::default()
            },
            memo: PrefixMemo::default(),
            prefix_caching,
            defer_private: true,
            stats: PrefixStats::default(),
        }
    }

    /// Registers every full block as vLLM does, private ones included (the reference that
    /// deferring them is compared with; also used where a CPU tier stores blocks by hash).
    pub fn register_every_block(&mut self) {
        self.defer_private = false;
    }

    /// The first of `request`'s blocks that is not registered while it runs: private blocks
    /// wait until a preemption exposes them (module doc).
    fn first_deferred(&self, request: &Request) -> usize {
        match self.defer_private && !request.kv.exposed {
            true => (request.private_from / self.block_size) as usize,
            false => usize::MAX,
        }
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Whether full blocks are registered by hash for later requests to hit.
    pub fn prefix_caching(&self) -> bool {
        self.prefix_caching
    }

    pub fn usable_blocks(&self) -> u32 {
        self.num_blocks - 1
    }

    /// Free blocks, evictable cached ones included (vLLM `get_num_free_blocks`).
    pub fn num_free(&self) -> u32 {
        self.num_free
    }

    /// vLLM `BlockPool.get_usage`: `1 - free / (num_gpu_blocks - 1)`.
    pub fn usage(&self) -> f64 {
        1.0 - self.num_free as f64 / self.usable_blocks() as f64
    }

    /// A block whose last reference went joins the queue's tail: by id when it is its hash's
    /// map entry (a hit may take it back), else as an anonymous place (struct doc).
    fn push_tail(&mut self, block: u32) {
        let b = &self.blocks[block as usize];
        if b.mapped {
            let position = self.queue.push(Entry { hash: b.hash, block, mapped: true });
            self.blocks[block as usize].queued = position;
        } else {
            self.queue.push(Entry { hash: 0, block: ANONYMOUS, mapped: false });
            self.spare.push(block);
        }
        self.num_free += 1;
    }

    /// Takes a mapped free block out of the queue (a prefix hit).
    fn unlink(&mut self, block: u32) {
        let blocks = &mut self.blocks;
        let queued = blocks[block as usize].queued;
        self.queue.remove(queued, |moved, position| {
            if moved != ANONYMOUS {
                blocks[moved as usize].queued = position;
            }
        });
        self.num_free -= 1;
    }

    /// Pops the head of the free queue: a mapped block is evicted from the prefix cache and
    /// handed out; an anonymous place hands out a spare block (struct doc).
    fn pop_free(&mut self) -> u32 {
        self.num_free -= 1;
        if self.leading > 0 {
            self.leading -= 1;
            return self.take_spare();
        }
        let entry = self.queue.pop().expect("allocating from an empty free queue");
        if entry.block == ANONYMOUS {
            return self.take_spare();
        }
        // The entry's copy of the hash, so the map's probe does not wait on the block's record.
        self.cached.remove(&entry.hash);
        let b = &mut self.blocks[entry.block as usize];
        debug_assert!(b.ref_cnt == 0 && b.mapped && entry.mapped && b.hash == entry.hash);
        *b = Block::HELD;
        entry.block
    }

    /// The most recently freed spare block, else the first block never handed out.
    fn take_spare(&mut self) -> u32 {
        if let Some(block) = self.spare.pop() {
            let b = &mut self.blocks[block as usize];
            debug_assert!(b.ref_cnt == 0 && !b.mapped);
            *b = Block::HELD;
            return block;
        }
        assert!(self.fresh < self.num_blocks, "an anonymous free place without a free block");
        let block = self.fresh;
        self.fresh += 1;
        self.blocks.push(Block::HELD);
        block
    }

    /// The longest run of cached full blocks from the start of the request's tokens, at most
    /// `(num_tokens - 1) / block_size` blocks, since the last token is always recomputed
    /// (`KVCacheManager.get_computed_blocks`). Writes the blocks to `hits` and counts the lookup
    /// in the hit-rate statistics. Returns the hit tokens.
    pub fn find_cached_prefix(&mut self, request: &mut Request, hits: &mut Vec<u32>) -> u32 {
        hits.clear();
        if !self.prefix_caching {
            return 0;
        }
        let num_tokens = request.num_tokens();
        // Its private blocks cannot be in the cache until it was preempted.
        let max_blocks = (((num_tokens - 1) / self.block_size) as usize).min(self.first_deferred(request));
        request.ensure_block_hashes(max_blocks as u32 * self.block_size, self.block_size);
        let hashes = &request.kv.block_hashes[..max_blocks];
        if let Some(&first) = hashes.first() {
            let chain = self.memo.chain(first);
            // The remembered chain, while it is this request's and its blocks still hold it.
            for (&hash, &(remembered, block)) in hashes.iter().zip(chain.iter()) {
                let b = &self.blocks[block as usize];
                if remembered != hash || !b.mapped || b.hash != hash {
                    break;
                }
                hits.push(block);
            }
            let checked = hits.len();
            for &hash in &hashes[checked..] {
                match self.cached.get(&hash) {
                    Some(&block) => hits.push(block),
                    None => break,
                }
            }
            prefix_memo::remember(chain, checked, hashes, hits);
        }
        let hit_tokens = hits.len() as u32 * self.block_size;
        self.stats.queries += num_tokens as u64;
        self.stats.hits += hit_tokens as u64;
        hit_tokens
    }

    /// Full blocks of `hashes` cached here, counted from the start (no statistics recorded);
    /// what a prefix-affinity router asks every replica.
    pub fn cached_prefix_blocks(&self, hashes: &[u64]) -> usize {
        if !self.prefix_caching {
            return 0;
        }
        hashes.iter().take_while(|h| self.cached.contains_key(h)).count()
    }

    /// vLLM `allocate_slots`: makes room for `num_new_tokens` more tokens after the request's
    /// computed tokens and the `hits` just found. Returns false, changing nothing, when the free
    /// blocks (counting hit blocks that sit in the free queue as taken) do not suffice.
    #[inline]
    pub fn allocate_slots(
        &mut self,
        request: &mut Request,
        num_new_tokens: u32,
        hits: &[u32],
        max_model_len: u32,
    ) -> bool {
        self.allocate(request, num_new_tokens, hits, max_model_len, true)
    }

    /// `allocate_slots` with `delay_cache_blocks`: room for `num_load_tokens` tokens that an
    /// asynchronous load will fill (from the CPU tier, after the GPU `hits`; or a disaggregated
    /// decode's read of its prompt from a prefill replica, with no hits). The new blocks are
    /// registered in the prefix cache only when the load is done (`cache_loaded`), so no other
    /// request hits them before their contents arrive.
    pub fn allocate_for_load(
        &mut self,
        request: &mut Request,
        num_load_tokens: u32,
        hits: &[u32],
        max_model_len: u32,
    ) -> bool {
        self.allocate(request, num_load_tokens, hits, max_model_len, false)
    }

    /// vLLM `_update_waiting_for_remote_kv` -> `cache_blocks`: registers the request's blocks
    /// that are full within its first `tokens` tokens, once their load (CPU tier or remote
    /// prefill) is done.
    pub fn cache_loaded(&mut self, request: &mut Request, tokens: u32) {
        if self.prefix_caching {
            self.cache_full_blocks(request, tokens);
        }
    }

    fn allocate(
        &mut self,
        request: &mut Request,
        num_new_tokens: u32,
        hits: &[u32],
        max_model_len: u32,
        cache: bool,
    ) -> bool {
        let computed = request.num_computed + hits.len() as u32 * self.block_size;
        let total = (computed + num_new_tokens).min(max_model_len);
        let required = total.div_ceil(self.block_size) as usize;
        let held = request.kv.blocks.len() + hits.len();
        let new_blocks = required.saturating_sub(held) as u32;
        let hits_in_free_queue = hits.iter().filter(|&&b| self.blocks[b as usize].ref_cnt == 0).count() as u32;
        if new_blocks + hits_in_free_queue > self.num_free {
            return false;
        }
        if request.kv.blocks.capacity() == 0 {
            // Room for the request's whole life at once (bounded, against huge output limits),
            // before the hits are pushed: reserved after them, a request with hits grew its
            // list push by push (issue 15: reallocations were 5% of a 64-replica replay).
            let lifetime = (request.prompt_tokens as u64 + request.max_output_tokens as u64).min(max_model_len as u64);
            request.kv.blocks.reserve_exact(lifetime.div_ceil(self.block_size as u64).min(4096) as usize);
        }
        for &block in hits {
            if self.blocks[block as usize].ref_cnt == 0 {
                self.unlink(block);
            }
            self.blocks[block as usize].ref_cnt += 1;
            request.kv.blocks.push(block);
        }
        if !hits.is_empty() {
            // Hits come only at admission, before the request holds anything, and they are
            // already registered in the cache under this request's hashes.
            debug_assert_eq!(held, hits.len());
            request.kv.num_cached_blocks = hits.len();
        }
        for _ in 0..new_blocks {
            let block = self.pop_free();
            request.kv.blocks.push(block);
        }
        if self.prefix_caching && cache {
            let cacheable = (computed + num_new_tokens).min(request.num_tokens());
            self.cache_full_blocks(request, cacheable);
        }
        true
    }

    /// Registers the request's blocks that are full within its first `tokens` tokens, but for
    /// private ones, which wait for a preemption (module doc).
    fn cache_full_blocks(&mut self, request: &mut Request, tokens: u32) {
        let full = ((tokens / self.block_size) as usize).min(request.kv.blocks.len());
        if full <= request.kv.num_cached_blocks {
            return;
        }
        let registered = full.min(self.first_deferred(request));
        if registered > request.kv.num_cached_blocks {
            self.register(request, request.kv.num_cached_blocks..registered);
        }
        request.kv.num_cached_blocks = full;
    }

    /// Registers the request's full blocks `range` (in order, as vLLM caches them).
    fn register(&mut self, request: &mut Request, range: std::ops::Range<usize>) {
        request.ensure_block_hashes(range.end as u32 * self.block_size, self.block_size);
        for i in range {
            let block = request.kv.blocks[i];
            let hash = request.kv.block_hashes[i];
            let b = &mut self.blocks[block as usize];
            if !b.hashed {
                b.hash = hash;
                b.hashed = true;
                // Duplicates are not merged: an existing entry keeps serving lookups.
                if let std::collections::hash_map::Entry::Vacant(slot) = self.cached.entry(hash) {
                    slot.insert(block);
                    b.mapped = true;
                }
            }
        }
    }

    /// vLLM `_preempt_request`'s `kv_cache_manager.free`: the request may now hit its own
    /// blocks when it is admitted again, so its private full blocks are registered first, as
    /// they would have been when they filled (no entry for them can exist: nobody else has
    /// their hashes, and it registered none of them before), then all are freed.
    pub fn preempt(&mut self, request: &mut Request) {
        let deferred = self.first_deferred(request);
        request.kv.exposed = true;
        if self.prefix_caching && deferred < request.kv.num_cached_blocks {
            self.register(request, deferred..request.kv.num_cached_blocks);
        }
        self.free(&mut request.kv);
    }

    /// Releases a request's blocks, last block first, so that its tail is evicted first
    /// (`KVCacheManager.free`). Cached blocks keep their hash in the free queue.
    pub fn free(&mut self, kv: &mut KvState) {
        for &block in kv.blocks.iter().rev() {
            let count = &mut self.blocks[block as usize].ref_cnt;
            assert!(*count > 0, "block {block} freed twice");
            *count -= 1;
            if *count == 0 {
                self.push_tail(block);
            }
        }
        kv.blocks.clear();
        kv.num_cached_blocks = 0;
    }

    /// Blocks in use by running requests (ref count > 0), excluding the null block.
    pub fn used_blocks(&self) -> u32 {
        self.usable_blocks() - self.num_free
    }

    /// The pool's blocks by state, counted from the reference counts and a walk of the free
    /// queue: O(blocks touched), meant for once per run.
    pub fn block_counts(&self) -> BlockCounts {
        let used = self.blocks[1..].iter().filter(|b| b.ref_cnt > 0).count() as u32;
        // Anonymous places hold blocks that no hit can find: free, whatever their hash.
        let (mut free, mut cached) = (self.leading, 0);
        let mut queued_in_use = self.spare.iter().filter(|&&b| self.blocks[b as usize].ref_cnt > 0).count() as u32;
        for (_, entry) in self.queue.iter() {
            if entry.block == ANONYMOUS {
                free += 1;
                continue;
            }
            let b = &self.blocks[entry.block as usize];
            queued_in_use += (b.ref_cnt > 0) as u32;
            match b.hashed {
                true => cached += 1,
                false => free += 1,
            }
        }
        BlockCounts { free, cached, used, total: self.usable_blocks(), counted_free: self.num_free, queued_in_use }
    }

    /// The end-of-run check, in every build: every usable block is free, cached (free but
    /// holding a prefix) or used, exactly once.
    pub fn check_accounting(&self) -> Result<(), String> {
        let c = self.block_counts();
        if c.free + c.cached + c.used == c.total && c.free + c.cached == c.counted_free && c.queued_in_use == 0 {
            return Ok(());
        }
        Err(format!(
            "KV blocks not conserved: {} free + {} cached + {} used != {} usable (free counter {}, {} blocks in the free queue still referenced)",
            c.free, c.cached, c.used, c.total, c.counted_free, c.queued_in_use
        ))
    }

    /// Checks the pool's bookkeeping after every step in debug and test builds: O(1) when the
    /// pool is large, a full walk of the reference counts and the free queue when it is small
    /// (as in unit tests, where every block matters).
    pub fn check_invariants(&self) {
        assert!(self.num_free <= self.usable_blocks(), "more free blocks than blocks");
        assert!(self.blocks[0].ref_cnt > 0, "the null block was handed out");
        if self.num_blocks > 4096 {
            return;
        }
        let in_use = self.blocks[1..].iter().filter(|b| b.ref_cnt > 0).count() as u32;
        assert_eq!(in_use + self.num_free, self.usable_blocks(), "KV blocks not conserved");
        let untouched = self.num_blocks - self.fresh;
        let mut anonymous = 0;
        for (position, entry) in self.queue.iter() {
            if entry.block == ANONYMOUS {
                anonymous += 1;
                continue;
            }
            let b = &self.blocks[entry.block as usize];
            assert_eq!(b.ref_cnt, 0, "block {} in free queue with references", entry.block);
            assert_eq!(b.queued, position, "block {}'s free-queue position", entry.block);
            assert!(b.mapped && entry.mapped && b.hash == entry.hash, "block {} queued by id unmapped", entry.block);
        }
        for &block in &self.spare {
            let b = &self.blocks[block as usize];
            assert!(b.ref_cnt == 0 && !b.mapped, "spare block {block} referenced or mapped");
        }
        assert_eq!(self.queue.len() as u32 + self.leading, self.num_free, "free queue length");
        assert_eq!(anonymous + self.leading, self.spare.len() as u32 + untouched, "anonymous places != spare blocks");
        let mapped = self.blocks.iter().filter(|b| b.mapped).count();
        assert_eq!(mapped, self.cached.len(), "blocks marked as mapped != prefix-cache entries");
        for (block, b) in self.blocks.iter().enumerate() {
            assert!(!b.mapped || b.hash().is_some_and(|h| self.cached.get(&h) == Some(&(block as u32))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimTime;
    use crate::workload::{RequestSpec, Segment};

    fn request(id: u64, segments: Vec<Segment>) -> Request {
        let prompt_tokens = segments.iter().map(|s| s.len).sum();
        Request::new(
            0,
            RequestSpec {
                index: 0,
                arrival: SimTime::ZERO,
                prompt_tokens,
                output_tokens: 4,
                segments,
                output_segment: 1000 + id,
                client: None,
                session: None,
                private_from: RequestSpec::SHARED,
            },
        )
    }

    #[test]
    fn issue_14_a_huge_pool_holds_only_the_blocks_it_hands_out() {
        // See: issue 14. A pool of 2^31 blocks allocated 60 GB up front.
        let mut kv = KvCache::new(1 << 31, 16, true);
        let mut r = request(1, vec![Segment { id: 1, len: 40 }]);
        assert!(kv.allocate_slots(&mut r, 40, &[], 4096));
        assert_eq!(r.kv.blocks, vec![1, 2, 3]);
        assert_eq!(kv.blocks.len(), 4);
        assert_eq!(kv.num_free(), (1 << 31) - 4);
        kv.free(&mut r.kv);
        assert_eq!(kv.num_free(), (1 << 31) - 1);
        kv.check_invariants();
    }

    // See: issue 17
    /// A remote load's blocks are registered in the prefix cache only once the KV arrived
    /// (vLLM's `delay_cache_blocks`): before, a second request with the same prompt finds
    /// nothing; after `cache_blocks`, it finds the full blocks within the computed tokens.
    #[test]
    fn issue_17_remote_blocks_are_cached_only_after_the_read() {
        let mut kv = KvCache::new(20, 16, true);
        let prompt = vec![Segment { id: 7, len: 40 }];
        let mut remote = request(1, prompt.clone());
        assert!(kv.allocate_for_load(&mut remote, 40, &[], 4096));
        assert_eq!(remote.kv.blocks.len(), 3);
        let mut other = request(2, prompt);
        let mut hits = Vec::new();
        assert_eq!(kv.find_cached_prefix(&mut other, &mut hits), 0);
        // On arrival 39 tokens count as computed: two full blocks are cacheable.
        kv.cache_loaded(&mut remote, 39);
        assert_eq!(kv.find_cached_prefix(&mut other, &mut hits), 32);
        kv.check_invariants();
    }

    /// The prefix map as sorted (hash, block) pairs, to compare two caches' contents.
    fn map_of(kv: &KvCache) -> Vec<(u64, u32)> {
        let mut entries: Vec<(u64, u32)> = kv.cached.iter().map(|(&h, &b)| (h, b)).collect();
        entries.sort_unstable();
        entries
    }

    // See: issue 15
    /// A request's private blocks (after a 32-token shared prefix) stay out of the prefix map
    /// while it runs; preempted, it registers them, and the map, the free queue and its own
    /// hits on readmission are those of a cache that registered every block as it filled.
    #[test]
    fn issue_15_private_blocks_are_registered_at_preemption_as_if_eagerly() {
        let mut deferred = KvCache::new(40, 16, true);
        let mut eager = KvCache::new(40, 16, true);
        eager.register_every_block();
        let make = |id: u64| {
            let mut r = request(id, vec![Segment { id: 1, len: 32 }, Segment { id: 100 + id, len: 50 }]);
            r.private_from = 32;
            r
        };
        let (mut a, mut b) = (make(1), make(1));
        for (kv, r) in [(&mut deferred, &mut a), (&mut eager, &mut b)] {
            assert!(kv.allocate_slots(r, 82, &[], 4096));
            r.num_computed = 82;
            // A decode that fills a sixth block: 96 tokens.
            r.output_tokens = 14;
            assert!(kv.allocate_slots(r, 14, &[], 4096));
            r.num_computed = 96;
        }
        assert_eq!(a.kv.num_cached_blocks, 6);
        assert_eq!(map_of(&deferred).len(), 2, "only the shared prefix's two blocks are registered");
        assert_eq!(map_of(&eager).len(), 6);
        // Another request shares the prefix only: both caches give it the same two blocks.
        let mut other = make(2);
        let (mut hits, mut hits_eager) = (Vec::new(), Vec::new());
        assert_eq!(deferred.find_cached_prefix(&mut other.clone(), &mut hits), 32);
        assert_eq!(eager.find_cached_prefix(&mut other, &mut hits_eager), 32);
        assert_eq!(hits, hits_eager);
        deferred.preempt(&mut a);
        eager.preempt(&mut b);
        assert_eq!(map_of(&deferred), map_of(&eager));
        let in_queue = |kv: &KvCache| {
            kv.queue.iter().map(|(_, e)| (e.block, e.mapped, e.mapped.then_some(e.hash))).collect::<Vec<_>>()
        };
        assert_eq!(in_queue(&deferred), in_queue(&eager));
        // Readmitted, it hits its own five full blocks (the sixth holds its last token).
        for (kv, r) in [(&mut deferred, &mut a), (&mut eager, &mut b)] {
            r.num_computed = 0;
            assert_eq!(kv.find_cached_prefix(r, &mut hits), 80);
            kv.check_invariants();
        }
        assert_eq!(deferred.stats, eager.stats);
    }

    // See: issue 15
    /// Blocks that no hit can find are interchangeable: freed ones are reused, the most recently
    /// freed first, before blocks never handed out.
    #[test]
    fn unmapped_blocks_are_reused_most_recent_first() {
        let mut kv = KvCache::new(6, 16, false);
        let mut a = request(1, vec![Segment { id: 1, len: 32 }]);
        assert!(kv.allocate_slots(&mut a, 32, &[], 4096));
        assert_eq!(a.kv.blocks, vec![1, 2]);
        // Freed tail first: 2, then 1, which is handed out first.
        kv.free(&mut a.kv);
        let mut b = request(2, vec![Segment { id: 2, len: 80 }]);
        assert!(kv.allocate_slots(&mut b, 80, &[], 4096));
        assert_eq!(b.kv.blocks, vec![1, 2, 3, 4, 5]);
        assert_eq!(kv.blocks.len(), 6);
        kv.check_invariants();
    }

    // See: issue 15
    /// vLLM's queue decides what each allocation evicts: cached blocks freed after unmapped
    /// ones are evicted only once the places before them are used, whichever block filled
    /// those places.
    #[test]
    fn evictions_follow_vllms_queue_order_through_anonymous_places() {
        // 6 usable blocks.
        let mut kv = KvCache::new(7, 16, true);
        let mut cached = request(1, vec![Segment { id: 1, len: 32 }]);
        let mut private = request(2, vec![Segment { id: 2, len: 48 }]);
        private.private_from = 0;
        assert!(kv.allocate_slots(&mut private, 48, &[], 4096));
        assert!(kv.allocate_slots(&mut cached, 32, &[], 4096));
        // Free queue: 1 untouched place, then 3 anonymous places (the private request's
        // blocks), then the cached request's two blocks, tail first.
        kv.free(&mut private.kv);
        kv.free(&mut cached.kv);
        let mut again = request(3, vec![Segment { id: 1, len: 40 }]);
        let mut hits = Vec::new();
        let mut filler = request(4, vec![Segment { id: 4, len: 64 }]);
        // Four places are taken without evicting: the untouched one and the three anonymous.
        assert!(kv.allocate_slots(&mut filler, 64, &[], 4096));
        assert_eq!(kv.find_cached_prefix(&mut again, &mut hits), 32);
        // The fifth place evicts the cached request's tail block; its first block still hits.
        let mut one = request(5, vec![Segment { id: 5, len: 16 }]);
        assert!(kv.allocate_slots(&mut one, 16, &[], 4096));
        assert_eq!(kv.find_cached_prefix(&mut again, &mut hits), 16);
        kv.check_invariants();
        assert_eq!(kv.check_accounting(), Ok(()));
    }

    #[test]
    fn allocation_takes_whole_blocks_and_free_returns_them() {
        let mut kv = KvCache::new(11, 16, true);
        let mut r = request(1, vec![Segment { id: 1, len: 40 }]);
        assert!(kv.allocate_slots(&mut r, 40, &[], 4096));
        assert_eq!(r.kv.blocks.len(), 3);
        assert_eq!(kv.num_free(), 7);
        // Two full blocks are cached, the third (8 tokens) is not.
        assert_eq!(r.kv.num_cached_blocks, 2);
        kv.free(&mut r.kv);
        assert_eq!(kv.num_free(), 10);
        kv.check_invariants();
    }

    #[test]
    fn a_later_request_hits_the_freed_prefix_and_the_last_token_is_recomputed() {
        let mut kv = KvCache::new(20, 16, true);
        let mut a = request(1, vec![Segment { id: 1, len: 48 }]);
        assert!(kv.allocate_slots(&mut a, 48, &[], 4096));
        kv.free(&mut a.kv);
        // Same 48 tokens: 3 full blocks cached, but at most (48 - 1) / 16 = 2 may be hit.
        let mut b = request(2, vec![Segment { id: 1, len: 48 }]);
        let mut hits = Vec::new();
        assert_eq!(kv.find_cached_prefix(&mut b, &mut hits), 32);
        assert_eq!(hits, a_blocks_prefix(&kv, &b, 2));
        assert!(kv.allocate_slots(&mut b, 16, &hits, 4096));
        assert_eq!(b.kv.blocks.len(), 3);
        assert_eq!(kv.stats, PrefixStats { queries: 48, hits: 32 });
        kv.check_invariants();
    }

    // See: issue 15
    /// A remembered chain whose third block was evicted (its record now holds another hash):
    /// the lookup stops where the map does, and once the hash is registered again it finds
    /// the block the map holds.
    #[test]
    fn issue_15_a_remembered_chain_is_checked_against_evictions() {
        // 9 usable blocks.
        let mut kv = KvCache::new(10, 16, true);
        let prompt = || request(1, vec![Segment { id: 1, len: 48 }, Segment { id: 9, len: 16 }]);
        let mut a = prompt();
        assert!(kv.allocate_slots(&mut a, 64, &[], 4096));
        let a_blocks = a.kv.blocks.clone();
        kv.free(&mut a.kv);
        let mut hits = Vec::new();
        let mut b = prompt();
        assert_eq!(kv.find_cached_prefix(&mut b, &mut hits), 48);
        assert_eq!(hits, a_blocks[..3]);
        // Free queue: 5 untouched places, then a's blocks tail first: 7 blocks evict a's last
        // two, the third of the shared segment among them.
        let mut filler = request(2, vec![Segment { id: 2, len: 112 }]);
        assert!(kv.allocate_slots(&mut filler, 112, &[], 4096));
        kv.free(&mut filler.kv);
        let mut c = prompt();
        assert_eq!(kv.find_cached_prefix(&mut c, &mut hits), 32);
        assert!(kv.allocate_slots(&mut c, 32, &hits, 4096));
        c.num_computed = 64;
        let mut d = prompt();
        assert_eq!(kv.find_cached_prefix(&mut d, &mut hits), 48);
        assert_eq!(hits, a_blocks_prefix(&kv, &d, 3));
        assert_eq!(hits, c.kv.blocks[..3]);
        kv.check_invariants();
    }

    fn a_blocks_prefix(kv: &KvCache, b: &Request, n: usize) -> Vec<u32> {
        b.kv.block_hashes[..n].iter().map(|h| kv.cached[h]).collect()
    }

    #[test]
    fn eviction_is_lru_and_tail_blocks_go_first() {
        // 4 usable blocks.
        let mut kv = KvCache::new(5, 16, true);
        let mut a = request(1, vec![Segment { id: 1, len: 32 }]);
        assert!(kv.allocate_slots(&mut a, 32, &[], 4096));
        let a_blocks = a.kv.blocks.clone();
        kv.free(&mut a.kv);
        // Free queue now: [3, 4, a1, a0] (a's tail first).
        let mut b = request(2, vec![Segment { id: 2, len: 48 }]);
        assert!(kv.allocate_slots(&mut b, 48, &[], 4096));
        // b took 3, 4 and then a's second block, evicting it; a's first block is still cached.
        assert_eq!(b.kv.blocks[2], a_blocks[1]);
        let mut again = request(3, vec![Segment { id: 1, len: 40 }]);
        let mut hits = Vec::new();
        assert_eq!(kv.find_cached_prefix(&mut again, &mut hits), 16);
        assert_eq!(hits, vec![a_blocks[0]]);
    }

    // See: issue 14
    /// The end-of-run check counts every usable block once, as free, cached or used, in every
    /// build, and names a pool whose books do not balance.
    #[test]
    fn issue_14_kv_accounting_counts_every_block_once_and_names_a_leak() {
        let mut kv = KvCache::new(11, 16, true);
        let mut r = request(1, vec![Segment { id: 1, len: 40 }]);
        assert!(kv.allocate_slots(&mut r, 40, &[], 4096));
        let c = kv.block_counts();
        assert_eq!((c.free, c.cached, c.used, c.total), (7, 0, 3, 10));
        assert_eq!(kv.check_accounting(), Ok(()));
        kv.free(&mut r.kv);
        let c = kv.block_counts();
        assert_eq!((c.free, c.cached, c.used), (8, 2, 0));
        assert_eq!(kv.check_accounting(), Ok(()));
        // A block referenced again without leaving the free queue: a leak the books must show.
        kv.blocks[1].ref_cnt += 1;
        let error = kv.check_accounting().unwrap_err();
        assert!(error.starts_with("KV blocks not conserved: "), "{error}");
    }

    #[test]
    fn allocation_fails_without_changing_anything() {
        let mut kv = KvCache::new(3, 16, false);
        let mut r = request(1, vec![Segment { id: 1, len: 40 }]);
        assert!(!kv.allocate_slots(&mut r, 40, &[], 4096));
        assert!(r.kv.blocks.is_empty());
        assert_eq!(kv.num_free(), 2);
        assert_eq!(kv.usage(), 0.0);
    }

    #[test]
    fn hit_blocks_in_the_free_queue_count_against_free_space() {
        let mut kv = KvCache::new(4, 16, true);
        let mut a = request(1, vec![Segment { id: 1, len: 33 }]);
        assert!(kv.allocate_slots(&mut a, 33, &[], 4096));
        kv.free(&mut a.kv);
        let mut b = request(2, vec![Segment { id: 1, len: 32 }, Segment { id: 9, len: 40 }]);
        let mut hits = Vec::new();
        assert_eq!(kv.find_cached_prefix(&mut b, &mut hits), 32);
        // 72 tokens need 5 blocks: 2 hits (both in the free queue) + 3 new > 3 free.
        assert!(!kv.allocate_slots(&mut b, 40, &hits, 4096));
        assert_eq!(kv.num_free(), 3);
        assert!(kv.allocate_slots(&mut b, 16, &hits, 4096));
        assert_eq!(kv.num_free(), 0);
        kv.check_invariants();
    }
}
