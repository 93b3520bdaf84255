//! The prefix chains that recent lookups found, so that the next request with the same first
//! block checks them against the block records instead of probing the prefix map once per
//! block. Why (issue 15): in a 64-replica replay every request looks up its shared system
//! prompt's 32 blocks, and each probe of a replica's map was a cache miss (`perf`: 10% of the
//! run in `find_cached_prefix`, three quarters of it on the probes); the block records the
//! check reads are the ones admitting the request touches next anyway.
//!
//! A remembered pair (hash, block) is used only while the block's record says it is the
//! map's entry for that hash (`mapped` and the same `hash`), which holds exactly when the map
//! maps the hash to the block: so every lookup finds the blocks the map alone would.

/// Remembered chains, one per slot, a slot chosen by the chain's first hash (hashes are well
/// mixed, so their low bits spread the chains); a chain evicts the one in its slot.
#[derive(Debug, Default)]
pub(super) struct PrefixMemo {
    slots: Vec<Vec<(u64, u32)>>,
}

/// Slots per KV cache: room for as many distinct shared prefixes as a workload usually has
/// (a chain of 32 blocks is 512 bytes; a workload with more prefixes only probes the map
/// more often).
const SLOTS: usize = 64;

impl PrefixMemo {
    /// The chain remembered for chains starting with `first`: pairs of (hash, block), in order,
    /// possibly of another chain sharing the slot, possibly stale (module doc).
    pub(super) fn chain(&mut self, first: u64) -> &mut Vec<(u64, u32)> {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Vec::new);
        }
        &mut self.slots[(first % SLOTS as u64) as usize]
    }
}

/// Replaces `chain` with `hashes` and their `blocks` where the lookup found more than the
/// `checked` leading pairs it confirmed. A shorter lookup (a request needing fewer blocks, or
/// a remembered block gone stale with nothing in the map after it) keeps the longer chain:
/// short and long prompts sharing a prefix would otherwise replace each other's chains.
pub(super) fn remember(chain: &mut Vec<(u64, u32)>, checked: usize, hashes: &[u64], blocks: &[u32]) {
    if blocks.len() > checked {
        chain.clear();
        chain.extend(hashes.iter().copied().zip(blocks.iter().copied()));
    }
}
