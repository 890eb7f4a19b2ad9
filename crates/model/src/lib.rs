//! didact-model: the burn language model (Llama-style decoder), its tokenizer, KV-cache
//! sampling, Hugging Face checkpoint I/O and device selection. Knows nothing of recipes,
//! datasets or training loops.

pub mod any;
pub mod checkpoint;
pub mod device;
pub mod error;
pub mod gpt2;
pub mod llama;
pub mod sample;
pub mod tokenizer;
pub mod weights;

pub use burn;
pub use error::{ModelError, Result};
pub use llama::{KvCache, Llama, LlamaConfig, Positions, WeightSource};
pub use sample::{Generation, SamplingParams, generate_all, generate_batch, row_seed};
pub use tokenizer::Tok;
