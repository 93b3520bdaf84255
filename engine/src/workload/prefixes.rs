//! Prompt content: independent prompts with optional shared prefix groups (Zipf popularity),
//! and inference-perf's `shared_prefix` data (groups of users sharing a system prompt, with
//! optional multi-turn chat where a user's next prompt extends the conversation).
//!
//! Tokens have no text here; a prompt is a list of [`Segment`]s whose identities make equal
//! prefixes hash alike in the KV cache.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::lengths::LengthDist;
use super::Segment;
use crate::sim::rng::mix2;

const TAG_UNIQUE: u64 = 1;
const TAG_PREFIX_GROUP: u64 = 2;
const TAG_SYSTEM: u64 = 3;
const TAG_QUESTION: u64 = 4;
const TAG_OUTPUT: u64 = 5;

/// A shared prefix put in front of a fraction of independent prompts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixGroups {
    /// Number of distinct prefixes (1 = one system prompt for everyone).
    #[serde(default = "one")]
    pub groups: u32,
    /// Length of each prefix in tokens.
    pub tokens: u32,
    /// Fraction of requests that carry a prefix.
    #[serde(default = "one_f64")]
    pub fraction: f64,
    /// Zipf exponent of group popularity (0 = uniform).
    #[serde(default)]
    pub zipf_s: f64,
}

fn one() -> u32 {
    1
}
fn one_f64() -> f64 {
    1.0
}

/// inference-perf's `shared_prefix` data generator, field for field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// What a prompt contains, as written in a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentSpec {
    /// Prompt length (of the part after any shared prefix).
    #[serde(default)]
    pub prompt: Option<LengthDist>,
    #[serde(default)]
    pub output: Option<LengthDist>,
    #[serde(default)]
    pub prefix: Option<PrefixGroups>,
    /// Replaces `prompt`, `output` and `prefix` with inference-perf shared-prefix data.
    #[serde(default)]
    pub shared_prefix: Option<SharedPrefixSpec>,
}

/// One generated prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    pub segments: Vec<Segment>,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub output_segment: u64,
}

/// Generates prompt content, request after request.
#[derive(Debug)]
pub enum Content {
    Independent {
        prompt: LengthDist,
        output: LengthDist,
        prefix: Option<(PrefixGroups, Vec<f64>)>,
    },
    SharedPrefix {
        spec: SharedPrefixSpec,
        /// Per user: the conversation so far (multi-turn) and its turn count.
        histories: Vec<(Vec<Segment>, u32)>,
        max_prompt_tokens: u32,
    },
}

/// The random streams content generation draws from.
pub struct ContentRngs<'a> {
    pub prompt: &'a mut ChaCha8Rng,
    pub output: &'a mut ChaCha8Rng,
    pub group: &'a mut ChaCha8Rng,
}

impl Content {
    /// `max_prompt_tokens` bounds a multi-turn conversation: when the next turn would exceed
    /// it, that user starts a new conversation.
    pub fn new(spec: &ContentSpec, max_prompt_tokens: u32) -> Content {
        if let Some(shared) = &spec.shared_prefix {
            let users = (shared.num_groups * shared.num_prompts_per_group) as usize;
            return Content::SharedPrefix {
                spec: shared.clone(),
                histories: vec![(Vec::new(), 0); users],
                max_prompt_tokens,
            };
        }
        let prefix = spec
            .prefix
            .as_ref()
            .map(|p| (p.clone(), zipf_cdf(p.groups, p.zipf_s)));
        Content::Independent {
            prompt: spec
                .prompt
                .clone()
                .unwrap_or(LengthDist::Fixed { value: 512 }),
            output: spec
                .output
                .clone()
                .unwrap_or(LengthDist::Fixed { value: 128 }),
            prefix,
        }
    }

