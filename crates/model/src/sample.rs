//! Batched autoregressive sampling with a KV cache: prompts are left-padded into a batch,
//! prefilled once, then decoded one token per step over the cache (no full-sequence
//! recompute). Temperature, top-k, top-p, max new tokens and a stop token; every row has its
//! own seeded RNG, so a sample depends on its seed, not on which batch it landed in.

use crate::any::Decoder;
use crate::error::{ModelError, Result};
use crate::llama::{KvCache, Positions};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Decoding parameters. `temperature == 0` means greedy.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1.0 = off).
    pub top_p: f32,
    pub max_new_tokens: usize,
    /// Generation of a row ends at this token (not included in the output).
    pub stop_token: Option<u32>,
}

impl SamplingParams {
    /// Refuse what would silently mean something else: a negative, NaN or infinite
    /// temperature, `top_p` outside (0, 1], a stop token outside the vocabulary.
    pub fn check(&self, vocab_size: usize) -> Result<()> {
        let bad = |what: String| Err(ModelError::Config(what));
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(format!(
                "temperature must be a finite number >= 0 (0 = greedy), got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if let Some(t) = self.stop_token
            && t as usize >= vocab_size
        {
            return bad(format!(
                "stop token {t} is outside the vocabulary (size {vocab_size})"
            ));
        }
        Ok(())
    }

    pub fn greedy(max_new_tokens: usize, stop_token: Option<u32>) -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens,
            stop_token,
        }
    }
}

/// One row's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// New tokens, without the stop token.
    pub tokens: Vec<u32>,
    /// True when the stop token ended the row (false: hit max_new_tokens or max_seq_len).
    pub stopped: bool,
}

/// Pick the next token from one row of logits.
pub fn pick_token(logits: &[f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> u32 {
    if p.temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    let inv_t = 1.0 / p.temperature as f64;
    let mut idx = ranked(logits, p.top_k);
    let max = logits[idx[0]] as f64;
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - max) * inv_t).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|x| *x /= total);
    if p.top_p < 1.0 {
        let mut acc = 0.0;
        let mut keep = probs.len();
        for (n, q) in probs.iter().enumerate() {
            acc += q;
            if acc >= p.top_p as f64 {
                keep = n + 1;
                break;
            }
        }
        idx.truncate(keep);
        probs.truncate(keep);
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|x| *x /= total);
    }
    let u: f64 = rng.random::<f64>();
    let mut acc = 0.0;
    for (n, q) in probs.iter().enumerate() {
        acc += q;
        if u < acc {
            return idx[n] as u32;
        }
    }
    idx[idx.len() - 1] as u32
}

/// Token ids by logit, descending, ties by id ascending (`f32::total_cmp`), cut to the first
/// `top_k` (0 = all). Each (logit, id) becomes one `u64` whose ascending order is exactly that
/// order, so the sort compares plain integers instead of chasing indices through a closure.
fn ranked(logits: &[f32], top_k: usize) -> Vec<usize> {
    let mut keys: Vec<u64> = logits
        .iter()
        .enumerate()
        .map(|(i, x)| ((descending_bits(*x) as u64) << 32) | i as u64)
        .collect();
    if top_k > 0 && top_k < keys.len() {
        keys.select_nth_unstable(top_k - 1);
        keys.truncate(top_k);
    }
    keys.sort_unstable();
    keys.into_iter()
        .map(|k| (k & 0xffff_ffff) as usize)
        .collect()
}

/// A `u32` that orders as `f32::total_cmp` reversed: total_cmp's sign-magnitude flip
/// (std's own), then the sign bit offset to compare unsigned, then inverted.
fn descending_bits(x: f32) -> u32 {
    let b = x.to_bits() as i32;
    let total = b ^ (((b >> 31) as u32) >> 1) as i32;
    !((total as u32) ^ 0x8000_0000)
}

fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best
}

/// Generate one batch. `seeds[i]` seeds row i. Prompts must be non-empty.
pub fn generate_batch<M: Decoder>(
    model: &M,
    max_seq_len: usize,
    prompts: &[Vec<u32>],
    seeds: &[u64],
    params: &SamplingParams,
    pad_id: u32,
    device: &Device,
) -> Result<Vec<Generation>> {
    let mut all = |_: usize, _: u32, _: &[f32]| true;
    generate_batch_observed(
        model,
        max_seq_len,
        prompts,
        seeds,
        params,
        pad_id,
        device,
        &mut all,
    )
}

