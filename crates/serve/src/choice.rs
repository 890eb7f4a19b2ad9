//! One completion as it is generated: its tokens, the text decoded so far, the cut at the
//! first stop string, the part of the text that is safe to send (never a piece that might
//! still become a stop string, never half a UTF-8 character) and each token's log-probability
//! with its most likely alternatives. Log-probabilities are the model's own (log-softmax of
//! the raw logits, temperature 1), as vLLM returns by default — what a distillation teacher
//! must give, whatever temperature the sample was drawn at.

use didact_model::Tok;

/// A token's log-probability and the `k` most likely tokens of that step.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f32,
    /// Most likely first.
    pub top: Vec<(u32, f32)>,
    /// Where the token's text starts in the completion, in characters.
    pub offset: usize,
}

/// A completion in the making.
#[derive(Debug, Default)]
pub struct Choice {
    pub index: usize,
    pub tokens: Vec<u32>,
    /// The decoded completion (cut at a stop string once one appears).
    pub text: String,
    /// Bytes of `text` already sent.
    sent: usize,
    pub logprobs: Vec<TokenLogprob>,
    /// Log-probabilities already sent.
    lps_sent: usize,
    /// A stop string ended it.
    pub hit_stop: bool,
    /// Set once it is complete: `"stop"` or `"length"`.
    pub finish: Option<&'static str>,
}

/// Log-softmax of `logits` at `token` and the `k` most likely tokens.
pub fn logprob_of(logits: &[f32], token: u32, k: usize) -> (f32, Vec<(u32, f32)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max as f64
        + logits
            .iter()
            .map(|&x| ((x - max) as f64).exp())
            .sum::<f64>()
            .ln();
    let lp = |i: usize| (logits[i] as f64 - lse) as f32;
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let k = k.min(idx.len());
    let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    if k > 0 && k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by_logit);
    }
    idx.truncate(k);
    idx.sort_by(by_logit);
    (
        lp(token as usize),
        idx.into_iter().map(|i| (i as u32, lp(i))).collect(),
    )
}

impl Choice {
    pub fn new(index: usize) -> Self {
        Choice {
            index,
            ..Choice::default()
        }
    }

    /// Add a token; `false` once a stop string has appeared (the text is cut before it).
    pub fn push(
        &mut self,
        tok: &Tok,
        token: u32,
        logits: &[f32],
        top_k: Option<usize>,
        stops: &[String],
    ) -> bool {
        if let Some(k) = top_k {
            let (logprob, top) = logprob_of(logits, token, k);
            self.logprobs.push(TokenLogprob {
                token,
                logprob,
                top,
                offset: self.text.chars().count(),
            });
        }
        self.tokens.push(token);
        self.text = tok.decode(&self.tokens).unwrap_or_default();
        if let Some(cut) = stops
            .iter()
            .filter_map(|s| self.text.find(s.as_str()))
            .min()
        {
            self.text.truncate(cut);
            self.hit_stop = true;
        }
        !self.hit_stop
    }

    /// End of `text` that may be sent now: not a prefix of a stop string still being
    /// written, not an incomplete character (decoded as U+FFFD).
    fn safe_end(&self, stops: &[String], done: bool) -> usize {
        let t = &self.text;
        if done {
            return t.len();
        }
        let mut end = t.len();
        for s in stops {
            for (i, _) in s.char_indices().skip(1) {
                if t.ends_with(&s[..i]) {
                    end = end.min(t.len() - i);
                }
            }
        }
        if t[..end].ends_with('\u{FFFD}') {
            end -= '\u{FFFD}'.len_utf8();
        }
        end
    }

    /// The text and log-probabilities not sent yet (all of them once `done`).
    pub fn take(&mut self, stops: &[String], done: bool) -> (String, Vec<TokenLogprob>) {
        let end = self.safe_end(stops, done);
        let text = if end > self.sent && self.text.is_char_boundary(self.sent) {
            self.text[self.sent..end].to_string()
        } else {
            String::new()
        };
        self.sent = self.sent.max(end);
        let lps = self.logprobs[self.lps_sent..].to_vec();
        self.lps_sent = self.logprobs.len();
        (text, lps)
    }

    /// Mark it complete: `"stop"` for the end-of-sequence token (`stopped`) or a stop
    /// string, else `"length"`.
    pub fn end(&mut self, stopped: bool) -> &'static str {
        let reason = if stopped || self.hit_stop {
            "stop"
        } else {
            "length"
        };
        self.finish = Some(reason);
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_a_log_softmax_and_top_k_is_ordered() {
        let logits = [1.0f32, 3.0, 2.0, 3.0];
        let (lp, top) = logprob_of(&logits, 2, 3);
        let z: f64 = logits.iter().map(|&x| (x as f64).exp()).sum();
        assert!((lp as f64 - (2.0 - z.ln())).abs() < 1e-6);
        // Ties go to the lower id, like argmax.
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 3, 2]);
        let total: f64 = (0..4)
            .map(|t| (logprob_of(&logits, t, 0).0 as f64).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_possible_stop_string_is_held_back_until_it_is_decided() {
        let mut c = Choice::new(0);
        let stops = vec!["END".to_string()];
        c.text = "abc E".into();
        assert_eq!(c.take(&stops, false).0, "abc ");
        c.text = "abc EN".into();
        assert_eq!(c.take(&stops, false).0, "");
        c.text = "abc ENx".into();
        assert_eq!(c.take(&stops, false).0, "ENx");
        c.text = "abc ENx\u{FFFD}".into();
        assert_eq!(c.take(&stops, false).0, "");
        assert_eq!(c.take(&stops, true).0, "\u{FFFD}");
    }
}
