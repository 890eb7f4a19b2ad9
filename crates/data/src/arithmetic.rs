//! The built-in arithmetic world: problems like `417+86=` over chosen operators and digit
//! ranges, a verifier that knows the answer, a training stream, a fixed held-out set (disjoint
//! from training) and a harder out-of-distribution set with more digits (length
//! generalisation). Small enough that STaR/ReST-style self-improvement runs in minutes on a CPU.

use didact_core::Example;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// Seed of the held-out and OOD sets: fixed, so runs with different seeds share them.
pub const EVAL_SEED: u64 = 0x5eed_e7a1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "+" => Some(Op::Add),
            "-" => Some(Op::Sub),
            "*" => Some(Op::Mul),
            _ => None,
        }
    }

    fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
        }
    }
}

/// A world: operators and operand digit ranges (inclusive) for training and OOD.
#[derive(Debug, Clone, PartialEq)]
pub struct ArithmeticWorld {
    pub ops: Vec<Op>,
    pub digits: (u32, u32),
    pub ood_digits: (u32, u32),
}

/// Every character a prompt or answer can contain.
pub const ALPHABET: &str = "0123456789+-*=";

fn operand(rng: &mut ChaCha8Rng, digits: (u32, u32)) -> i64 {
    let d = rng.random_range(digits.0..=digits.1);
    let lo = if d <= 1 { 0 } else { 10i64.pow(d - 1) };
    let hi = 10i64.pow(d) - 1;
    rng.random_range(lo..=hi)
}

impl ArithmeticWorld {
    /// One problem as (prompt, answer).
    pub fn problem(&self, rng: &mut ChaCha8Rng, digits: (u32, u32)) -> (String, String) {
        let op = self.ops[rng.random_range(0..self.ops.len())];
        let a = operand(rng, digits);
        let b = operand(rng, digits);
        (
            format!("{a}{}{b}=", op.symbol()),
            op.apply(a, b).to_string(),
        )
    }

    /// Fixed held-out problems (training digits), distinct prompts.
    pub fn eval_set(&self, n: usize) -> Vec<Example> {
        self.distinct(n, self.digits, EVAL_SEED, &HashSet::new())
    }

    /// Fixed out-of-distribution problems (OOD digits), distinct prompts.
    pub fn ood_set(&self, n: usize) -> Vec<Example> {
        self.distinct(n, self.ood_digits, EVAL_SEED ^ 0x00d, &HashSet::new())
    }

    /// `n` training problems (seeded), never a held-out prompt. Prompts may repeat.
    pub fn train_set(&self, n: usize, seed: u64, held_out: &[Example]) -> Vec<Example> {
        let banned: HashSet<&str> = held_out.iter().map(|e| e.prompt.as_str()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(n);
        let mut tries = 0usize;
        while out.len() < n && tries < n * 100 + 1000 {
            tries += 1;
            let (p, a) = self.problem(&mut rng, self.digits);
            if !banned.contains(p.as_str()) {
                out.push(Example::real(p, a));
            }
        }
        out
    }

    /// Fresh prompts for generation in a round (seeded), never a held-out prompt.
    pub fn prompts(&self, n: usize, seed: u64, held_out: &[Example]) -> Vec<String> {
        self.train_set(n, seed, held_out)
            .into_iter()
            .map(|e| e.prompt)
            .collect()
    }

    fn distinct(
        &self,
        n: usize,
        digits: (u32, u32),
        seed: u64,
        banned: &HashSet<&str>,
    ) -> Vec<Example> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(n);
        let mut tries = 0usize;
        while out.len() < n && tries < n * 100 + 1000 {
            tries += 1;
            let (p, a) = self.problem(&mut rng, digits);
            if !banned.contains(p.as_str()) && seen.insert(p.clone()) {
                out.push(Example::real(p, a));
            }
        }
        out
    }
}

/// The verifier: is `completion` the correct answer to `prompt`? `None` when the prompt is
/// not an arithmetic problem. Surrounding whitespace in the completion is ignored; anything
/// else (extra characters, leading zeros) is wrong.
pub fn verify(prompt: &str, completion: &str) -> Option<bool> {
    let expected = solve(prompt)?;
    Some(completion.trim() == expected.to_string())
}

/// Parse `a<op>b=` and compute the answer.
pub fn solve(prompt: &str) -> Option<i64> {
    let body = prompt.strip_suffix('=')?;
    // The operator is the first non-digit after the first character (a may not be negative).
    let pos = body
        .char_indices()
        .skip(1)
        .find(|(_, c)| !c.is_ascii_digit())?
        .0;
    let (a, rest) = body.split_at(pos);
    let op = Op::parse(&rest[..1])?;
    let b = &rest[1..];
    if a.is_empty()
        || b.is_empty()
        || !a.bytes().all(|c| c.is_ascii_digit())
        || !b.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    Some(op.apply(a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> ArithmeticWorld {
        ArithmeticWorld {
            ops: vec![Op::Add, Op::Sub, Op::Mul],
            digits: (1, 3),
            ood_digits: (4, 4),
        }
    }

    #[test]
    fn verifier_knows_the_answer() {
        assert_eq!(verify("417+86=", "503"), Some(true));
        assert_eq!(verify("417+86=", " 503 "), Some(true));
        assert_eq!(verify("417+86=", "502"), Some(false));
        assert_eq!(verify("417+86=", "0503"), Some(false));
        assert_eq!(verify("3-17=", "-14"), Some(true));
        assert_eq!(verify("12*12=", "144"), Some(true));
        assert_eq!(verify("hello", "1"), None);
        assert_eq!(verify("1+=", "1"), None);
    }

    #[test]
    fn generated_problems_verify() {
        let w = world();
        for e in w.train_set(500, 1, &[]) {
            assert_eq!(verify(&e.prompt, &e.completion), Some(true), "{e:?}");
            assert!(
                e.prompt
                    .chars()
                    .chain(e.completion.chars())
                    .all(|c| ALPHABET.contains(c))
            );
        }
    }

    #[test]
    fn sets_are_fixed_disjoint_and_ood_is_longer() {
        let w = world();
        let eval = w.eval_set(200);
        assert_eq!(eval, w.eval_set(200));
        assert_eq!(eval.len(), 200);
        let train = w.train_set(5000, 9, &eval);
        let held: HashSet<_> = eval.iter().map(|e| &e.prompt).collect();
        assert!(train.iter().all(|e| !held.contains(&e.prompt)));
        assert_ne!(w.train_set(10, 1, &eval), w.train_set(10, 2, &eval));
        let ood = w.ood_set(50);
        assert!(ood.iter().all(|e| e.prompt.len() >= 10), "4-digit operands");
    }
}
