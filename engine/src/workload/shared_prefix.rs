//! inference-perf's `shared_prefix` data generator (kubernetes-sigs/inference-perf,
//! `datagen/shared_prefix_datagen.py` and `apis/user_session.py`), reproduced rule for rule:
//!
//! - `num_groups` system prompts of `system_prompt_len` tokens; `num_prompts_per_group`
//!   questions of `question_len` tokens per group; every request generates `output_len`.
//! - Single turn: the prompts (system + question) are shuffled once and request `i` sends
//!   prompt `i mod n`.
//! - Multi-turn: one user session per prompt, whose context starts as its group's system
//!   prompt; the sessions are shuffled once; request `i` belongs to session `i mod n` and sends
//!   `context + question(i mod n)`. On success the context becomes that prompt plus the
//!   response; on failure (e.g. a prompt longer than `max_model_len`) it stays as it was, so
//!   a conversation that outgrew the model keeps failing. A session sends one request at a
//!   time: a request whose session is busy waits until the previous one ends, and its latency
//!   counts from when it is sent.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::prefixes::{output_segment_id, Drawn};
use super::RequestSpec;
use super::Segment;
use crate::sim::rng::mix2;

const TAG_SYSTEM: u64 = 3;
const TAG_QUESTION: u64 = 4;

/// inference-perf's `shared_prefix` data section, field for field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefixSpec {
    pub num_groups: u32,
    pub num_prompts_per_group: u32,
    pub system_prompt_len: u32,
    pub question_len: u32,
    pub output_len: u32,
    #[serde(default)]
    pub enable_multi_turn_chat: bool,
}

#[derive(Debug, Default)]
struct Session {
    context: Vec<Segment>,
    busy: bool,
    /// The prompt in flight, which becomes the context if it succeeds.
    in_flight: Vec<Segment>,
    /// Requests waiting for this session, by workload index.
    parked: VecDeque<u64>,
}

#[derive(Debug)]
pub struct SharedPrefixData {
    spec: SharedPrefixSpec,
    /// Single turn: prompt slots in shuffled order. Multi-turn: sessions in shuffled order.
    order: Vec<u32>,
    sessions: Vec<Session>,
}

impl SharedPrefixData {
    pub fn new(spec: &SharedPrefixSpec, shuffle: &mut ChaCha8Rng) -> SharedPrefixData {
        let n = (spec.num_groups * spec.num_prompts_per_group) as usize;
        let mut order: Vec<u32> = (0..n as u32).collect();
        // Fisher-Yates, as Python's random.shuffle.
        for i in (1..n).rev() {
            order.swap(i, shuffle.gen_range(0..=i));
        }
        let sessions = if spec.enable_multi_turn_chat {
            (0..n as u32)
                .map(|s| Session {
                    context: vec![Segment {
                        id: mix2(TAG_SYSTEM, (s / spec.num_prompts_per_group) as u64),
                        len: spec.system_prompt_len,
                    }],
                    ..Session::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        SharedPrefixData { spec: spec.clone(), order, sessions }
    }

    fn slots(&self) -> u64 {
        self.order.len() as u64
    }

    fn question(&self, slot: u64) -> Segment {
        Segment { id: mix2(TAG_QUESTION, slot), len: self.spec.question_len }
    }

    /// The session request `index` belongs to (multi-turn only).
    pub fn session_of(&self, index: u64) -> Option<u32> {
        (!self.sessions.is_empty()).then(|| self.order[(index % self.slots()) as usize])
    }

    /// Whether the session can send now; if not, `index` is parked until it can.
    pub fn try_acquire(&mut self, session: u32, index: u64) -> bool {
        let s = &mut self.sessions[session as usize];
        if s.busy {
            s.parked.push_back(index);
            false
        } else {
            true
        }
    }

    pub fn draw(&mut self, index: u64) -> Drawn {
        let slot = index % self.slots();
        let question = self.question(slot);
        let segments = match self.session_of(index) {
            Some(session) => {
                let s = &mut self.sessions[session as usize];
                debug_assert!(!s.busy, "a session sends one request at a time");
                s.busy = true;
                s.in_flight.clear();
                s.in_flight.extend_from_slice(&s.context);
                s.in_flight.push(question);
                s.in_flight.clone()
            }
            None => {
                let slot = self.order[slot as usize];
                let group = slot / self.spec.num_prompts_per_group;
                vec![
                    Segment { id: mix2(TAG_SYSTEM, group as u64), len: self.spec.system_prompt_len },
                    self.question(slot as u64),
                ]
            }
        };
        let prompt_tokens = segments.iter().map(|s| s.len).sum();
        Drawn {
            prompt_tokens,
            segments,
            output_tokens: self.spec.output_len,
            output_segment: output_segment_id(index),
            // Questions repeat across prompts, so only the output is the request's own, and
            // a session's next turn quotes even that.
            private_from: if self.sessions.is_empty() { prompt_tokens } else { RequestSpec::SHARED },
        }
    }

    /// The session's request ended: on success its prompt and response become the context.
    /// Returns the next parked request of the session, which may now be sent.
    pub fn release(&mut self, session: u32, success: bool, output: Segment) -> Option<u64> {
        let s = &mut self.sessions[session as usize];
        debug_assert!(s.busy, "releasing an idle session");
        s.busy = false;
        if success {
            std::mem::swap(&mut s.context, &mut s.in_flight);
            s.context.push(output);
        }
        s.parked.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Stream, Streams};

    fn spec(multi_turn: bool) -> SharedPrefixSpec {
        SharedPrefixSpec {
            num_groups: 2,
            num_prompts_per_group: 3,
            system_prompt_len: 100,
            question_len: 40,
            output_len: 20,
            enable_multi_turn_chat: multi_turn,
        }
    }

    #[test]
    fn single_turn_cycles_through_a_shuffled_set_of_prompts() {
        let mut data = SharedPrefixData::new(&spec(false), &mut Streams::new(1).get(Stream::Dataset));
        let drawn: Vec<Drawn> = (0..12).map(|i| data.draw(i)).collect();
        assert!(drawn.iter().all(|d| d.prompt_tokens == 140 && d.output_tokens == 20));
        // Request i and i + 6 send the same prompt.
        assert_eq!(drawn[1].segments, drawn[7].segments);
        let systems: std::collections::BTreeSet<u64> = drawn.iter().map(|d| d.segments[0].id).collect();
        assert_eq!(systems.len(), 2);
    }

    #[test]
    fn multi_turn_context_grows_on_success_and_freezes_on_failure() {
        let mut data = SharedPrefixData::new(&spec(true), &mut Streams::new(1).get(Stream::Dataset));
        let session = data.session_of(0).unwrap();
        assert_eq!(data.session_of(6), Some(session));
        let first = data.draw(0);
        assert_eq!(first.prompt_tokens, 140);
        // Request 6 of the same session must wait for request 0.
        assert!(!data.try_acquire(session, 6));
        let out = Segment { id: first.output_segment, len: 20 };
        assert_eq!(data.release(session, true, out), Some(6));
        let second = data.draw(6);
        // system + question + answer + the same question again.
        assert_eq!(second.prompt_tokens, 100 + 40 + 20 + 40);
        assert_eq!(second.segments[..2], first.segments[..]);
        assert_eq!(second.segments[2], out);
        // A failure leaves the context as it was.
        assert_eq!(data.release(session, false, Segment { id: second.output_segment, len: 20 }), None);
        assert!(data.try_acquire(session, 12));
        assert_eq!(data.draw(12).prompt_tokens, 200);
    }
}
