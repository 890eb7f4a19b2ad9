//! didact-model: the burn language models (Llama family, GPT-2; `Lm` either), tokenizer, KV-cache
//! sampling, Hugging Face checkpoint I/O and device selection. Knows nothing of recipes,
//! datasets or training loops.

pub mod any;
pub mod attend;
pub mod checkpoint;
pub mod device;
pub mod error;
pub mod gpt2;
pub mod llama;
pub mod lora;
pub mod precision;
pub mod sample;
pub mod tokenizer;
pub mod weights;

pub use any::{AnyCheckpoint, Decoder, Dims, Lm, LmConfig};
pub use burn;
pub use error::{ModelError, Result};
pub use gpt2::{Gpt2, Gpt2Config};
pub use llama::{KvCache, Llama, LlamaConfig, Positions, WeightSource};
pub use sample::{
    Generation, SamplingParams, generate_all, generate_batch, generate_batch_observed, row_seed,
};
pub use tokenizer::Tok;
pub use weights::WeightDtype;
