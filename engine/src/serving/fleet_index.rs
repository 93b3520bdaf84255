//! What the router and the queue sampler need of a whole fleet, kept up to date one replica at a
//! time, so that no arrival or event does work over every replica: the replica with the fewest
//! outstanding requests and the one with the lowest KV usage (each a min-tree, O(log replicas)
//! per change), and the fleet-wide waiting and running counts (O(1) per change).
//!
//! Ties go to the lowest index, as the router's scans over all replicas break them, so the
//! index gives the same choices byte for byte.
//!
//! An autoscaled fleet marks replicas that are starting, draining or off as unavailable: the
//! min-trees then hold `u64::MAX` for them, a Fenwick tree counts the available ones (the k-th
//! available replica for round robin and random routing in O(log replicas)), and the ongoing
//! requests of the available replicas are a running total (Ray Serve's autoscaling metric).

/// A tournament tree over `(key, index)`: the root holds the smallest key, lowest index first.
#[derive(Debug)]
struct MinTree {
    /// Leaves start at `size`; unused leaves hold `u64::MAX`.
    nodes: Vec<(u64, u32)>,
    size: usize,
}

impl MinTree {
    fn new(n: usize) -> MinTree {
        let size = n.next_power_of_two().max(1);
        let mut nodes = vec![(u64::MAX, u32::MAX); 2 * size];
        for i in 0..n {
            nodes[size + i] = (0, i as u32);
        }
        let mut tree = MinTree { nodes, size };
        for node in (1..size).rev() {
            tree.pull(node);
        }
        tree
    }

    fn pull(&mut self, node: usize) {
        self.nodes[node] = self.nodes[2 * node].min(self.nodes[2 * node + 1]);
    }

    fn set(&mut self, index: usize, key: u64) {
        let mut node = self.size + index;
        if self.nodes[node].0 == key {
            return;
        }
        self.nodes[node].0 = key;
        while node > 1 {
            node /= 2;
            self.pull(node);
        }
    }

    fn min_index(&self) -> usize {
        self.nodes[1].1 as usize
    }
}

/// A key whose integer order is `f64::total_cmp`'s order.
fn total_order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// One replica's figures as the index last saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplicaLoad {
    pub outstanding: usize,
    pub waiting: usize,
    pub kv_usage: f64,
}

/// Counts over replica indices: how many of the first i are available, and the k-th one.
#[derive(Debug)]
struct Fenwick {
    tree: Vec<u32>,
}

impl Fenwick {
    fn full(n: usize) -> Fenwick {
        let mut f = Fenwick { tree: vec![0; n + 1] };
        for i in 0..n {
            f.add(i, 1);
        }
        f
    }

    fn add(&mut self, i: usize, delta: i32) {
        let mut node = i + 1;
        while node < self.tree.len() {
            self.tree[node] = self.tree[node].wrapping_add_signed(delta);
            node += node & node.wrapping_neg();
        }
    }

    /// How many of indices `0..i` are counted.
    fn prefix(&self, i: usize) -> u32 {
        let (mut node, mut sum) = (i, 0);
        while node > 0 {
            sum += self.tree[node];
            node &= node - 1;
        }
        sum
    }

    /// The index of the `k`-th counted one (0-based); `k` must be below the total.
    fn kth(&self, mut k: u32) -> usize {
        let (mut pos, mut step) = (0, (self.tree.len() - 1).next_power_of_two());
        while step > 0 {
            if pos + step < self.tree.len() && self.tree[pos + step] <= k {
                pos += step;
                k -= self.tree[pos];
            }
            step /= 2;
        }
        pos
    }
}

/// The fleet's load, updated by [`FleetIndex::update`] after each change to one replica.
#[derive(Debug)]
pub struct FleetIndex {
    loads: Vec<ReplicaLoad>,
    outstanding: MinTree,
    kv: MinTree,
    waiting_total: u64,
    outstanding_total: u64,
    available: Vec<bool>,
    available_count: usize,
    available_outstanding: u64,
    counts: Fenwick,
}

impl FleetIndex {
    /// A fleet of `n` idle replicas.
    pub fn new(n: usize) -> FleetIndex {
        let mut index = FleetIndex {
            loads: vec![ReplicaLoad::default(); n],
            outstanding: MinTree::new(n),
            kv: MinTree::new(n),
            waiting_total: 0,
            outstanding_total: 0,
            available: vec![true; n],
            available_count: n,
            available_outstanding: 0,
            counts: Fenwick::full(n),
        };
        for i in 0..n {
            index.kv.set(i, total_order_key(0.0));
        }
        index
    }

    /// Records replica `i`'s current load.
    pub fn update(&mut self, i: usize, load: ReplicaLoad) {
        let old = std::mem::replace(&mut self.loads[i], load);
        self.waiting_total = self.waiting_total - old.waiting as u64 + load.waiting as u64;
        self.outstanding_total = self.outstanding_total - old.outstanding as u64 + load.outstanding as u64;
        if self.available[i] {
            self.available_outstanding = self.available_outstanding - old.outstanding as u64 + load.outstanding as u64;
            self.outstanding.set(i, load.outstanding as u64);
            self.kv.set(i, total_order_key(load.kv_usage));
        }
    }

