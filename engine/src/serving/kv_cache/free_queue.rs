//! The free block queue of a KV cache (vLLM's `FreeKVCacheBlockQueue`) as an array: blocks
//! join at the tail when freed, allocation takes the head, and a cached block that a request
//! hits leaves from the middle. vLLM links the blocks into a list; here the queue is a ring of
//! entries and a block leaving from the middle leaves a tombstone that the head skips, so the
//! order of the live entries is the list's, and so is every block handed out.
//!
//! Why an array (issue 15): with a linked list, taking the head reads the head block's record
//! to find the next one and writes the next one's back link, so each eviction waits on the one
//! before; a fleet's pools do not fit in a core's cache and these were chains of cache misses.
//! Here the head's successors are the next entries in memory, and each entry carries the
//! block's prefix hash, so evicting it from the prefix map needs no read of the block first.
//!
//! Consecutive anonymous places (blocks outside the prefix map, which the KV cache keeps
//! apart) are one entry with a count: a workload whose blocks are all private, like a fleet
//! of synthetic requests, keeps a queue of one entry instead of a ring of thousands, whose
//! head was a cache miss every few allocations in a 64-replica fleet (issue 15).

use std::collections::VecDeque;

/// A block's place in the queue, with a copy of what evicting it needs. A block's hash and
/// whether it is its hash's map entry do not change while it is free (only blocks a request
/// holds are registered), so the copy stays true until the entry is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// The block's hash; outside the queue 0 for an anonymous place, inside it the number of
    /// consecutive anonymous places the entry stands for.
    pub hash: u64,
    pub block: u32,
    /// Whether the block is the one the prefix map holds for `hash`.
    pub mapped: bool,
}

/// `Entry::block` of a block that left from the middle.
const TOMBSTONE: u32 = u32::MAX;

/// `Entry::block` of a place that any free block outside the prefix map may fill (the KV
/// cache keeps those blocks apart). Block ids stay below it: a pool has fewer than
/// `u32::MAX` blocks.
pub(super) const ANONYMOUS: u32 = u32::MAX - 1;

/// Tombstones allowed beyond the live entries before they are swept (so a workload that hits
/// cached blocks often, and rarely takes the head, keeps the queue near its live length).
const SLACK: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct FreeQueue {
    entries: VecDeque<Entry>,
    /// The position of `entries[0]`: positions count every entry ever pushed, so a block's
    /// position stays valid while entries before it are taken.
    front: u64,
    live: usize,
}

impl FreeQueue {
    /// Entries in the queue, tombstones not counted.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// Appends a freed block, or an anonymous place (joining an anonymous run at the tail);
    /// returns its position.
    pub(super) fn push(&mut self, entry: Entry) -> u64 {
        debug_assert!(entry.block != TOMBSTONE);
        self.live += 1;
        match self.entries.back_mut() {
            Some(tail) if entry.block == ANONYMOUS && tail.block == ANONYMOUS => tail.hash += 1,
            _ if entry.block == ANONYMOUS => self.entries.push_back(Entry { hash: 1, ..entry }),
            _ => self.entries.push_back(entry),
        }
        self.front + self.entries.len() as u64 - 1
    }

    /// Takes the entry at `position` out of the queue (a hit on a free cached block). When the
    /// tombstones outgrow the live entries, the queue is swept, keeping the live entries'
    /// order; `moved(block, position)` is told every live block's new position.
    pub(super) fn remove(&mut self, position: u64, moved: impl FnMut(u32, u64)) -> Entry {
        let entry = &mut self.entries[(position - self.front) as usize];
        let taken = *entry;
        assert!(taken.block != TOMBSTONE, "block removed from the free queue twice");
        assert!(taken.block != ANONYMOUS, "an anonymous place removed from the middle");
        entry.block = TOMBSTONE;
        self.live -= 1;
        if self.entries.len() > 2 * self.live + SLACK {
            self.sweep(moved);
        }
        taken
    }

    /// Takes the head: the least recently freed block, or anonymous place.
    pub(super) fn pop(&mut self) -> Option<Entry> {
        loop {
            let head = self.entries.front_mut()?;
            if head.block == ANONYMOUS && head.hash > 1 {
                head.hash -= 1;
                self.live -= 1;
                return Some(Entry { hash: 0, ..*head });
            }
            let entry = self.entries.pop_front()?;
            self.front += 1;
            if entry.block != TOMBSTONE {
                self.live -= 1;
                return Some(Entry { hash: if entry.block == ANONYMOUS { 0 } else { entry.hash }, ..entry });
            }
        }
    }

