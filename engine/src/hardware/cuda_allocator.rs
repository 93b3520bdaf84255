//! PyTorch's CUDA caching allocator, replayed: which segments it reserves from the driver for a
//! sequence of tensor allocations and frees, and when it runs out of memory.
//!
//! `torch.OutOfMemoryError` is raised on *reserved* memory, not allocated: freed blocks stay
//! cached in their segments, and a request that no cached block fits needs a new segment even
//! when the free bytes in the cache add up to more. A program that keeps replacing tensors with
//! slightly larger ones (Hugging Face's `DynamicCache`, which concatenates every step) fragments
//! the cache this way; an analytic peak of allocated bytes cannot see it. The rules below are
//! those of `c10/cuda/CUDACachingAllocator.cpp` (PyTorch 2.x, default configuration: no
//! `PYTORCH_CUDA_ALLOC_CONF`, so no `max_split_size_mb` and no expandable segments):
//!
//! - `round_size`: requests are rounded up to 512 bytes (`kMinBlockSize`);
//! - pools: requests of at most 1 MiB (`kSmallSize`) come from the small pool, the rest from the
//!   large pool. Only the large pool is replayed: small blocks live in 2 MiB segments of their
//!   own that never hold a large block, and they add a few MiB at most;
//! - `get_free_block`: the smallest cached block at least as large as the request (a best fit,
//!   blocks ordered by size, then address);
//! - `get_allocation_size`: with no cached block to use, a new segment of 20 MiB
//!   (`kLargeBuffer`) for requests under 10 MiB (`kMinLargeAlloc`), else the request rounded up
//!   to 2 MiB (`kRoundLarge`);
//! - `should_split` / `alloc_found_block`: a large block more than 1 MiB larger than the request
//!   is split, the request taking its front and the rest staying cached;
//! - `free_block` / `try_merge_blocks`: a freed block merges with its free neighbours in the
//!   same segment;
//! - on a failed `cudaMalloc`, `release_cached_blocks` returns every segment that is wholly free
//!   to the driver and the allocation is tried once more; if it still does not fit, the program
//!   gets `torch.OutOfMemoryError`.
//!
//! Addresses are modelled as (segment number, offset), segments numbered in allocation order:
//! the driver's real addresses only break ties between blocks of equal size.

use std::collections::BTreeSet;

/// `kMinBlockSize`: every request is rounded up to a multiple of 512 bytes.
const MIN_BLOCK: u64 = 512;
/// `kSmallSize`: requests up to 1 MiB use the small pool; a large block is split only when
/// more than this would remain.
const SMALL_SIZE: u64 = 1 << 20;
/// `kMinLargeAlloc`: large requests under 10 MiB get a `kLargeBuffer` segment.
const MIN_LARGE_ALLOC: u64 = 10 << 20;
/// `kLargeBuffer`: the segment size for large requests under `kMinLargeAlloc`.
const LARGE_BUFFER: u64 = 20 << 20;
/// `kRoundLarge`: larger segments are rounded up to 2 MiB.
const ROUND_LARGE: u64 = 2 << 20;

/// A tensor's storage, as the program holds it; `Small` for the small pool, not replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handle {
    Small,
    Large(usize),
}

/// `torch.OutOfMemoryError`: the request that failed, rounded as the allocator asked the
/// driver for it, and what was reserved then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    pub requested_bytes: u64,
    pub reserved_bytes: u64,
    pub allocated_bytes: u64,
}

#[derive(Clone, Debug)]
struct Block {
    segment: u32,
    offset: u64,
    size: u64,
    free: bool,
    prev: Option<usize>,
    next: Option<usize>,
}

/// The large pool of one device and stream.
#[derive(Clone, Debug)]
pub struct CachingAllocator {
    /// What `cudaMalloc` can hand out in all (the device's free memory at start).
    limit: u64,
    blocks: Vec<Block>,
    unused: Vec<usize>,
    /// Cached (free) blocks by (size, segment, offset, id): `BlockComparator`'s order.
    cached: BTreeSet<(u64, u32, u64, usize)>,
    segments: u32,
    pub reserved: u64,
    pub allocated: u64,
    pub peak_reserved: u64,
    pub peak_allocated: u64,
}

impl CachingAllocator {
    /// An empty allocator on a device where `limit` bytes can be reserved.
    pub fn new(limit: u64) -> CachingAllocator {
        CachingAllocator {
            limit,
            blocks: Vec::new(),
            unused: Vec::new(),
            cached: BTreeSet::new(),
            segments: 0,
            reserved: 0,
            allocated: 0,
            peak_reserved: 0,
            peak_allocated: 0,
        }
    }

