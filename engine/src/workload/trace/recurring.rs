//! Which Mooncake block ids recur in a trace. A row whose id at position `k` no other row holds
//! (nor the row itself twice) owns its tokens from block `k` on: their KV blocks can be hit by
//! no other request, so the KV cache need not register them while it runs
//! (`RequestSpec::private_from`, issue 15). Counted while the scenario's trace is validated
//! ([`super::check`] with ids), or by one pass over the trace before the replay when it was not.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{TraceReader, TraceSpec};

/// Ids at or above this count as recurring without being tracked, which bounds the two bitsets
/// to 8 MiB each whatever the ids. Mooncake traces number blocks densely from 0 (the
/// 10-million-row benchmark's ids stay under 10 million: 1.25 MB per bitset).
const MAX_TRACKED: u64 = 1 << 26;

/// Ids counted while validating, by trace and file state ([`RecurringIds::keep`]): the 10M-row
/// replay read its trace three times (validation, this count, the replay), and one read is
/// about 4% of it. They stay for the process (1.25 MB per bitset per 10 million ids), which
/// also serves a scenario's other seeds and cases on the same trace. The key holds the file's
/// length and modification time, so a file rewritten since reads again.
static COUNTED: Mutex<BTreeMap<String, Arc<RecurringIds>>> = Mutex::new(BTreeMap::new());

/// The map of counted ids; a panic elsewhere while it was held leaves it whole (inserts and
/// reads only), so a poisoned lock is used as it is.
fn lock() -> std::sync::MutexGuard<'static, BTreeMap<String, Arc<RecurringIds>>> {
    COUNTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What names a trace's count: the folder, the spec (its window, stride and limit choose the
/// rows) and the file's length and modification time. `None` when the file cannot be read.
fn counted_key(spec: &TraceSpec, base_dir: &Path) -> Option<String> {
    let meta = std::fs::metadata(base_dir.join(&spec.path)).ok()?;
    let modified = meta.modified().ok()?;
    Some(format!("{}|{}|{}|{modified:?}", base_dir.display(), serde_json::to_string(spec).ok()?, meta.len()))
}

/// Ids seen once and ids seen again, as bitsets indexed by id, grown to the largest id seen.
#[derive(Debug, Default)]
pub struct RecurringIds {
    seen: Vec<u64>,
    again: Vec<u64>,
}

impl RecurringIds {
    /// Counts every block id of the rows `spec` yields (its window, stride and limit applied),
    /// up to the first row the replay would stop at. `None` when the file cannot be opened (the
    /// replay reports that itself).
    pub fn of_trace(spec: &TraceSpec, base_dir: &Path) -> Option<Arc<RecurringIds>> {
        if let Some(ids) = counted_key(spec, base_dir).and_then(|key| lock().get(&key).cloned()) {
            return Some(ids);
        }
        let mut reader = TraceReader::open(spec, base_dir).ok()?;
        let mut ids = RecurringIds::default();
        while let Some(Ok(row)) = reader.next_row() {
            row.hash_ids.iter().for_each(|&id| ids.count(id));
        }
        Some(Arc::new(ids))
    }

    /// Keeps the ids counted over every row of the trace `spec` names (as [`Self::of_trace`]
    /// would count them), so that its runs need not read the trace again for them.
    pub fn keep(self, spec: &TraceSpec, base_dir: &Path) {
        if let Some(key) = counted_key(spec, base_dir) {
            lock().insert(key, Arc::new(self));
        }
    }

    pub fn count(&mut self, id: u64) {
        if id >= MAX_TRACKED {
            return;
        }
        let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
            self.again.resize(word + 1, 0);
        }
        self.again[word] |= self.seen[word] & bit;
        self.seen[word] |= bit;
    }

    /// Whether `id` may be held by more than one counted row (or twice by one): false only
    /// for an id counted exactly once.
    pub fn recurs(&self, id: u64) -> bool {
        let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
        let once = id < MAX_TRACKED && self.seen.get(word).is_some_and(|w| w & bit != 0) && self.again[word] & bit == 0;
        !once
    }

    /// `RequestSpec::private_from` of a row with these ids: the first token of its first
    /// block whose id recurs nowhere, if any.
    pub fn private_from(&self, hash_ids: &[u64]) -> Option<u32> {
        hash_ids.iter().position(|&id| !self.recurs(id)).map(|k| 512 * k as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_held_once_are_private_and_the_rest_recur() {
        let mut ids = RecurringIds::default();
        for row in [&[0u64, 700][..], &[0, 5, 5], &[1]] {
            row.iter().for_each(|&id| ids.count(id));
        }
        // 0 is in two rows, 5 twice in one; 700 and 1 in one row each; 3 and huge ids unseen.
        assert!(ids.recurs(0) && ids.recurs(5));
        assert!(!ids.recurs(700) && !ids.recurs(1));
        assert!(ids.recurs(3) && ids.recurs(1 << 40));
        assert_eq!(ids.private_from(&[0, 700]), Some(512));
        assert_eq!(ids.private_from(&[1]), Some(0));
        assert_eq!(ids.private_from(&[0, 5, 5]), None);
        // Untracked ids always recur, even when counted once.
        ids.count(MAX_TRACKED);
        assert!(ids.recurs(MAX_TRACKED));
    }
}
