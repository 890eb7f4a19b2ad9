//! Tokenized rows and padded batches for completion-only language-model losses.

use didact_model::burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use didact_model::llama::Positions;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// One tokenized training row: `ids = prompt ++ completion ++ [eos]`; the loss is taken on
/// the tokens at positions `>= n_prompt` (the completion and its stop token).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub ids: Vec<u32>,
    pub n_prompt: usize,
}

impl TokenRow {
    /// Number of tokens that carry loss.
    pub fn n_target(&self) -> usize {
        self.ids.len().saturating_sub(self.n_prompt.max(1))
    }

    /// Tokens that carry loss once the row is truncated to `max_len` (what `make_batch`
    /// masks in).
    pub fn n_target_in(&self, max_len: usize) -> usize {
        self.ids
            .len()
            .min(max_len)
            .saturating_sub(self.n_prompt.max(1))
    }
}

/// A right-padded batch: `inputs = ids[..T]`, `targets = ids[1..=T]`, `mask = 1` where the
/// target is a completion token.
pub struct Batch {
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
    pub mask: Tensor<2>,
    /// Number of loss-bearing tokens.
    pub n_target: usize,
    /// Number of non-pad input tokens (throughput accounting).
    pub n_tokens: usize,
    /// A packed batch's per-row position ids `[B, T]` and block-diagonal causal mask
    /// `[B, 1, T, T]` (`true` = may not attend); `None` = plain causal from position 0.
    pub packed: Option<(Tensor<2, Int>, Tensor<4, Bool>)>,
}

impl Batch {
    /// How the model sees the batch's positions.
    pub fn positions(&self) -> Positions {
        match &self.packed {
            None => Positions::causal(),
            Some((ids, mask)) => Positions {
                ids: Some(ids.clone()),
                start: 0,
                mask: Some(mask.clone()),
            },
        }
    }
}

/// Input positions `T` of a batch of `rows` truncated to `max_len` (the longest row minus
/// one, at least 1): what a teacher's view of the batch must cover.
pub fn positions(rows: &[&TokenRow], max_len: usize) -> usize {
    rows.iter()
        .map(|r| r.ids.len().min(max_len))
        .max()
        .unwrap_or(2)
        .max(2)
        - 1
}

/// Build a batch from rows, truncating each to `max_len` tokens.
pub fn make_batch(rows: &[&TokenRow], max_len: usize, pad_id: u32, device: &Device) -> Batch {
    let lens: Vec<usize> = rows.iter().map(|r| r.ids.len().min(max_len)).collect();
    let t = positions(rows, max_len);
    let b = rows.len();
    let mut inputs = vec![pad_id as i64; b * t];
    let mut targets = vec![pad_id as i64; b * t];
    let mut mask = vec![0f32; b * t];
    let mut n_target = 0;
    let mut n_tokens = 0;
    for (i, (row, &len)) in rows.iter().zip(&lens).enumerate() {
        for j in 0..len.saturating_sub(1) {
            inputs[i * t + j] = row.ids[j] as i64;
            targets[i * t + j] = row.ids[j + 1] as i64;
            if j + 1 >= row.n_prompt {
                mask[i * t + j] = 1.0;
                n_target += 1;
            }
        }
        n_tokens += len.saturating_sub(1);
    }
    Batch {
        inputs: Tensor::from_data(TensorData::new(inputs, [b, t]), device),
        targets: Tensor::from_data(TensorData::new(targets, [b, t]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, t]), device),
        n_target,
        n_tokens,
        packed: None,
    }
}

