//! Weight sources for building a model: a seeded random initialiser and a safetensors file
//! (memory-mapped, checked against the expected HF shape of every tensor).

use crate::error::{ModelError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// Where weights come from when building a model: a random initialiser or a checkpoint.
/// `shape` is the HF (PyTorch) shape, e.g. `[out, in]` for a linear weight.
pub trait WeightSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
}

/// N(0, std) for matrices, ones for norm weights (`*norm.weight`), zeros for biases.
pub struct RandomInit {
    rng: ChaCha8Rng,
    std: f32,
}

impl RandomInit {
    pub fn new(seed: u64, std: f32) -> Self {
        RandomInit {
            rng: ChaCha8Rng::seed_from_u64(seed),
            std,
        }
    }

    /// Standard normal by Box-Muller (deterministic across platforms).
    fn normal(&mut self) -> f32 {
        let u1: f64 = self.rng.random::<f64>().max(1e-300);
        let u2: f64 = self.rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

impl WeightSource for RandomInit {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        if name.ends_with("norm.weight") {
            return Ok(vec![1.0; n]);
        }
        if name.ends_with(".bias") {
            return Ok(vec![0.0; n]);
        }
        Ok((0..n).map(|_| self.normal() * self.std).collect())
    }
}

/// Tensors from memory-mapped `.safetensors` files — one `model.safetensors`, or the shards a
/// `model.safetensors.index.json` names — converted to f32 (F32, F16 and BF16 accepted) one
/// tensor at a time, so loading never holds a second copy of the whole checkpoint.
pub struct SafetensorsSource {
    /// (path, mapping) per file.
    files: Vec<(PathBuf, memmap2::Mmap)>,
    /// Tensor name → index into `files` (sharded checkpoints only).
    index: Option<std::collections::HashMap<String, usize>>,
    /// The storage type of the tensors taken so far (the first one's; HF checkpoints store
    /// every floating tensor in one dtype).
    dtype: Option<WeightDtype>,
}

/// How a checkpoint stores its weights. didact computes in f32 (fp32 master weights); a
/// bf16/f16 checkpoint is widened exactly on load and can be written back in its own dtype
/// (`checkpoint::save_as`): a value that came from bf16 narrows back to the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    #[default]
    F32,
    BF16,
    F16,
}

impl WeightDtype {
    /// The name `config.json` gives it (`torch_dtype` / `dtype`).
    pub fn hf_name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "float32",
            WeightDtype::BF16 => "bfloat16",
            WeightDtype::F16 => "float16",
        }
    }

    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            WeightDtype::F32 => safetensors::Dtype::F32,
            WeightDtype::BF16 => safetensors::Dtype::BF16,
            WeightDtype::F16 => safetensors::Dtype::F16,
        }
    }

    /// Little-endian bytes of `values` in this dtype (bf16/f16: round to nearest even, as
    /// PyTorch's `.to(torch.bfloat16)` does).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            WeightDtype::F32 => values.iter().flat_map(|x| x.to_le_bytes()).collect(),
            WeightDtype::BF16 => values
                .iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
            WeightDtype::F16 => values
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
        }
    }
}

fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    // SAFETY: the mapping is read-only and lives as long as this source; a checkpoint being
    // rewritten underneath a reader is replaced by rename, never modified in place.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| ModelError::io(path, e))?;
    // Validate the header once up front so a truncated file is reported by name.
    safetensors::SafeTensors::deserialize(&map).map_err(|e| ModelError::Checkpoint {
        path: path.to_path_buf(),
        msg: format!("not a valid safetensors file: {e}"),
    })?;
    Ok(map)
}

