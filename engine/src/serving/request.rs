//! A request's serving state: token counts, progress, KV blocks and its timestamps.

use crate::sim::SimTime;
use crate::workload::{RequestSpec, Segment};

/// Where a request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Waiting,
    Running,
    Finished,
}

/// A request's part in disaggregated prefill/decode (vLLM's `kv_transfer_params` under the NIXL
/// connector, `nixl_connector.py`); `Local` everywhere else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RemoteKv {
    /// Served here from start to end (a unified fleet).
    #[default]
    Local,
    /// On a prefill replica: the proxy's copy with `max_tokens=1` and `do_remote_decode`; when
    /// it finishes, its blocks stay held for the decode side to read
    /// (`NixlConnectorScheduler.request_finished` returns `delay_free_blocks`).
    /// `max_output_tokens` is the client's own limit, which the decode side serves.
    Prefill { max_output_tokens: u32 },
    /// On a decode replica, before its blocks are allocated: the prompt's KV lives on prefill
    /// replica `prefill`, in its parked slot `parked` (`do_remote_prefill`); `since` is when
    /// it reached the decode replica.
    Pending { prefill: u32, parked: u32, since: SimTime },
    /// Blocks allocated and the read in flight (vLLM's `WAITING_FOR_REMOTE_KVS`).
    Receiving { prefill: u32, parked: u32, since: SimTime },
    /// The KV arrived; from here the request is an ordinary one (a preemption recomputes).
    Received,
}

/// The KV blocks a request holds and the hashes of its full blocks.
#[derive(Clone, Debug, Default)]
pub struct KvState {
    pub blocks: Vec<u32>,
    /// Hash-chain values of the request's full blocks, computed as far as needed.
    pub block_hashes: Vec<u64>,
    /// How many of `blocks` are registered in the prefix cache, or were passed over as
    /// private (`KvCache` defers those until a preemption).
    pub num_cached_blocks: usize,
    /// Whether its private blocks are registered like any other: set at its first
    /// preemption, after which it may hit its own blocks (`KvCache::preempt`).
    pub exposed: bool,
}

/// One request inside a replica.
#[derive(Clone, Debug)]
pub struct Request {
    /// Position of the request in the workload (stable across replicas, used in outputs).
    pub seq_no: u64,
    pub arrival: SimTime,
    pub prompt_tokens: u32,
    pub max_output_tokens: u32,
    pub segments: Vec<Segment>,
    pub output_segment: u64,
    pub client: Option<u32>,
    pub session: Option<u32>,
    /// `RequestSpec::private_from`: its blocks from there on can be hit only by itself.
    pub private_from: u32,
    pub status: Status,
    /// Tokens whose KV is computed (vLLM `num_computed_tokens`).
    pub num_computed: u32,
    /// Tokens generated so far.
    pub output_tokens: u32,
    /// Prompt tokens served from the prefix cache at first admission.
    pub cached_prompt_tokens: u32,
    pub num_preemptions: u32,
    /// Tokens computed again after preemptions.
    pub recomputed_tokens: u64,
    pub first_scheduled: Option<SimTime>,
    pub first_token: Option<SimTime>,
    pub last_token: Option<SimTime>,
    pub kv: KvState,
    /// Set while the request is in the current step's plan.
    pub scheduled_this_step: bool,
    /// Its part in disaggregated serving.
    pub remote: RemoteKv,
    /// Full blocks handed to the CPU tier so far (the OffloadingConnector's
    /// `_next_stored_block_idx`; kept across preemptions as vLLM keeps it).
    pub offload_stored_blocks: u32,
}

impl Request {
    pub fn new(seq_no: u64, spec: RequestSpec) -> Request {
        Request {
            seq_no,
            arrival: spec.arrival,
            prompt_tokens: spec.prompt_tokens,
            max_output_tokens: spec.output_tokens,
            segments: spec.segments,
            output_segment: spec.output_segment,
            client: spec.client,
            session: spec.session,
            private_from: spec.private_from,
            status: Status::Waiting,
            num_computed: 0,
            output_tokens: 0,
            cached_prompt_tokens: 0,
            num_preemptions: 0,
            recomputed_tokens: 0,
            first_scheduled: None,
            first_token: None,
            last_token: None,
            kv: KvState::default(),
            scheduled_this_step: false,
            remote: RemoteKv::Local,
            offload_stored_blocks: 0,
        }
    }