/// [`generate_batch`], calling `observe(row, token, logits)` for every token a row keeps,
/// with that row's raw logits of the step (before temperature). `false` ends the row there
/// (marked `stopped`): a server streams tokens as they come and cuts at a stop string.
#[allow(clippy::too_many_arguments)]
pub fn generate_batch_observed<M: Decoder>(
    model: &M,
    max_seq_len: usize,
    prompts: &[Vec<u32>],
    seeds: &[u64],
    params: &SamplingParams,
    pad_id: u32,
    device: &Device,
    observe: &mut dyn FnMut(usize, u32, &[f32]) -> bool,
) -> Result<Vec<Generation>> {
    let b = prompts.len();
    if b == 0 {
        return Ok(vec![]);
    }
    let l = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
    if prompts.iter().any(|p| p.is_empty()) {
        return Err(ModelError::Config(
            "empty prompt in generation batch".into(),
        ));
    }
    crate::llama::check_len_raw(l, max_seq_len)?;
    let max_new = params.max_new_tokens.min(max_seq_len - l);
    let n_pad: Vec<usize> = prompts.iter().map(|p| l - p.len()).collect();
    let padded = n_pad.iter().any(|&n| n > 0);

    let mut ids = Vec::with_capacity(b * l);
    for p in prompts {
        ids.extend(std::iter::repeat_n(pad_id as i64, l - p.len()));
        ids.extend(p.iter().map(|&t| t as i64));
    }
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, l]), device);
    let prefill_pos = if padded {
        let mut pos = Vec::with_capacity(b * l);
        let mut mask = Vec::with_capacity(b * l * l);
        for &np in &n_pad {
            for j in 0..l {
                pos.push(j.saturating_sub(np) as i64);
            }
            for i in 0..l {
                for j in 0..l {
                    // Causal, and never attend to a pad key (a pad query sees only itself).
                    mask.push(j > i || (j < np && j != i));
                }
            }
        }
        Positions {
            ids: Some(Tensor::from_data(TensorData::new(pos, [b, l]), device)),
            start: 0,
            mask: Some(Tensor::<4, Bool>::from_data(
                TensorData::new(mask, [b, 1, l, l]),
                device,
            )),
        }
    } else {
        Positions::causal()
    };

    let mut cache = KvCache::new(model.n_layers());
    let hidden = model.hidden(tokens, &prefill_pos, Some(&mut cache)); // [B, L, D]
    let mut logits = last_logits(model, hidden)?; // B × V on the host
    let mut rngs: Vec<ChaCha8Rng> = seeds
        .iter()
        .map(|&s| ChaCha8Rng::seed_from_u64(s))
        .collect();
    let mut out: Vec<Generation> = (0..b)
        .map(|_| Generation {
            tokens: vec![],
            stopped: false,
        })
        .collect();
    let v = logits.len() / b;
    for step in 0..max_new {
        let mut next = Vec::with_capacity(b);
        for row in 0..b {
            if out[row].stopped {
                next.push(pad_id as i64);
                continue;
            }
            let row_logits = &logits[row * v..(row + 1) * v];
            let t = pick_token(row_logits, params, &mut rngs[row]);
            if Some(t) == params.stop_token {
                out[row].stopped = true;
                next.push(pad_id as i64);
            } else {
                out[row].tokens.push(t);
                next.push(t as i64);
                out[row].stopped = !observe(row, t, row_logits);
            }
        }
        if out.iter().all(|g| g.stopped) || step + 1 == max_new {
            break;
        }
        let t_k = l + step + 1;
        let pos = if padded {
            let pos: Vec<i64> = n_pad.iter().map(|&np| (l + step - np) as i64).collect();
            let mut mask = Vec::with_capacity(b * t_k);
            for &np in &n_pad {
                for j in 0..t_k {
                    mask.push(j < np);
                }
            }
            Positions {
                ids: Some(Tensor::from_data(TensorData::new(pos, [b, 1]), device)),
                start: 0,
                mask: Some(Tensor::<4, Bool>::from_data(
                    TensorData::new(mask, [b, 1, 1, t_k]),
                    device,
                )),
            }
        } else {
            Positions {
                ids: None,
                start: l + step,
                mask: None,
            }
        };
        let tok = Tensor::<2, Int>::from_data(TensorData::new(next, [b, 1]), device);
        let hidden = model.hidden(tok, &pos, Some(&mut cache));
        logits = last_logits(model, hidden)?;
    }
    Ok(out)
}

/// Logits of the last position of every row, copied to the host: `B × V` floats.
fn last_logits<M: Decoder>(model: &M, hidden: Tensor<3>) -> Result<Vec<f32>> {
    let t = hidden.dims()[1];
    let last = hidden.narrow(1, t - 1, 1); // [B, 1, D]
    model
        .logits(last)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Config(format!("reading logits: {e:?}")))
}