    /// `torch.empty(bytes)` on the device.
    pub fn malloc(&mut self, bytes: u64) -> Result<Handle, OutOfMemory> {
        let size = bytes.max(1).div_ceil(MIN_BLOCK) * MIN_BLOCK;
        if size <= SMALL_SIZE {
            return Ok(Handle::Small);
        }
        let id = match self.cached.range((size, 0, 0, 0)..).next().copied() {
            Some(key) => {
                self.cached.remove(&key);
                key.3
            }
            None => self.new_segment(size)?,
        };
        if self.blocks[id].size - size > SMALL_SIZE {
            self.split(id, size);
        }
        self.blocks[id].free = false;
        self.allocated += self.blocks[id].size;
        self.peak_allocated = self.peak_allocated.max(self.allocated);
        Ok(Handle::Large(id))
    }

    /// The storage's last reference is dropped: its block goes back to the cache.
    pub fn free(&mut self, handle: Handle) {
        let Handle::Large(mut id) = handle else { return };
        debug_assert!(!self.blocks[id].free, "double free");
        self.allocated -= self.blocks[id].size;
        self.blocks[id].free = true;
        if let Some(prev) = self.blocks[id].prev.filter(|&p| self.blocks[p].free) {
            self.uncache(prev);
            self.absorb(prev, id);
            id = prev;
        }
        if let Some(next) = self.blocks[id].next.filter(|&n| self.blocks[n].free) {
            self.uncache(next);
            self.absorb(id, next);
        }
        let b = &self.blocks[id];
        self.cached.insert((b.size, b.segment, b.offset, id));
    }

    fn new_segment(&mut self, size: u64) -> Result<usize, OutOfMemory> {
        let segment_size = if size < MIN_LARGE_ALLOC { LARGE_BUFFER } else { size.div_ceil(ROUND_LARGE) * ROUND_LARGE };
        if self.reserved + segment_size > self.limit {
            self.release_cached_segments();
        }
        if self.reserved + segment_size > self.limit {
            return Err(OutOfMemory {
                requested_bytes: segment_size,
                reserved_bytes: self.reserved,
                allocated_bytes: self.allocated,
            });
        }
        self.reserved += segment_size;
        self.peak_reserved = self.peak_reserved.max(self.reserved);
        self.segments += 1;
        Ok(self.insert(Block {
            segment: self.segments,
            offset: 0,
            size: segment_size,
            free: true,
            prev: None,
            next: None,
        }))
    }

    /// `release_cached_blocks`: every wholly free segment goes back to the driver.
    fn release_cached_segments(&mut self) {
        let whole: Vec<(u64, u32, u64, usize)> = self
            .cached
            .iter()
            .copied()
            .filter(|&(_, _, _, id)| self.blocks[id].prev.is_none() && self.blocks[id].next.is_none())
            .collect();
        for key in whole {
            self.cached.remove(&key);
            self.reserved -= key.0;
            self.unused.push(key.3);
        }
    }

    /// Splits cached block `id` so that it keeps `size` bytes; the rest becomes a cached block.
    fn split(&mut self, id: usize, size: u64) {
        let b = self.blocks[id].clone();
        let rest = self.insert(Block {
            segment: b.segment,
            offset: b.offset + size,
            size: b.size - size,
            free: true,
            prev: Some(id),
            next: b.next,
        });
        if let Some(n) = b.next {
            self.blocks[n].prev = Some(rest);
        }
        self.blocks[id].next = Some(rest);
        self.blocks[id].size = size;
        let r = &self.blocks[rest];
        self.cached.insert((r.size, r.segment, r.offset, rest));
    }

    /// Merges free block `second` into the free block `first` just before it.
    fn absorb(&mut self, first: usize, second: usize) {
        let (size, next) = (self.blocks[second].size, self.blocks[second].next);
        self.blocks[first].size += size;
        self.blocks[first].next = next;
        if let Some(n) = next {
            self.blocks[n].prev = Some(first);
        }
        self.unused.push(second);
    }

    fn uncache(&mut self, id: usize) {
        let b = &self.blocks[id];
        self.cached.remove(&(b.size, b.segment, b.offset, id));
    }

