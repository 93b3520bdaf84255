//! Prompt content: independent prompts with optional shared prefix groups (Zipf popularity),
//! or inference-perf's `shared_prefix` data (see `shared_prefix`).
//!
//! Tokens have no text here; a prompt is a list of [`Segment`]s whose identities make equal
//! prefixes hash alike in the KV cache.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::lengths::LengthDist;
use super::shared_prefix::{SharedPrefixData, SharedPrefixSpec};
use super::Segment;
use crate::sim::rng::mix2;

const TAG_UNIQUE: u64 = 1;
const TAG_PREFIX_GROUP: u64 = 2;
const TAG_OUTPUT: u64 = 5;

/// Identity of the tokens request `index` generates.
pub fn output_segment_id(index: u64) -> u64 {
    mix2(TAG_OUTPUT, index)
}

/// A shared prefix put in front of a fraction of independent prompts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What a prompt contains, as written in a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// `RequestSpec::private_from`.
    pub private_from: u32,
}

/// Generates prompt content, request after request.
#[derive(Debug)]
pub enum Content {
    Independent { prompt: LengthDist, output: LengthDist, prefix: Option<(PrefixGroups, Vec<f64>)> },
    SharedPrefix(SharedPrefixData),
}

/// The random streams content generation draws from.
pub struct ContentRngs<'a> {
    pub prompt: &'a mut ChaCha8Rng,
    pub output: &'a mut ChaCha8Rng,
    pub group: &'a mut ChaCha8Rng,
}

impl Content {
    /// `shuffle` draws the one-time orderings of shared-prefix data.
    pub fn new(spec: &ContentSpec, shuffle: &mut ChaCha8Rng) -> Content {
        if let Some(shared) = &spec.shared_prefix {
            return Content::SharedPrefix(SharedPrefixData::new(shared, shuffle));
        }
        let prefix = spec.prefix.as_ref().map(|p| (p.clone(), zipf_cdf(p.groups, p.zipf_s)));
        Content::Independent {
            prompt: spec.prompt.clone().unwrap_or(LengthDist::Fixed { value: 512 }),
            output: spec.output.clone().unwrap_or(LengthDist::Fixed { value: 128 }),
            prefix,
        }
    }

    /// Draws the content of request number `index`.
    pub fn draw(&mut self, index: u64, rngs: ContentRngs<'_>) -> Drawn {
        match self {
            Content::Independent { prompt, output, prefix } => {
                let mut segments = Vec::with_capacity(2);
                if let Some((groups, cdf)) = prefix {
                    if groups.fraction >= 1.0 || rngs.group.gen::<f64>() < groups.fraction {
                        let u: f64 = rngs.group.gen();
                        let group = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
                        segments.push(Segment { id: mix2(TAG_PREFIX_GROUP, group as u64), len: groups.tokens });
                    }
                }
                // Everything after the group prefix is this request's alone: its unique segment
                // and its output, which only a multi-turn session (never an independent prompt)
                // quotes.
                let private_from = segments.first().map_or(0, |s| s.len);
                let unique = prompt.sample(rngs.prompt);
                segments.push(Segment { id: mix2(TAG_UNIQUE, index), len: unique });
                let prompt_tokens = segments.iter().map(|s| s.len).sum();
                Drawn {
                    segments,
                    prompt_tokens,
                    output_tokens: output.sample(rngs.output),
                    output_segment: output_segment_id(index),
                    private_from,
                }
            }
            Content::SharedPrefix(data) => data.draw(index),
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

    #[test]
    fn prefix_groups_put_a_shared_segment_in_front() {
        let spec = ContentSpec {
            prompt: Some(LengthDist::Fixed { value: 10 }),
            output: None,
            prefix: Some(PrefixGroups { groups: 2, tokens: 64, fraction: 1.0, zipf_s: 0.0 }),
            shared_prefix: None,
        };
        let streams = Streams::new(9);
        let mut content = Content::new(&spec, &mut streams.get(Stream::Dataset));
        let (mut p, mut o, mut g) =
            (streams.get(Stream::PromptLength), streams.get(Stream::OutputLength), streams.get(Stream::PrefixGroup));
        let drawn: Vec<Drawn> =
            (0..40).map(|i| content.draw(i, ContentRngs { prompt: &mut p, output: &mut o, group: &mut g })).collect();
        let groups: std::collections::BTreeSet<u64> = drawn.iter().map(|d| d.segments[0].id).collect();
        assert_eq!(groups.len(), 2);
        assert!(drawn.iter().all(|d| d.prompt_tokens == 74 && d.segments[0].len == 64));
    }

    #[test]
    fn zipf_popularity_favours_low_ranks() {
        let cdf = zipf_cdf(4, 1.0);
        // Weights 1, 1/2, 1/3, 1/4 over a total of 25/12.
        assert!((cdf[0] - 12.0 / 25.0).abs() < 1e-12);
        assert!((cdf[3] - 1.0).abs() < 1e-12);
    }
}
