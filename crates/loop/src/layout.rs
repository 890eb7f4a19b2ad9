//! Where things live in a run directory (the layout in ARCHITECTURE.md): one function per
//! path, so no stage spells a file name another stage reads.

use std::path::{Path, PathBuf};

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rounds/round-XX/`.
    pub fn round(&self, r: u32) -> PathBuf {
        self.root.join("rounds").join(format!("round-{r:02}"))
    }

    /// A file of round `r`.
    pub fn file(&self, r: u32, name: &str) -> PathBuf {
        self.round(r).join(name)
    }

    /// Round `r`'s trained model (HF layout).
    pub fn model(&self, r: u32) -> PathBuf {
        self.round(r).join("model")
    }

    /// Round `r`'s directory of peer `p` ≥ 1 (`[run] peers`): `peers/p<p>/`.
    pub fn peer(&self, r: u32, p: u32) -> PathBuf {
        self.round(r).join("peers").join(format!("p{p}"))
    }

    /// Round `r`'s trained model of peer `p` (peer 0's is `model`).
    pub fn model_of(&self, r: u32, p: u32) -> PathBuf {
        match p {
            0 => self.model(r),
            _ => self.peer(r, p).join("model"),
        }
    }

    /// Round `r`'s training log of peer `p`.
    pub fn train_log(&self, r: u32, p: u32) -> PathBuf {
        match p {
            0 => self.file(r, "train_log.json"),
            _ => self.peer(r, p).join("train_log.json"),
        }
    }

    /// Round `r`'s external-trainer work directory (data, start checkpoint, output, log).
    pub fn external(&self, r: u32) -> PathBuf {
        self.round(r).join("external")
    }

    /// Round 0's distillation teacher.
    pub fn teacher(&self) -> PathBuf {
        self.round(0).join("teacher")
    }

    /// Round 0's reward model (`score.weight` beside the backbone).
    pub fn reward_model(&self) -> PathBuf {
        self.round(0).join("rm")
    }

    /// The endpoint response cache of a generator (`endpoint`) or judge (`judge`).
    pub fn cache(&self, who: &str) -> PathBuf {
        self.root.join("cache").join(who)
    }

    /// `path` relative to the run directory, as the journal records it.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}