    fn insert(&mut self, block: Block) -> usize {
        match self.unused.pop() {
            Some(id) => {
                self.blocks[id] = block;
                id
            }
            None => {
                self.blocks.push(block);
                self.blocks.len() - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn sizes_round_as_the_allocator_does() {
        let mut a = CachingAllocator::new(1 << 40);
        // 1 MiB and under: the small pool, not replayed.
        assert_eq!(a.malloc(MIB).unwrap(), Handle::Small);
        assert_eq!(a.reserved, 0);
        // Just over 1 MiB: rounded to 512 B, in a new 20 MiB segment, split (the rest cached).
        let h = a.malloc(MIB + 1).unwrap();
        assert_eq!((a.reserved, a.allocated), (20 * MIB, MIB + 512));
        // 12 MiB fits the cached rest of that segment: no new segment.
        let mid = a.malloc(12 * MIB).unwrap();
        assert_eq!((a.reserved, a.allocated), (20 * MIB, 13 * MIB + 512));
        // 25 MiB + 1 B: a new segment rounded up to 26 MiB, kept whole (under 1 MiB over), so
        // the whole block counts as allocated.
        let big = a.malloc(25 * MIB + 1).unwrap();
        assert_eq!((a.reserved, a.allocated), (46 * MIB, 39 * MIB + 512));
        for x in [h, mid, big] {
            a.free(x);
        }
        assert_eq!((a.reserved, a.allocated, a.peak_reserved), (46 * MIB, 0, 46 * MIB));
    }

    /// A freed block merges with free neighbours, so three 100 MiB tensors freed in a row make
    /// one 300 MiB block that a 250 MiB request reuses without a new segment; and a request
    /// takes the smallest cached block that holds it.
    #[test]
    fn best_fit_and_merging_reuse_the_cache() {
        let mut a = CachingAllocator::new(1 << 40);
        let whole = a.malloc(300 * MIB).unwrap();
        a.free(whole);
        let parts: Vec<Handle> = (0..3).map(|_| a.malloc(100 * MIB).unwrap()).collect();
        assert_eq!(a.reserved, 300 * MIB, "carved from the cached segment");
        for p in parts {
            a.free(p);
        }
        let again = a.malloc(250 * MIB).unwrap();
        assert_eq!(a.reserved, 300 * MIB);
        a.free(again);
        // Segments of 50 and 300 MiB cached: 40 MiB goes to the 50, so 300 still fits after.
        let mut b = CachingAllocator::new(1 << 40);
        let (s50, s300) = (b.malloc(50 * MIB).unwrap(), b.malloc(300 * MIB).unwrap());
        b.free(s50);
        b.free(s300);
        b.malloc(40 * MIB).unwrap();
        b.malloc(300 * MIB).unwrap();
        assert_eq!(b.reserved, 350 * MIB);
    }

    /// Fragmentation: with 1,000 MiB reservable, two 400 MiB tensors separated by a live one
    /// leave 800 MiB cached but no 500 MiB block; the 500 MiB request frees the wholly cached
    /// segments (none) and fails, because the live tensor pins its segment.
    #[test]
    fn cached_but_fragmented_memory_runs_out() {
        let mut a = CachingAllocator::new(1000 * MIB);
        let seg = a.malloc(900 * MIB).unwrap();
        a.free(seg);
        let x = a.malloc(400 * MIB).unwrap();
        let pin = a.malloc(100 * MIB).unwrap();
        let y = a.malloc(400 * MIB).unwrap();
        a.free(x);
        a.free(y);
        assert_eq!((a.reserved, a.allocated), (900 * MIB, 100 * MIB));
        let err = a.malloc(500 * MIB).unwrap_err();
        assert_eq!(
            err,
            OutOfMemory { requested_bytes: 500 * MIB, reserved_bytes: 900 * MIB, allocated_bytes: 100 * MIB }
        );
        // Once the pin is freed the three blocks merge and the cache serves it.
        a.free(pin);
        assert!(a.malloc(500 * MIB).is_ok());
        assert_eq!(a.reserved, 900 * MIB);
    }

    /// A wholly free segment is returned to the driver when a new one does not fit.
    #[test]
    fn a_failed_malloc_releases_free_segments_first() {
        let mut a = CachingAllocator::new(1000 * MIB);
        let x = a.malloc(600 * MIB).unwrap();
        a.free(x);
        assert_eq!(a.reserved, 600 * MIB);
        a.malloc(700 * MIB).unwrap();
        assert_eq!(a.reserved, 700 * MIB);
        assert_eq!(a.peak_reserved, 700 * MIB);
    }
}
