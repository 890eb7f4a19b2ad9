//! didact-data: where training rows come from and where tables go — the built-in arithmetic
//! and Markov-source worlds, dataset ingestion (txt / JSONL / Parquet with TRL field names), mixing real and
//! synthetic rows, and Parquet/CSV tables through polars. No burn.

pub mod arithmetic;
pub mod chat;
pub mod error;
pub mod ingest;
pub mod markov;
pub mod mix;
pub mod prefs;
pub mod table;

pub use arithmetic::{ArithmeticWorld, Op};
pub use error::{DataError, Result};
pub use ingest::{Loaded, OnError};
pub use mix::{MixMode, mix, synthetic_fraction};
pub use prefs::{PrefLoaded, PrefRow, load_prefs};