    /// The proxy's two copies of a request in disaggregated serving
    /// (`tests/v1/kv_connector/nixl_integration/toy_proxy_server.py`): this one, sent to a
    /// prefill replica with `max_tokens=1`, and the decode copy made from it when it finishes.
    pub fn for_prefill(mut self) -> Request {
        self.remote = RemoteKv::Prefill { max_output_tokens: self.max_output_tokens };
        self.max_output_tokens = 1;
        // Its decode copy reads these blocks by their hashes: register them all.
        self.private_from = RequestSpec::SHARED;
        self
    }

    /// The decode copy of a finished prefill request whose KV sits in slot `parked` of prefill
    /// replica `prefill`: the client's output limit, nothing computed, its block hashes kept
    /// (the same tokens), its first scheduling time kept so that queueing delay counts from
    /// the prefill side. Takes the hashes out of `self`, whose blocks stay parked.
    pub fn decode_copy(&mut self, prefill: u32, parked: u32) -> Request {
        let RemoteKv::Prefill { max_output_tokens } = self.remote else {
            panic!("decode copy of a request that was not a prefill request")
        };
        Request {
            seq_no: self.seq_no,
            arrival: self.arrival,
            prompt_tokens: self.prompt_tokens,
            max_output_tokens,
            segments: std::mem::take(&mut self.segments),
            output_segment: self.output_segment,
            client: self.client,
            session: self.session,
            private_from: RequestSpec::SHARED,
            status: Status::Waiting,
            num_computed: 0,
            output_tokens: 0,
            cached_prompt_tokens: self.cached_prompt_tokens,
            num_preemptions: self.num_preemptions,
            recomputed_tokens: self.recomputed_tokens,
            first_scheduled: self.first_scheduled,
            first_token: None,
            last_token: None,
            kv: KvState {
                blocks: Vec::new(),
                block_hashes: std::mem::take(&mut self.kv.block_hashes),
                num_cached_blocks: 0,
                exposed: false,
            },
            scheduled_this_step: false,
            remote: RemoteKv::Pending { prefill, parked, since: SimTime::ZERO },
            offload_stored_blocks: 0,
        }
    }

    /// Prompt plus generated tokens (vLLM `request.num_tokens`).
    pub fn num_tokens(&self) -> u32 {
        self.prompt_tokens + self.output_tokens
    }

    /// Extends `kv.block_hashes` to cover every full block within the first `tokens` tokens.
    /// Block `i`'s hash chains its parent's hash with the identity of its tokens (the runs of
    /// segments it covers), so equal prefixes give equal hashes (vLLM `hash_block_tokens`).
    /// Walks the segments once per call with a cursor: O(segments + new blocks).
    pub fn ensure_block_hashes(&mut self, tokens: u32, block_size: u32) {
        let want = (tokens / block_size) as usize;
        let have = self.kv.block_hashes.len();
        if have >= want {
            return;
        }
        if self.kv.block_hashes.capacity() == 0 {
            // Room for the request's whole life at once (bounded, against huge output limits).
            let lifetime = (self.prompt_tokens as u64 + self.max_output_tokens as u64) / block_size as u64;
            self.kv.block_hashes.reserve_exact((lifetime as usize).clamp(want, want.max(4096)));
        }
        // Prompt segments, then the generated tokens as one open-ended segment.
        let segment = |i: usize| -> Segment {
            self.segments
                .get(i)
                .copied()
                .unwrap_or(Segment { id: self.output_segment, len: u32::MAX - self.prompt_tokens })
        };
        let mut start = have as u32 * block_size;
        let (mut cursor, mut cursor_start) = (0usize, 0u32);
        while cursor_start.saturating_add(segment(cursor).len) <= start {
            cursor_start += segment(cursor).len;
            cursor += 1;
        }
        let mut parent = self.kv.block_hashes.last().copied().unwrap_or(0x51_7C_C1_B7_27_22_0A_95);
        for _ in have..want {
            let end = start + block_size;
            let mut content = 0u64;
            let (mut i, mut offset) = (cursor, cursor_start);
            loop {
                let seg = segment(i);
                let seg_end = offset.saturating_add(seg.len);
                let from = start.max(offset) - offset;
                let to = end.min(seg_end) - offset;
                content = absorb(content, seg.id, from, to);
                if seg_end >= end {
                    break;
                }
                offset = seg_end;
                i += 1;
            }
            parent = fmix64(parent.rotate_left(31) ^ content);
            self.kv.block_hashes.push(parent);
            while cursor_start.saturating_add(segment(cursor).len) <= end {
                cursor_start += segment(cursor).len;
                cursor += 1;
            }
            start = end;
        }
    }
}

