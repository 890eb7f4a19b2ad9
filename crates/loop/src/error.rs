//! The loop crate's error type: wraps every lower crate's error and adds run-directory and
//! resume errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Recipe(#[from] didact_recipe::RecipeError),
    #[error(transparent)]
    Data(#[from] didact_data::DataError),
    #[error(transparent)]
    Model(#[from] didact_model::ModelError),
    #[error("round {round}: {source}")]
    Train {
        round: u32,
        #[source]
        source: didact_train::TrainError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    RunDir { path: PathBuf, msg: String },
    #[error("{0}")]
    Memory(String),
    #[error("generate endpoint: {0}")]
    Endpoint(#[from] didact_endpoint::EndpointError),
}

pub type Result<T> = std::result::Result<T, LoopError>;

pub fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> LoopError + '_ {
    move |e| LoopError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}