    /// Lets the router send to replica `i` or not (an autoscaled fleet's replica that is
    /// starting, draining or off is not available).
    pub fn set_available(&mut self, i: usize, available: bool) {
        if self.available[i] == available {
            return;
        }
        self.available[i] = available;
        let load = self.loads[i];
        if available {
            self.available_count += 1;
            self.available_outstanding += load.outstanding as u64;
            self.counts.add(i, 1);
            self.outstanding.set(i, load.outstanding as u64);
            self.kv.set(i, total_order_key(load.kv_usage));
        } else {
            self.available_count -= 1;
            self.available_outstanding -= load.outstanding as u64;
            self.counts.add(i, -1);
            self.outstanding.set(i, u64::MAX);
            self.kv.set(i, u64::MAX);
        }
    }

    /// Replicas the router may send to.
    pub fn available_count(&self) -> usize {
        self.available_count
    }

    /// Requests queued or running on the available replicas.
    pub fn available_outstanding(&self) -> u64 {
        self.available_outstanding
    }

    /// The `k`-th available replica in index order (0-based); `k < available_count()`.
    pub fn nth_available(&self, k: usize) -> usize {
        if self.available_count == self.loads.len() {
            return k;
        }
        self.counts.kth(k as u32)
    }

    /// The first available replica at index `i` or above, if any.
    pub fn next_available_from(&self, i: usize) -> Option<usize> {
        if self.available_count == self.loads.len() {
            return (i < self.loads.len()).then_some(i);
        }
        let before = self.counts.prefix(i.min(self.loads.len())) as usize;
        (before < self.available_count).then(|| self.counts.kth(before as u32))
    }

    /// Requests waiting fleet-wide.
    pub fn waiting(&self) -> u64 {
        self.waiting_total
    }

    /// Requests queued or running fleet-wide.
    pub fn outstanding(&self) -> u64 {
        self.outstanding_total
    }

    /// The replica with the fewest outstanding requests (lowest index on ties).
    pub fn least_outstanding(&self) -> usize {
        self.outstanding.min_index()
    }

    /// The replica with the lowest KV usage (lowest index on ties).
    pub fn least_kv(&self) -> usize {
        self.kv.min_index()
    }

    pub fn len(&self) -> usize {
        self.loads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.loads.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_agrees_with_a_scan_over_every_replica() {
        let n = 13;
        let mut index = FleetIndex::new(n);
        let mut loads = vec![ReplicaLoad::default(); n];
        // A deterministic walk of updates; every choice must equal the scan's.
        let mut x: u64 = 12345;
        for _ in 0..5000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % n;
            let load = ReplicaLoad {
                outstanding: (x >> 20) as usize % 7,
                waiting: (x >> 24) as usize % 3,
                kv_usage: ((x >> 40) % 5) as f64 / 4.0,
            };
            loads[i] = load;
            index.update(i, load);
            let scan_outstanding = (0..n).min_by_key(|&j| loads[j].outstanding).unwrap();
            let scan_kv = (0..n).min_by(|&a, &b| loads[a].kv_usage.total_cmp(&loads[b].kv_usage)).unwrap();
            assert_eq!(index.least_outstanding(), scan_outstanding);
            assert_eq!(index.least_kv(), scan_kv);
            assert_eq!(index.waiting(), loads.iter().map(|l| l.waiting as u64).sum::<u64>());
            assert_eq!(index.outstanding(), loads.iter().map(|l| l.outstanding as u64).sum::<u64>());
        }
    }

    #[test]
    fn unavailable_replicas_are_never_chosen_and_their_requests_not_counted() {
        let n = 9;
        let mut index = FleetIndex::new(n);
        let mut available = vec![true; n];
        let mut loads = vec![ReplicaLoad::default(); n];
        let mut x: u64 = 777;
        for _ in 0..5000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % n;
            if (x >> 50) % 4 == 0 {
                // Keep at least one available, as the autoscaler does.
                let flip = !available[i];
                if flip || available.iter().filter(|&&a| a).count() > 1 {
                    available[i] = flip;
                    index.set_available(i, flip);
                }
            } else {
                let load = ReplicaLoad {
                    outstanding: (x >> 20) as usize % 7,
                    waiting: 0,
                    kv_usage: ((x >> 40) % 5) as f64 / 4.0,
                };
                loads[i] = load;
                index.update(i, load);
            }
            let up: Vec<usize> = (0..n).filter(|&j| available[j]).collect();
            assert_eq!(index.available_count(), up.len());
            assert_eq!(index.least_outstanding(), *up.iter().min_by_key(|&&j| loads[j].outstanding).unwrap());
            let kv = *up.iter().min_by(|&&a, &&b| loads[a].kv_usage.total_cmp(&loads[b].kv_usage)).unwrap();
            assert_eq!(index.least_kv(), kv);
            assert_eq!(index.available_outstanding(), up.iter().map(|&j| loads[j].outstanding as u64).sum::<u64>());
            for (k, &j) in up.iter().enumerate() {
                assert_eq!(index.nth_available(k), j);
            }
            for start in 0..=n {
                assert_eq!(index.next_available_from(start), up.iter().copied().find(|&j| j >= start));
            }
        }
    }

    #[test]
    fn total_order_keys_sort_as_total_cmp() {
        let values = [-1.5, -0.0, 0.0, 1e-9, 0.5, 1.0];
        for w in values.windows(2) {
            assert!(total_order_key(w[0]) < total_order_key(w[1]), "{w:?}");
        }
    }
}