/// splitmix64's output function (Stafford's mix 13): a bijection of u64 that spreads every
/// input bit over the output, so the hashes are well mixed in their low bits (the prefix map's
/// bucket) and high bits alike.
fn fmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Folds the tokens `from..to` of segment `segment` into a block's content hash: one mixing
/// round per piece and one per block in the chain, a third of the rounds of two `mix2` calls
/// (block hashing was 15-18% of a replay's time, issue 15). Only equality of hashes reaches a
/// decision (prefix hits), and `fmix64` being a bijection, two pieces collide only when
/// `rotate(content) ^ segment ^ range * K` agree, which for segment ids that are themselves
/// mixed 64-bit values happens with probability 2^-64 per pair.
fn absorb(content: u64, segment: u64, from: u32, to: u32) -> u64 {
    let range = (((from as u64) << 32) | to as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    fmix64(content.rotate_left(23) ^ segment ^ range)
}

/// Requests in flight, in reused slots: memory grows with requests in flight, not with the
/// workload's length.
#[derive(Debug, Default)]
pub struct RequestSlab {
    slots: Vec<Option<Request>>,
    free: Vec<u32>,
    live: usize,
}

impl RequestSlab {
    pub fn insert(&mut self, request: Request) -> u32 {
        self.live += 1;
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(request);
                id
            }
            None => {
                self.slots.push(Some(request));
                (self.slots.len() - 1) as u32
            }
        }
    }

    pub fn remove(&mut self, id: u32) -> Request {
        let request = self.slots[id as usize].take().expect("removing a live request");
        self.free.push(id);
        self.live -= 1;
        request
    }

    pub fn get(&self, id: u32) -> &Request {
        self.slots[id as usize].as_ref().expect("live request")
    }

    pub fn get_mut(&mut self, id: u32) -> &mut Request {
        self.slots[id as usize].as_mut().expect("live request")
    }

    pub fn live(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(segments: Vec<Segment>, output_segment: u64) -> Request {
        let prompt_tokens = segments.iter().map(|s| s.len).sum();
        Request::new(
            0,
            RequestSpec {
                index: 0,
                arrival: SimTime::ZERO,
                prompt_tokens,
                output_tokens: 8,
                segments,
                output_segment,
                client: None,
                session: None,
                private_from: RequestSpec::SHARED,
            },
        )
    }

    #[test]
    fn equal_prefixes_hash_alike_and_diverge_after() {
        let system = Segment { id: 7, len: 40 };
        let mut a = request(vec![system, Segment { id: 100, len: 30 }], 1);
        let mut b = request(vec![system, Segment { id: 200, len: 30 }], 2);
        a.ensure_block_hashes(70, 16);
        b.ensure_block_hashes(70, 16);
        assert_eq!(a.kv.block_hashes.len(), 4);
        // Blocks 0 and 1 lie inside the 40-token system prompt; block 2 spans both segments.
        assert_eq!(a.kv.block_hashes[..2], b.kv.block_hashes[..2]);
        assert_ne!(a.kv.block_hashes[2], b.kv.block_hashes[2]);
    }

    #[test]
    fn a_later_turn_quoting_an_answer_hashes_like_the_answering_request() {
        let q = Segment { id: 9, len: 20 };
        let mut turn1 = request(vec![q], 55);
        turn1.output_tokens = 12; // 32 tokens: two full blocks, the second half answer
        turn1.ensure_block_hashes(32, 16);
        let mut turn2 = request(vec![q, Segment { id: 55, len: 12 }, Segment { id: 77, len: 10 }], 56);
        turn2.ensure_block_hashes(42, 16);
        assert_eq!(turn1.kv.block_hashes, turn2.kv.block_hashes[..2]);
    }

    #[test]
    fn slab_reuses_slots() {
        let mut slab = RequestSlab::default();
        let a = slab.insert(request(vec![Segment { id: 1, len: 4 }], 1));
        slab.remove(a);
        let b = slab.insert(request(vec![Segment { id: 2, len: 4 }], 2));
        assert_eq!(a, b);
        assert_eq!(slab.live(), 1);
    }
}