/// Pack rows (each truncated to `max_len` tokens) into as few sequences as first-fit-
/// decreasing finds, each as long as the batch's longest row (what `make_batch` pads every row
/// to — so a packed batch never has more positions, nor longer attention rows, than the
/// padded one): each row keeps its own positions (0, 1, …)
/// and attends only to itself (a block-diagonal causal mask), so every row's loss is what it
/// is alone — with less padding than `make_batch`. A padding position attends to itself only
/// (a fully masked row would be NaN).
pub fn make_packed_batch(
    rows: &[&TokenRow],
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Batch {
    let seg = |r: &TokenRow| r.ids.len().min(max_len).saturating_sub(1);
    let cap = rows.iter().map(|r| seg(r)).max().unwrap_or(1).max(1);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seg(rows[i])));
    // bins[k] = (used, [row index…])
    let mut bins: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in order {
        let n = seg(rows[i]);
        match bins.iter_mut().find(|(used, _)| used + n <= cap) {
            Some(bin) => {
                bin.0 += n;
                bin.1.push(i);
            }
            None => bins.push((n, vec![i])),
        }
    }
    let t = bins.iter().map(|(u, _)| *u).max().unwrap_or(1).max(1);
    let b = bins.len().max(1);
    let mut inputs = vec![pad_id as i64; b * t];
    let mut targets = vec![pad_id as i64; b * t];
    let mut mask = vec![0f32; b * t];
    let mut pos = vec![0i64; b * t];
    let mut segment = vec![usize::MAX; b * t];
    let (mut n_target, mut n_tokens) = (0, 0);
    for (k, (_, members)) in bins.iter().enumerate() {
        let mut at = 0;
        for &i in members {
            let row = rows[i];
            let n = seg(row);
            for j in 0..n {
                let x = k * t + at + j;
                inputs[x] = row.ids[j] as i64;
                targets[x] = row.ids[j + 1] as i64;
                pos[x] = j as i64;
                segment[x] = i;
                if j + 1 >= row.n_prompt {
                    mask[x] = 1.0;
                    n_target += 1;
                }
            }
            at += n;
            n_tokens += n;
        }
    }
    let mut blocked = vec![true; b * t * t];
    for k in 0..b {
        for q in 0..t {
            let sq = segment[k * t + q];
            for key in 0..t {
                let allowed = if sq == usize::MAX {
                    key == q
                } else {
                    key <= q && segment[k * t + key] == sq
                };
                blocked[(k * t + q) * t + key] = !allowed;
            }
        }
    }
    Batch {
        inputs: Tensor::from_data(TensorData::new(inputs, [b, t]), device),
        targets: Tensor::from_data(TensorData::new(targets, [b, t]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, t]), device),
        n_target,
        n_tokens,
        packed: Some((
            Tensor::from_data(TensorData::new(pos, [b, t]), device),
            Tensor::from_data(TensorData::new(blocked, [b, 1, t, t]), device),
        )),
    }
}

/// Endless seeded epochs over `0..n`: each epoch is a fresh shuffle, drawn one index at a
/// time (the data order of every trainer).
pub struct EpochSampler {
    n: usize,
    order: Vec<usize>,
    rng: ChaCha8Rng,
}

impl EpochSampler {
    pub fn new(n: usize, seed: u64) -> Self {
        EpochSampler {
            n,
            order: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn next_index(&mut self) -> usize {
        if self.order.is_empty() {
            self.order = (0..self.n).collect();
            self.order.shuffle(&mut self.rng);
        }
        self.order.pop().expect("n > 0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_covers_completion_only() {
        let device = Device::flex();
        let a = TokenRow {
            ids: vec![5, 6, 7, 8, 1],
            n_prompt: 3,
        };
        let b = TokenRow {
            ids: vec![5, 9, 1],
            n_prompt: 2,
        };
        let batch = make_batch(&[&a, &b], 64, 0, &device);
        let mask: Vec<f32> = batch.mask.into_data().try_to_vec().unwrap();
        // row a: targets 6,7,8,1 → loss on 8,1 (positions >= 3); row b: targets 9,1 → loss on 1
        assert_eq!(mask, vec![0., 0., 1., 1., 0., 1., 0., 0.]);
        assert_eq!(batch.n_target, 3);
        assert_eq!(a.n_target(), 2);
        assert_eq!(a.n_target_in(64) + b.n_target_in(64), batch.n_target);
        assert_eq!(a.n_target_in(4), 1, "truncated to 5,6,7,8: loss on 8 only");
        let tg: Vec<i32> = batch.targets.into_data().try_to_vec().unwrap();
        assert_eq!(tg, vec![6, 7, 8, 1, 9, 1, 0, 0]);
    }

    #[test]
    fn packing_fills_sequences_and_keeps_each_rows_positions() {
        let device = Device::flex();
        let row = |n: usize, p: usize| TokenRow {
            ids: (0..n as u32).map(|x| x + 3).collect(),
            n_prompt: p,
        };
        let (a, b, c) = (row(6, 2), row(4, 1), row(3, 1)); // segments 5, 3, 2
        let batch = make_packed_batch(&[&a, &b, &c], 64, 0, &device);
        // capacity 5 (the longest row): a alone, then b + c (3 + 2)
        assert_eq!(batch.inputs.dims(), [2, 5]);
        assert_eq!(batch.n_tokens, 10);
        assert_eq!(
            batch.n_target,
            make_batch(&[&a, &b, &c], 6, 0, &device).n_target
        );
        let (pos, blocked) = batch.packed.unwrap();
        let pos: Vec<i64> = pos.into_data().convert::<i64>().try_to_vec().unwrap();
        assert_eq!(pos, vec![0, 1, 2, 3, 4, 0, 1, 2, 0, 1]);
        let m: Vec<bool> = blocked.into_data().try_to_vec().unwrap();
        let allowed = |k: usize, q: usize, key: usize| !m[(k * 5 + q) * 5 + key];
        assert!(
            allowed(1, 4, 3) && !allowed(1, 4, 2),
            "c sees itself, not b"
        );
        assert!(allowed(1, 2, 0) && !allowed(1, 1, 2), "b is causal");
    }
}