impl SafetensorsSource {
    /// One `.safetensors` file.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(SafetensorsSource {
            files: vec![(path.to_path_buf(), map_file(path)?)],
            index: None,
            dtype: None,
        })
    }

    /// A checkpoint directory: `model.safetensors`, or the shards of
    /// `model.safetensors.index.json` (`{"weight_map": {tensor: file}}`).
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        if !index_path.is_file() {
            return Self::open(&dir.join("model.safetensors"));
        }
        let bad = |msg: String| ModelError::Checkpoint {
            path: index_path.clone(),
            msg,
        };
        let text =
            std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let map = v["weight_map"]
            .as_object()
            .ok_or_else(|| bad("missing `weight_map`".into()))?;
        let mut files: Vec<(PathBuf, memmap2::Mmap)> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for (name, file) in map {
            let file = file
                .as_str()
                .ok_or_else(|| bad(format!("`weight_map.{name}` is not a file name")))?;
            let path = dir.join(file);
            let k = match files.iter().position(|(p, _)| *p == path) {
                Some(k) => k,
                None => {
                    files.push((path.clone(), map_file(&path)?));
                    files.len() - 1
                }
            };
            index.insert(name.clone(), k);
        }
        Ok(SafetensorsSource {
            files,
            index: Some(index),
            dtype: None,
        })
    }

    fn file_of(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(name).copied(),
            None => Some(0),
        }
    }

    /// The storage dtype of the tensors taken so far (`F32` before any).
    pub fn dtype(&self) -> WeightDtype {
        self.dtype.unwrap_or_default()
    }

    /// Every tensor name (one file: its names; shards: the index's), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.index {
            Some(ix) => ix.keys().cloned().collect(),
            None => safetensors::SafeTensors::deserialize(&self.files[0].1)
                .map(|st| st.names().into_iter().map(String::from).collect())
                .unwrap_or_default(),
        };
        names.sort();
        names
    }

    /// Shape of a stored tensor, if present.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        let (_, map) = &self.files[self.file_of(name)?];
        let st = safetensors::SafeTensors::deserialize(map).ok()?;
        st.tensor(name).ok().map(|v| v.shape().to_vec())
    }
}

impl WeightSource for SafetensorsSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let k = self.file_of(name).ok_or_else(|| ModelError::Checkpoint {
            path: self.files.first().map(|f| f.0.clone()).unwrap_or_default(),
            msg: format!("missing tensor `{name}` (not in the shard index)"),
        })?;
        let (path, map) = &self.files[k];
        let path = path.clone();
        let st =
            safetensors::SafeTensors::deserialize(map).map_err(|e| ModelError::Checkpoint {
                path: path.clone(),
                msg: e.to_string(),
            })?;
        let view = st.tensor(name).map_err(|_| ModelError::Checkpoint {
            path: path.clone(),
            msg: format!("missing tensor `{name}`"),
        })?;
        if view.shape() != shape {
            return Err(ModelError::Checkpoint {
                path: path.clone(),
                msg: format!(
                    "tensor `{name}` has shape {:?}, expected {:?}",
                    view.shape(),
                    shape
                ),
            });
        }
        let data = view.data();
        let (dtype, out) = match view.dtype() {
            safetensors::Dtype::F32 => (
                WeightDtype::F32,
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            safetensors::Dtype::BF16 => (
                WeightDtype::BF16,
                data.chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            safetensors::Dtype::F16 => (
                WeightDtype::F16,
                data.chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            other => {
                return Err(ModelError::Checkpoint {
                    path: path.clone(),
                    msg: format!("tensor `{name}` has unsupported dtype {other:?}"),
                });
            }
        };
        self.dtype.get_or_insert(dtype);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `half` conversions: known f16 bit patterns, and bf16/f16 narrowing of a widened
    /// value gives back its bits (what makes a bf16 checkpoint round-trip exactly).
    #[test]
    fn half_precision_conversions_round_trip() {
        let f16 = |b: u16| half::f16::from_bits(b).to_f32();
        assert_eq!(f16(0x3c00), 1.0);
        assert_eq!(f16(0xc000), -2.0);
        assert_eq!(f16(0x0001), 5.960_464_5e-8);
        assert!(f16(0x7c00).is_infinite());
        for bits in (0u16..=u16::MAX).step_by(7) {
            let b = half::bf16::from_bits(bits);
            if b.is_nan() {
                continue;
            }
            let bytes = WeightDtype::BF16.encode(&[b.to_f32()]);
            assert_eq!(bytes, bits.to_le_bytes(), "bf16 {bits:#06x}");
            let h = half::f16::from_bits(bits);
            if !h.is_nan() {
                assert_eq!(WeightDtype::F16.encode(&[h.to_f32()]), bits.to_le_bytes());
            }
        }
        // round to nearest even, as torch's .to(torch.bfloat16): 1 + 2^-8 is a tie → 1.0
        assert_eq!(
            WeightDtype::BF16.encode(&[1.0 + 1.0 / 256.0]),
            0x3f80u16.to_le_bytes()
        );
        assert_eq!(
            WeightDtype::BF16.encode(&[1.0 + 3.0 / 256.0]),
            0x3f82u16.to_le_bytes()
        );
    }

    #[test]
    fn random_init_is_seeded() {
        let a = RandomInit::new(7, 0.02).take("x.weight", &[4, 4]).unwrap();
        let b = RandomInit::new(7, 0.02).take("x.weight", &[4, 4]).unwrap();
        let c = RandomInit::new(8, 0.02).take("x.weight", &[4, 4]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let norm = RandomInit::new(7, 0.02)
            .take("model.norm.weight", &[3])
            .unwrap();
        assert_eq!(norm, vec![1.0; 3]);
    }
}
