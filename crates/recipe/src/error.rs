//! The recipe crate's error type. Messages name the file, the key and what was expected.

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Syntax errors, unknown keys and wrong types; toml's message carries line and column.
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
    #[error("{file}: `{key}` ({origin}): expected {expected}")]
    Invalid {
        file: String,
        key: String,
        origin: String,
        expected: String,
    },
    #[error("--set {arg}: {msg}")]
    Override { arg: String, msg: String },
}
