//! What vLLM refuses at the door because of `max_model_len`, and with which message. Two front
//! doors check a request before the scheduler sees it, and they differ:
//!
//! - The OpenAI API server (`vllm serve`, which `vllm bench serve` drives): every request
//!   carries `max_tokens`, and `OpenAIServing._validate_input`
//!   (`vllm/entrypoints/openai/serving_engine.py`, v0.10.2 to v0.17) answers HTTP 400 when the
//!   prompt alone reaches `max_model_len` (`token_num >= max_model_len`) or when prompt plus
//!   `max_tokens` exceeds it (`token_num + max_tokens > max_model_len`). Older releases worded
//!   the second message differently (v0.9: "However, you requested {n + m} tokens ({n} in the
//!   messages, {m} in the completion)"); the rule is the same.
//! - The engine itself (the offline `LLM` class, as Ray Data LLM drives it):
//!   `InputProcessor._validate_prompt_len` (`vllm/v1/engine/input_processor.py`, formerly
//!   `Processor._validate_model_input` in `vllm/v1/engine/processor.py`) raises `ValueError` for
//!   a prompt longer than `max_model_len`, and, for generative models, for a prompt exactly
//!   `max_model_len` long (no room for the one output token every request asks for). It does
//!   not look at `max_tokens`: a request whose prompt plus output would pass the limit is
//!   accepted and stopped by `check_stop` (`vllm/v1/core/sched/utils.py`) when
//!   `num_tokens >= max_model_len`, finish reason "length" (`FINISHED_LENGTH_CAPPED`).

use super::replica::Rejection;

/// Which front door a request passes (the scenario's `engine.entrypoint`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FrontDoor {
    /// `vllm serve`: the OpenAI server's checks, then the engine's.
    #[default]
    ApiServer,
    /// The offline `LLM` class: the engine's checks only.
    Offline,
}

/// Reason of a refused prompt that does not fit on its own (either door).
pub const PROMPT_TOO_LONG: &str = "prompt_too_long";
/// Reason of a server request whose prompt plus `max_tokens` passes `max_model_len`.
pub const MAX_TOKENS_TOO_LARGE: &str = "max_tokens_too_large";

/// `Ok` when the request may enter the waiting queue; otherwise vLLM's refusal, reason and
/// message. `max_tokens` is the request's output length, which `vllm bench serve` sends as
/// `max_tokens` (with `ignore_eos`).
pub fn check_length(door: FrontDoor, prompt_tokens: u32, max_tokens: u32, max_model_len: u32) -> Result<(), Rejection> {
    let (n, m, limit) = (prompt_tokens, max_tokens, max_model_len);
    match door {
        FrontDoor::ApiServer if n >= limit => Err(Rejection {
            reason: PROMPT_TOO_LONG,
            message: format!(
                "This model's maximum context length is {limit} tokens. However, your request has {n} input tokens. Please reduce the length of the input messages."
            ),
        }),
        FrontDoor::ApiServer if n as u64 + m as u64 > limit as u64 => Err(Rejection {
            reason: MAX_TOKENS_TOO_LARGE,
            message: format!(
                "'max_tokens' or 'max_completion_tokens' is too large: {m}. This model's maximum context length is {limit} tokens and your request has {n} input tokens ({m} > {limit} - {n})."
            ),
        }),
        FrontDoor::ApiServer => Ok(()),
        FrontDoor::Offline if n > limit => Err(Rejection {
            reason: PROMPT_TOO_LONG,
            message: format!(
                "The decoder prompt (length {n}) is longer than the maximum model length of {limit}. Make sure that `max_model_len` is no smaller than the number of text tokens."
            ),
        }),
        FrontDoor::Offline if n == limit => Err(Rejection {
            reason: PROMPT_TOO_LONG,
            message: format!(
                "The decoder prompt (length {n}) plus the number of requested output tokens (at least 1) is longer than the maximum model length of {limit}. Make sure that `max_model_len` is no smaller than the number of text tokens (prompt + requested output tokens)."
            ),
        }),
        FrontDoor::Offline => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(door: FrontDoor, prompt: u32, output: u32) -> Option<&'static str> {
        check_length(door, prompt, output, 4096).err().map(|r| r.reason)
    }

    // See: issue 14
    /// The server refuses a prompt that fills the context and any request whose prompt plus
    /// `max_tokens` passes it; a request that fits exactly is served.
    #[test]
    fn issue_14_the_api_server_refuses_what_cannot_fit_whole() {
        use FrontDoor::ApiServer;
        assert_eq!(reason(ApiServer, 4097, 1), Some(PROMPT_TOO_LONG));
        assert_eq!(reason(ApiServer, 4096, 1), Some(PROMPT_TOO_LONG));
        assert_eq!(reason(ApiServer, 4095, 2), Some(MAX_TOKENS_TOO_LARGE));
        assert_eq!(reason(ApiServer, 4095, 1), None);
        assert_eq!(reason(ApiServer, 3000, 1096), None);
        let message = check_length(ApiServer, 3000, 1097, 4096).unwrap_err().message;
        assert_eq!(
            message,
            "'max_tokens' or 'max_completion_tokens' is too large: 1097. This model's maximum context length is 4096 tokens and your request has 3000 input tokens (1097 > 4096 - 3000)."
        );
        let message = check_length(ApiServer, 4096, 10, 4096).unwrap_err().message;
        assert_eq!(
            message,
            "This model's maximum context length is 4096 tokens. However, your request has 4096 input tokens. Please reduce the length of the input messages."
        );
    }

    // See: issue 14
    /// The engine refuses a prompt of `max_model_len` or more and accepts the rest, whatever
    /// their output length (generation is cut at `max_model_len`).
    #[test]
    fn issue_14_the_offline_engine_refuses_only_prompts_that_fill_the_context() {
        use FrontDoor::Offline;
        assert_eq!(reason(Offline, 4097, 1), Some(PROMPT_TOO_LONG));
        assert_eq!(reason(Offline, 4096, 1), Some(PROMPT_TOO_LONG));
        assert_eq!(reason(Offline, 4095, 500), None);
        let message = check_length(Offline, 4096, 1, 4096).unwrap_err().message;
        assert!(message.starts_with("The decoder prompt (length 4096) plus the number of requested output tokens (at least 1) is longer than the maximum model length of 4096."), "{message}");
    }
}
