//! `journal.jsonl`: one line per finished stage, appended (and fsynced) only after the stage's
//! output is in place. A resumed run skips every stage listed here and reads its output back.

use crate::error::{Result, io};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub round: u32,
    pub stage: String,
    /// Output path relative to the run directory.
    pub output: String,
    /// Wall time of the stage when it ran.
    pub seconds: f64,
}

pub struct Journal {
    path: PathBuf,
    entries: Vec<Entry>,
}

impl Journal {
    /// Open (or start) the journal of a run directory.
    pub fn open(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join("journal.jsonl");
        let mut entries = Vec::new();
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            for line in text.lines() {
                // A torn last line (killed mid-append) is ignored: that stage simply reruns.
                if let Ok(e) = serde_json::from_str::<Entry>(line) {
                    entries.push(e);
                }
            }
        }
        Ok(Journal { path, entries })
    }

    pub fn done(&self, round: u32, stage: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.round == round && e.stage == stage)
    }

    pub fn record(&mut self, entry: Entry) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        let line = serde_json::to_string(&entry).expect("entry serializes");
        f.write_all(format!("{line}\n").as_bytes())
            .map_err(io(&self.path))?;
        f.sync_all().map_err(io(&self.path))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Total recorded seconds of a round's stages.
    pub fn round_seconds(&self, round: u32) -> f64 {
        self.entries
            .iter()
            .filter(|e| e.round == round)
            .map(|e| e.seconds)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
