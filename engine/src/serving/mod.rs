//! What serves: requests, the vLLM V1 scheduler, the paged KV cache and the replica that
//! runs steps. Serving code never reads files and never advances time itself.

pub mod kv_cache;
pub mod replica;
pub mod request;
pub mod scheduler;
