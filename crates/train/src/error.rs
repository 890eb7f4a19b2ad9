//! The training crate's error type.

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "non-finite training loss ({loss}) at optimizer step {step} (micro-batch {micro}); training stopped, the last good checkpoint is kept"
    )]
    NonFinite {
        loss: f64,
        step: usize,
        micro: usize,
    },
    #[error("no training rows with at least one completion token")]
    NoData,
    #[error("invalid training config: {0}")]
    Config(String),
    #[error(transparent)]
    Model(#[from] didact_model::ModelError),
}

pub type Result<T> = std::result::Result<T, TrainError>;