/// Generate for many prompts in batches of `batch_size` (prompts sorted by length to limit
/// padding; results returned in input order). `on_batch(n)` is called after each batch.
#[allow(clippy::too_many_arguments)]
pub fn generate_all<M: Decoder>(
    model: &M,
    max_seq_len: usize,
    prompts: &[Vec<u32>],
    seeds: &[u64],
    params: &SamplingParams,
    pad_id: u32,
    batch_size: usize,
    device: &Device,
    mut on_batch: impl FnMut(usize),
) -> Result<Vec<Generation>> {
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| (prompts[i].len(), i));
    let mut out: Vec<Option<Generation>> = vec![None; prompts.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let ps: Vec<Vec<u32>> = chunk.iter().map(|&i| prompts[i].clone()).collect();
        let ss: Vec<u64> = chunk.iter().map(|&i| seeds[i]).collect();
        let gens = generate_batch(model, max_seq_len, &ps, &ss, params, pad_id, device)?;
        for (&i, g) in chunk.iter().zip(gens) {
            out[i] = Some(g);
        }
        on_batch(chunk.len());
    }
    Ok(out
        .into_iter()
        .map(|g| g.expect("every prompt generated"))
        .collect())
}

/// Mix a run seed with a stream index into an independent per-row seed (SplitMix64).
pub fn row_seed(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32, k: usize, p: f32) -> SamplingParams {
        SamplingParams {
            temperature: t,
            top_k: k,
            top_p: p,
            max_new_tokens: 4,
            stop_token: None,
        }
    }

    #[test]
    fn nonsense_sampling_settings_are_refused() {
        let ok = params(1.0, 0, 0.9);
        assert!(ok.check(10).is_ok());
        for p in [
            params(-1.0, 0, 1.0),
            params(f32::NAN, 0, 1.0),
            params(1.0, 0, 2.0),
            params(1.0, 0, 0.0),
        ] {
            assert!(p.check(10).is_err(), "{p:?}");
        }
        let stop = SamplingParams {
            stop_token: Some(10),
            ..ok
        };
        assert!(
            stop.check(10)
                .unwrap_err()
                .to_string()
                .contains("outside the vocabulary")
        );
    }

    #[test]
    fn greedy_is_argmax() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(
            pick_token(&[0.1, 3.0, 2.0], &params(0.0, 0, 1.0), &mut rng),
            1
        );
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..50 {
            assert_eq!(
                pick_token(&[0.1, 3.0, 2.9], &params(5.0, 1, 1.0), &mut rng),
                1
            );
        }
    }

    #[test]
    fn top_p_excludes_the_tail() {
        // probs ≈ [0.665, 0.245, 0.090]: top_p 0.8 keeps the first two only.
        let logits = [2.0f32, 1.0, 0.0];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = [0usize; 3];
        for _ in 0..2000 {
            seen[pick_token(&logits, &params(1.0, 0, 0.8), &mut rng) as usize] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!(seen[1] > 400 && seen[0] > 1100, "{seen:?}");
    }

    #[test]
    fn temperature_sampling_matches_softmax() {
        let logits = [0.0f32, (3.0f32).ln()]; // probs 0.25 / 0.75
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let n = 20000;
        let ones = (0..n)
            .filter(|_| pick_token(&logits, &params(1.0, 0, 1.0), &mut rng) == 1)
            .count();
        let frac = ones as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.015, "{frac}");
    }

    #[test]
    fn ranked_is_the_comparator_sort() {
        // The order every seeded sample depends on: logit descending by total_cmp, ties by id.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let special = [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            1e-40,
        ];
        for n in [1usize, 2, 7, 512, 1000] {
            let logits: Vec<f32> = (0..n)
                .map(|i| match rng.random_range(0..4) {
                    0 => special[i % special.len()],
                    1 => (rng.random_range(0..5) as f32) * 0.5, // ties
                    _ => rng.random::<f32>() * 20.0 - 10.0,
                })
                .collect();
            let mut want: Vec<usize> = (0..n).collect();
            want.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
            for k in [0, 1, 3, n / 2, n, n + 1] {
                let cut = if k > 0 && k < n { k } else { n };
                assert_eq!(ranked(&logits, k), want[..cut], "n {n} k {k}");
            }
        }
    }

    #[test]
    fn row_seeds_differ_and_never_change() {
        assert_ne!(row_seed(1, 0, 0), row_seed(1, 0, 1));
        assert_ne!(row_seed(1, 0, 0), row_seed(1, 1, 0));
        // Every committed result depends on these exact values (SplitMix64 finaliser of
        // seed ^ stream·φ ^ index·c, recomputed in Python with 64-bit wrap-around).
        assert_eq!(row_seed(5, 2, 3), 0xe62c_ccf6_91e7_5b58);
        assert_eq!(row_seed(1, 1000, 0), 0xe718_94b1_b503_4fb7);
        assert_eq!(row_seed(42, 6000, 0), 0x00ea_7e0a_bf9b_5c08);
    }
}