    /// The live places from head to tail, with their positions (an anonymous run's places
    /// share its position).
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, Entry)> + '_ {
        (self.front..).zip(&self.entries).filter(|(_, e)| e.block != TOMBSTONE).flat_map(|(position, &e)| {
            let (entry, places) = match e.block {
                ANONYMOUS => (Entry { hash: 0, ..e }, e.hash as usize),
                _ => (e, 1),
            };
            std::iter::repeat_n((position, entry), places)
        })
    }

    fn sweep(&mut self, mut moved: impl FnMut(u32, u64)) {
        self.entries.retain(|e| e.block != TOMBSTONE);
        for (position, entry) in (self.front..).zip(&self.entries) {
            moved(entry.block, position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(block: u32) -> Entry {
        Entry { hash: block as u64 * 7, block, mapped: block % 2 == 0 }
    }

    /// The queue gives blocks back in the order a linked list would: first freed first, and a
    /// block taken from the middle is skipped.
    #[test]
    fn pops_in_freeing_order_skipping_removed_blocks() {
        let mut q = FreeQueue::default();
        let positions: Vec<u64> = (1..=5).map(|b| q.push(entry(b))).collect();
        assert_eq!(positions, vec![0, 1, 2, 3, 4]);
        assert_eq!(q.remove(positions[2], |_, _| panic!("no sweep expected")), entry(3));
        assert_eq!(q.len(), 4);
        assert_eq!(q.pop(), Some(entry(1)));
        // Block 3 comes back at the tail.
        assert_eq!(q.push(entry(3)), 5);
        let rest: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|e| e.block).collect();
        assert_eq!(rest, vec![2, 4, 5, 3]);
        assert_eq!(q.len(), 0);
        assert_eq!(q.pop(), None);
    }

    // See: issue 15
    /// Anonymous places in a row are one entry, and still come out one by one, in order,
    /// between the blocks freed around them.
    #[test]
    fn issue_15_anonymous_places_in_a_row_are_one_entry() {
        let anonymous = Entry { hash: 0, block: ANONYMOUS, mapped: false };
        let mut q = FreeQueue::default();
        q.push(anonymous);
        q.push(anonymous);
        let two = q.push(entry(2));
        for _ in 0..3 {
            q.push(anonymous);
        }
        assert_eq!(q.entries.len(), 3);
        assert_eq!(q.len(), 6);
        let blocks: Vec<u32> = q.iter().map(|(_, e)| e.block).collect();
        assert_eq!(blocks, vec![ANONYMOUS, ANONYMOUS, 2, ANONYMOUS, ANONYMOUS, ANONYMOUS]);
        assert_eq!(q.pop(), Some(anonymous));
        // A place joins the run at the tail; block 2 leaves from the middle.
        q.push(anonymous);
        assert_eq!(q.remove(two, |_, _| panic!("no sweep expected")), entry(2));
        let rest: Vec<Entry> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![anonymous; 5]);
        assert_eq!(q.len(), 0);
        assert!(q.entries.is_empty());
    }

    /// Many hits and no allocations: the tombstones are swept, the order is kept, and the
    /// positions handed to `moved` find the blocks again.
    #[test]
    fn tombstones_are_swept_and_positions_follow() {
        let mut q = FreeQueue::default();
        let mut position = [0u64; 11];
        for b in 1..=10 {
            position[b as usize] = q.push(entry(b));
        }
        // Block 5 is hit and freed again, over and over.
        for _ in 0..5000 {
            q.remove(position[5], |b, p| position[b as usize] = p);
            position[5] = q.push(entry(5));
        }
        assert!(q.entries.len() <= 2 * q.len() + SLACK + 1, "{} entries for {} live", q.entries.len(), q.len());
        q.remove(position[7], |b, p| position[b as usize] = p);
        let order: Vec<u32> = q.iter().map(|(_, e)| e.block).collect();
        assert_eq!(order, vec![1, 2, 3, 4, 6, 8, 9, 10, 5]);
        for (p, e) in q.iter() {
            assert_eq!(position[e.block as usize], p);
        }
    }
}
