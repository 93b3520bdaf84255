//! The CLI's flags from Python: the package turns keyword arguments into flags (`deadline_h=6`
//! into `--deadline-h 6`), which the CLI's own clap definitions parse ([`ReplayArgs`],
//! [`MemoryArgs`], [`PlanArgs`]), so the defaults, the checks and the messages are the CLI's.
//!
//! [`ReplayArgs`]: symbiote::cli::ReplayArgs
//! [`MemoryArgs`]: symbiote::cli::MemoryArgs
//! [`PlanArgs`]: symbiote::cli::PlanArgs

use pyo3::PyResult;

use crate::InputError;

/// Parses `argv` (flags only, no program name) as `symbiote <command>` would.
pub fn parse<T: clap::Args + clap::FromArgMatches>(command: &'static str, argv: Vec<String>) -> PyResult<T> {
    let cli = T::augment_args(clap::Command::new(command).no_binary_name(true));
    let matches = cli.try_get_matches_from(argv).map_err(|e| InputError::new_err(message(&e)))?;
    T::from_arg_matches(&matches).map_err(|e| InputError::new_err(message(&e)))
}

/// clap's message without what only suits a terminal (the usage line, "try '--help'").
fn message(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"));
    lines.map(|l| l.strip_prefix("error: ").unwrap_or(l)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyword the CLI does not know is refused with clap's message and its suggestion.
    #[test]
    fn an_unknown_flag_is_refused_with_the_cli_message() {
        pyo3::Python::initialize();
        let error = parse::<symbiote::cli::MemoryArgs>(
            "memory",
            ["--model", "llama-3.1-8b", "--gpu", "h100", "--max-model-lenn", "4096"].map(String::from).to_vec(),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("unexpected argument '--max-model-lenn' found"), "{text}");
        assert!(text.contains("--max-model-len"), "{text}");
        assert!(!text.contains("Usage:"), "{text}");
    }

    /// The CLI's defaults come with the parse: `--quant fp16`, `--tp 1`, 0.9 utilisation.
    #[test]
    fn defaults_are_the_cli_defaults() {
        let args: symbiote::cli::MemoryArgs =
            parse("memory", ["--model", "llama-3.1-8b", "--gpu", "h100"].map(String::from).to_vec()).unwrap();
        assert_eq!(args.quant, symbiote::hardware::Quant::Fp16);
        assert_eq!(args.tp, 1);
        assert_eq!(args.gpu_memory_utilization, 0.9);
    }
}