    /// Draws the content of request number `index`.
    pub fn draw(&mut self, index: u64, rngs: ContentRngs<'_>) -> Drawn {
        let output_segment = mix2(TAG_OUTPUT, index);
        match self {
            Content::Independent {
                prompt,
                output,
                prefix,
            } => {
                let mut segments = Vec::with_capacity(2);
                if let Some((groups, cdf)) = prefix {
                    if groups.fraction >= 1.0 || rngs.group.gen::<f64>() < groups.fraction {
                        let u: f64 = rngs.group.gen();
                        let group = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
                        segments.push(Segment {
                            id: mix2(TAG_PREFIX_GROUP, group as u64),
                            len: groups.tokens,
                        });
                    }
                }
                let unique = prompt.sample(rngs.prompt);
                segments.push(Segment {
                    id: mix2(TAG_UNIQUE, index),
                    len: unique,
                });
                let prompt_tokens = segments.iter().map(|s| s.len).sum();
                Drawn {
                    segments,
                    prompt_tokens,
                    output_tokens: output.sample(rngs.output),
                    output_segment,
                }
            }
            Content::SharedPrefix {
                spec,
                histories,
                max_prompt_tokens,
            } => {
                let user = rngs.group.gen_range(0..histories.len());
                let group = user as u32 / spec.num_prompts_per_group;
                let (history, turn) = &mut histories[user];
                let base = spec.system_prompt_len + spec.question_len;
                let history_tokens: u32 = history.iter().map(|s| s.len).sum();
                if !spec.enable_multi_turn_chat || history_tokens + base > *max_prompt_tokens {
                    history.clear();
                }
                let mut segments = Vec::with_capacity(history.len() + 2);
                segments.push(Segment {
                    id: mix2(TAG_SYSTEM, group as u64),
                    len: spec.system_prompt_len,
                });
                segments.extend_from_slice(history);
                let question = Segment {
                    id: mix2(TAG_QUESTION, mix2(user as u64, *turn as u64)),
                    len: spec.question_len,
                };
                segments.push(question);
                *turn += 1;
                if spec.enable_multi_turn_chat {
                    history.push(question);
                    history.push(Segment {
                        id: output_segment,
                        len: spec.output_len,
                    });
                }
                let prompt_tokens = segments.iter().map(|s| s.len).sum();
                Drawn {
                    segments,
                    prompt_tokens,
                    output_tokens: spec.output_len,
                    output_segment,
                }
            }
        }
    }
}

/// Cumulative probabilities of a Zipf(s) law over `n` ranks (s = 0 is uniform).
fn zipf_cdf(n: u32, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n.max(1)).map(|k| (k as f64).powf(-s)).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Stream, Streams};

    fn draw_many(content: &mut Content, n: u64) -> Vec<Drawn> {
        let streams = Streams::new(9);
        let (mut p, mut o, mut g) = (
            streams.get(Stream::PromptLength),
            streams.get(Stream::OutputLength),
            streams.get(Stream::PrefixGroup),
        );
        (0..n)
            .map(|i| {
                content.draw(
                    i,
                    ContentRngs {
                        prompt: &mut p,
                        output: &mut o,
                        group: &mut g,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn shared_prefix_prompts_start_with_their_group_system_prompt() {
        let spec = ContentSpec {
            prompt: None,
            output: None,
            prefix: None,
            shared_prefix: Some(SharedPrefixSpec {
                num_groups: 2,
                num_prompts_per_group: 3,
                system_prompt_len: 100,
                question_len: 40,
                output_len: 20,
                enable_multi_turn_chat: false,
            }),
        };
        let drawn = draw_many(&mut Content::new(&spec, 10_000), 50);
        let systems: std::collections::BTreeSet<u64> =
            drawn.iter().map(|d| d.segments[0].id).collect();
        assert_eq!(systems.len(), 2);
        assert!(drawn
            .iter()
            .all(|d| d.prompt_tokens == 140 && d.output_tokens == 20));
    }

    #[test]
    fn multi_turn_prompts_extend_the_previous_turn() {
        let spec = ContentSpec {
            prompt: None,
            output: None,
            prefix: None,
            shared_prefix: Some(SharedPrefixSpec {
                num_groups: 1,
                num_prompts_per_group: 1,
                system_prompt_len: 10,
                question_len: 5,
                output_len: 7,
                enable_multi_turn_chat: true,
            }),
        };
        let drawn = draw_many(&mut Content::new(&spec, 40), 4);
        // One user: turns grow by question + answer (12 tokens) until 40 would be exceeded.
        let lens: Vec<u32> = drawn.iter().map(|d| d.prompt_tokens).collect();
        assert_eq!(lens, vec![15, 27, 39, 15]);
        // Turn 2 quotes turn 1's answer by its identity.
        assert_eq!(
            drawn[1].segments[2],
            Segment {
                id: drawn[0].output_segment,
                len: 7
            }
        );
        assert_eq!(drawn[1].segments[..2], drawn[0].segments[..2]);
    }

    #[test]
    fn zipf_popularity_favours_low_ranks() {
        let cdf = zipf_cdf(4, 1.0);
        // Weights 1, 1/2, 1/3, 1/4 over a total of 25/12.
        assert!((cdf[0] - 12.0 / 25.0).abs() < 1e-12);
        assert!((cdf[3] - 1.0).abs() < 1e-12);
    }
}
