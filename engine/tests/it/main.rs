//! End-to-end tests: one binary, one module per concern.

mod broken;
mod cli;
mod determinism;
mod engine;
mod fidelity;
mod fleet;
mod hf_config;
mod phases;
mod sweeps;
mod traces;

use symbiote::scenario::{parse, Scenario};

/// Parses a scenario written in a test, panicking with every diagnostic on failure.
pub fn scenario(text: &str) -> Scenario {
    parse(text, "test.json")
        .unwrap_or_else(|problems| panic!("{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")))
}
