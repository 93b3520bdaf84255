//! What a KV transfer costs: the links between a prefill and a decode replica (NVLink, PCIe,
//! RDMA NICs), read from `models/links.json` and the GPUs' own files, and the time one
//! request's KV takes over one of them. Nothing here sees time or events beyond a duration.
//!
//! A transfer of `bytes` per GPU over a link of bandwidth `B` (one direction) and fixed
//! latency `L` takes `bytes / B + L`. Each GPU of a replica moves its own shard of the KV
//! (tensor parallelism splits the KV heads), in parallel over its own link, so the bytes per
//! GPU are the larger of the two sides' per-rank shares: a TP-1 prefill replica sends all of
//! a request's KV through one link even when a TP-2 decode replica receives it on two.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::catalog::{GpuSpec, ModelSpec};
use super::memory::kv_bytes_per_token;
use super::quant::{KvDtype, Quant};

const LINKS_JSON: &str = include_str!("../../../models/links.json");

/// One link entry of `models/links.json`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub name: String,
    /// `gpu_interconnect` (bandwidth from the GPU's `interconnect_gbps`), `gpu_pcie` (from its
    /// `pcie_gbps`) or `rdma_nic` (from `gbps` here).
    pub kind: String,
    /// GB/s in one direction (`rdma_nic` only).
    pub gbps: Option<f64>,
    pub latency_us: f64,
    pub sources: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksFile {
    #[allow(dead_code)] // documentation for the reader of the JSON file
    about: String,
    links: Vec<LinkEntry>,
}

/// The built-in links, in file order.
pub fn links() -> Vec<LinkEntry> {
    let file: LinksFile = serde_json::from_str(LINKS_JSON).expect("models/links.json is valid (tested)");
    file.links
}

/// The names a scenario may choose, for error messages.
pub fn link_names() -> Vec<String> {
    links().into_iter().map(|l| l.name).collect()
}

/// A link resolved for a pair of GPUs: bandwidth in bytes/s one way, and latency in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    pub bytes_per_s: f64,
    pub latency_s: f64,
}

/// Resolves `name` between a prefill GPU and a decode GPU: the slower side's figure for a
/// GPU-owned link. `Err` names the problem and the fix.
pub fn resolve(name: &str, prefill: &GpuSpec, decode: &GpuSpec) -> Result<Link, String> {
    let Some(entry) = links().into_iter().find(|l| l.name == name) else {
        return Err(format!("unknown link `{name}`; use one of {}", link_names().join(", ")));
    };
    let gbps = match entry.kind.as_str() {
        "gpu_interconnect" => {
            let side = |g: &GpuSpec| {
                g.interconnect_gbps.ok_or_else(|| {
                    format!(
                        "gpu `{}` has no NVLink-class interconnect in its catalog file; choose `pcie` or an RDMA link",
                        g.name
                    )
                })
            };
            side(prefill)?.min(side(decode)?) / 2.0
        }
        "gpu_pcie" => prefill.pcie_gbps.min(decode.pcie_gbps) / 2.0,
        _ => entry.gbps.expect("rdma_nic links carry gbps (tested)"),
    };
    Ok(Link { bytes_per_s: gbps * 1e9, latency_s: entry.latency_us * 1e-6 })
}

/// KV bytes one GPU moves per token: the larger per-rank share of the two TP sizes.
pub fn transfer_bytes_per_token(
    model: &ModelSpec,
    quant: Quant,
    kv_dtype: KvDtype,
    tp_prefill: u64,
    tp_decode: u64,
) -> u64 {
    kv_bytes_per_token(model, quant, kv_dtype, tp_prefill).max(kv_bytes_per_token(model, quant, kv_dtype, tp_decode))
}

impl Link {
    /// Seconds on the wire for `bytes` per GPU (without the latency).
    pub fn wire_s(&self, bytes: u64) -> f64 {
        bytes as f64 / self.bytes_per_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;

    #[test]
    fn every_link_parses_and_cites_its_figures() {
        for link in links() {
            assert!(link.sources.contains_key("latency_us"), "{} cites no latency source", link.name);
            match link.kind.as_str() {
                "rdma_nic" => assert!(link.gbps.is_some_and(|g| g > 0.0) && link.sources.contains_key("gbps")),
                "gpu_interconnect" | "gpu_pcie" => {
                    assert!(link.gbps.is_none() && link.sources.contains_key("bandwidth"))
                }
                other => panic!("unknown kind {other}"),
            }
        }
    }

    #[test]
    fn nvlink_is_half_the_bidirectional_figure_and_a_gpu_without_it_is_refused() {
        let catalog = Catalog::builtin();
        let h100 = catalog.gpu("h100-80gb").unwrap();
        let link = resolve("nvlink", h100, h100).unwrap();
        // H100 datasheet: 900 GB/s bidirectional -> 450 GB/s one way.
        assert_eq!(link.bytes_per_s, 450e9);
        let l40s = catalog.gpu("l40s").unwrap();
        let err = resolve("nvlink", h100, l40s).unwrap_err();
        assert!(err.contains("l40s") && err.contains("pcie"), "{err}");
        assert!(resolve("carrier-pigeon", h100, h100).unwrap_err().contains("ib-ndr-400"));
    }
}
