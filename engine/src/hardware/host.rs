//! What the host costs: vLLM's CPU-side work, apart from GPU kernels (issue 12, item 2). Every
//! step pays the scheduler, input preparation, kernel launches and output processing; every
//! scheduled sequence adds bookkeeping; every online request first passes the API server
//! (HTTP, tokenization) and the client. These run on the host CPU whatever the GPU, so one
//! profile (`models/host.json`, fitted by `symbiote calibrate --host` together with the
//! kernel tables) serves every GPU; a case may scale it for a slower or faster host
//! (`"host": {"scale": 1.3}`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The host costs of one vLLM replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostParams {
    /// Fixed CPU cost of every step.
    pub step_overhead_us: f64,
    /// Extra CPU cost per scheduled sequence per step.
    pub per_sequence_overhead_us: f64,
    /// API server and client time before the engine sees an online request.
    pub frontend_overhead_us: f64,
    pub provenance: String,
    pub sources: BTreeMap<String, String>,
}

const SHIPPED: &str = include_str!("../../../models/host.json");

impl HostParams {
    /// The shipped profile, parsed once; a parse error is a bug a unit test catches.
    pub fn shipped() -> &'static HostParams {
        static HOST: std::sync::OnceLock<HostParams> = std::sync::OnceLock::new();
        HOST.get_or_init(|| serde_json::from_str(SHIPPED).unwrap_or_else(|e| panic!("models/host.json: {e}")))
    }

    /// Every cost multiplied by `factor` (a host `factor` times slower).
    pub fn scaled(&self, factor: f64) -> HostParams {
        HostParams {
            step_overhead_us: self.step_overhead_us * factor,
            per_sequence_overhead_us: self.per_sequence_overhead_us * factor,
            frontend_overhead_us: self.frontend_overhead_us * factor,
            provenance: self.provenance.clone(),
            sources: self.sources.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profile_parses_with_a_source_per_value() {
        let h = HostParams::shipped();
        assert!(h.step_overhead_us > 0.0 && h.per_sequence_overhead_us >= 0.0 && h.frontend_overhead_us >= 0.0);
        for key in ["step_overhead_us", "per_sequence_overhead_us", "frontend_overhead_us"] {
            assert!(h.sources.contains_key(key), "models/host.json: no source for {key}");
        }
    }

    #[test]
    fn scaling_multiplies_every_cost() {
        let h = HostParams::shipped().scaled(2.0);
        assert_eq!(h.step_overhead_us, 2.0 * HostParams::shipped().step_overhead_us);
        assert_eq!(h.frontend_overhead_us, 2.0 * HostParams::shipped().frontend_overhead_us);
    }
}
