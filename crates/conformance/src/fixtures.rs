//! Reading ../shared/fixtures: the folder itself (found beside the checkout or given), JSON
//! expectations and f32 tensors of `expected_logits.safetensors`.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The fixtures folder beside the checkout (`../shared/fixtures` from the workspace root), if
/// it is there. `DIDACT_FIXTURES` overrides it.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DIDACT_FIXTURES") {
        return Some(PathBuf::from(p));
    }
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
        PathBuf::from("../shared/fixtures"),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("README.md").exists())
}

pub fn json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as u32)
                .collect()
        })
        .unwrap_or_default()
}

pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

/// One little-endian f32 tensor of a safetensors file, flattened.
pub fn f32_tensor(bytes: &[u8], name: &str) -> Result<Vec<f32>, String> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
    Ok(t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Largest absolute difference of two equally long slices (∞ when the lengths differ or a
/// value is NaN, so a broken kernel never passes).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        )
}
