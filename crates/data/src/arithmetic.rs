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
    /// Completions are worked steps then `#### answer` (STaR / GSM8K style) instead of the
    /// bare answer.
    pub rationales: bool,
    /// Addition with operands and answer written least-significant digit first
    /// (`417+86=` is `714+68=` with answer `305`).
    pub reversed: bool,
}

/// Every character a prompt or answer can contain.
pub const ALPHABET: &str = "0123456789+-*=";

/// Every character of a worked-steps completion.
pub const RATIONALE_ALPHABET: &str = "0123456789+-*=,# ";

/// The GSM8K answer marker: the final answer follows the last one.
pub const ANSWER_MARKER: &str = "####";

/// Worked steps for `a op b`, then ` #### answer`. Addition is worked column by column from
/// the units with the carry written into each step (`7+6+0=13,1+8+1=10,4+0+1=5 #### 503`), the
/// scratchpad of Nye et al. 2021; subtraction and multiplication restate the problem.
pub fn rationale(a: i64, op: Op, b: i64) -> String {
    let answer = op.apply(a, b);
    let steps = match op {
        Op::Add => {
            let (mut x, mut y, mut carry) = (a, b, 0);
            let mut cols = Vec::new();
            loop {
                let s = x % 10 + y % 10 + carry;
                cols.push(format!("{}+{}+{carry}={s}", x % 10, y % 10));
                carry = s / 10;
                x /= 10;
                y /= 10;
                if x == 0 && y == 0 {
                    break;
                }
            }
            cols.join(",")
        }
        Op::Sub | Op::Mul => format!("{a}{}{b}={answer}", op.symbol()),
    };
    format!("{steps} {ANSWER_MARKER} {answer}")
}

fn operand(rng: &mut ChaCha8Rng, digits: (u32, u32)) -> i64 {
    let d = rng.random_range(digits.0..=digits.1);
    let lo = if d <= 1 { 0 } else { 10i64.pow(d - 1) };
    let hi = 10i64.pow(d) - 1;
    rng.random_range(lo..=hi)
}

impl ArithmeticWorld {
    /// One problem as (prompt, completion): the answer, or worked steps and the answer.
    pub fn problem(&self, rng: &mut ChaCha8Rng, digits: (u32, u32)) -> (String, String) {
        let op = self.ops[rng.random_range(0..self.ops.len())];
        let a = operand(rng, digits);
        let b = operand(rng, digits);
        if self.reversed {
            let r = |x: i64| reverse(&x.to_string());
            return (format!("{}+{}=", r(a), r(b)), r(a + b));
        }
        let completion = if self.rationales {
            rationale(a, op, b)
        } else {
            op.apply(a, b).to_string()
        };
        (format!("{a}{}{b}=", op.symbol()), completion)
    }

    /// The characters of prompts and completions.
    pub fn alphabet(&self) -> &'static str {
        if self.rationales {
            RATIONALE_ALPHABET
        } else {
            ALPHABET
        }
    }

    /// Fixed held-out problems (training digits), distinct prompts.
    pub fn eval_set(&self, n: usize) -> Vec<Example> {
        self.distinct(n, self.digits, EVAL_SEED, &HashSet::new())
    }

    /// Fixed out-of-distribution problems (OOD digits), distinct prompts.
    pub fn ood_set(&self, n: usize) -> Vec<Example> {
        self.distinct(n, self.ood_digits, EVAL_SEED ^ 0x00d, &HashSet::new())
    }

    /// Fixed problems whose operands have exactly `digits` digits (accuracy by length),
    /// distinct prompts, none of them a held-out one.
    pub fn length_set(&self, digits: u32, n: usize, held_out: &[Example]) -> Vec<Example> {
        let banned: HashSet<&str> = held_out.iter().map(|e| e.prompt.as_str()).collect();
        self.distinct(
            n,
            (digits, digits),
            EVAL_SEED ^ (0x1e00 + digits as u64),
            &banned,
        )
    }

    /// `n` training problems (seeded), never a held-out prompt. Prompts may repeat.
    pub fn train_set(&self, n: usize, seed: u64, held_out: &[Example]) -> Vec<Example> {
        self.sample(n, seed, self.digits, held_out)
    }

    /// `n` seeded problems with operands in `digits`, never a held-out prompt; may repeat.
    fn sample(
        &self,
        n: usize,
        seed: u64,
        digits: (u32, u32),
        held_out: &[Example],
    ) -> Vec<Example> {
        let banned: HashSet<&str> = held_out.iter().map(|e| e.prompt.as_str()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(n);
        let mut tries = 0usize;
        while out.len() < n && tries < n * 100 + 1000 {
            tries += 1;
            let (p, a) = self.problem(&mut rng, digits);
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

    /// `n` fresh prompts (seeded) whose operands have exactly `digits` digits — harder
    /// problems than the training ones for self-improvement rounds; never a held-out prompt.
    pub fn prompts_with_digits(
        &self,
        n: usize,
        seed: u64,
        digits: u32,
        held_out: &[Example],
    ) -> Vec<String> {
        self.sample(n, seed, (digits, digits), held_out)
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
/// not an arithmetic problem. A completion with `####` is judged by what follows the last one
/// (the steps before it are not checked, as in STaR); surrounding whitespace is ignored;
/// anything else (extra characters, leading zeros) is wrong.
pub fn verify(prompt: &str, completion: &str) -> Option<bool> {
    let expected = solve(prompt)?;
    let answer = match completion.rfind(ANSWER_MARKER) {
        Some(i) => &completion[i + ANSWER_MARKER.len()..],
        None => completion,
    };
    Some(answer.trim() == expected.to_string())
}

/// The verifier of the reversed world: `prompt` is `a+b=` with both operands written
/// least-significant digit first, and `completion` must be the sum written that way
/// (`714+68=` → `305`). A trailing zero in the reversed answer (a leading zero of the sum)
/// is wrong, as in `verify`.
pub fn verify_reversed(prompt: &str, completion: &str) -> Option<bool> {
    let body = prompt.strip_suffix('=')?;
    let (a, b) = body.split_once('+')?;
    let plain = format!("{}+{}=", reverse(a), reverse(b));
    verify(&plain, &reverse(completion.trim()))
}

/// Lee et al. 2025's length filter for sums: could `answer` be the sum of `prompt`'s operands
/// by its length alone? A sum has as many digits as the longer operand, or one more (in
/// either digit order). `None` when the prompt is not a sum.
pub fn plausible_sum_length(prompt: &str, answer: &str) -> Option<bool> {
    let (a, b) = prompt.strip_suffix('=')?.split_once('+')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(a) || !all_digits(b) {
        return None;
    }
    let n = a.len().max(b.len());
    let got = answer.trim();
    Some(all_digits(got) && (got.len() == n || got.len() == n + 1))
}

/// [`plausible_sum_length`], and a sum one digit longer than the longer operand carries a 1
/// as its most significant digit (the last when `reversed`): operands below 10ⁿ add to below
/// 2·10ⁿ. `None` when the prompt is not a sum.
pub fn plausible_sum_shape(prompt: &str, answer: &str, reversed: bool) -> Option<bool> {
    let ok = plausible_sum_length(prompt, answer)?;
    let (a, b) = prompt.strip_suffix('=')?.split_once('+')?;
    let got = answer.trim();
    if !ok || got.len() == a.len().max(b.len()) {
        return Some(ok);
    }
    let top = match reversed {
        true => got.bytes().last(),
        false => got.bytes().next(),
    };
    Some(top == Some(b'1'))
}

/// The low-digit sub-problem of a reversed sum: both operands cut to their first (lowest)
/// n − 1 digits, n the longer operand's length, and that k = n − 1. The first k digits of the
/// sum are the first k digits of the sub-problem's sum. `None` when the prompt is not a sum of
/// digits or n < 2.
pub fn low_digits_problem(prompt: &str) -> Option<(String, usize)> {
    let (a, b) = prompt.strip_suffix('=')?.split_once('+')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let k = a.len().max(b.len()).checked_sub(1).filter(|&k| k >= 1)?;
    if !digits(a) || !digits(b) {
        return None;
    }
    let cut = |s: &str| s[..s.len().min(k)].to_string();
    Some((format!("{}+{}=", cut(a), cut(b)), k))
}

/// Do `answer` and the sub-problem's `low` answer agree on their first `k` digits? A short
/// `low` is read with zeros after it (its sum's leading zeros: `0123+0005=` is 128, `821`).
pub fn low_digits_agree(answer: &str, low: &str, k: usize) -> bool {
    let (a, l) = (answer.trim(), format!("{:0<k$}", low.trim()));
    a.len() >= k && a.as_bytes()[..k] == l.as_bytes()[..k]
}

/// The high-digit sub-problem of a reversed sum: both operands without their units digit (the
/// first character). `a + b = 10 · (a' + b') + (a₀ + b₀)`, so the sum's digits after its units
/// digit are the sub-problem's sum, plus one when the units carry. `None` when the prompt is
/// not a sum of digits or an operand has one digit.
pub fn high_digits_problem(prompt: &str) -> Option<String> {
    let (a, b) = prompt.strip_suffix('=')?.split_once('+')?;
    let digits = |s: &str| s.len() >= 2 && s.bytes().all(|c| c.is_ascii_digit());
    (digits(a) && digits(b)).then(|| format!("{}+{}=", &a[1..], &b[1..]))
}

/// Do `answer`'s digits after its units digit (reversed) equal the high-digit sub-problem's
/// answer `high`, or `high` plus one (the units' carry)? Which of the two is right is the
/// low digits' business (`low_digits_agree` checks the tens digit); a wrong top digit or a
/// wrong final carry fails both.
pub fn high_digits_agree(answer: &str, high: &str) -> bool {
    let (a, h) = (answer.trim().as_bytes(), high.trim());
    let plus_one = || {
        let mut d: Vec<u8> = h.bytes().collect();
        for c in d.iter_mut() {
            if *c == b'9' {
                *c = b'0';
            } else {
                *c += 1;
                return d;
            }
        }
        d.push(b'1');
        d
    };
    !h.is_empty()
        && h.bytes().all(|c| c.is_ascii_digit())
        && a.len() >= 2
        && (&a[1..] == h.as_bytes() || a[1..] == plus_one())
}

/// The characters of `s` in reverse order.
fn reverse(s: &str) -> String {
    s.chars().rev().collect()
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
            rationales: false,
            reversed: false,
        }
    }

    #[test]
    fn worked_steps_carry_column_by_column_and_verify() {
        assert_eq!(
            rationale(417, Op::Add, 86),
            "7+6+0=13,1+8+1=10,4+0+1=5 #### 503"
        );
        assert_eq!(rationale(5, Op::Add, 5), "5+5+0=10 #### 10");
        assert_eq!(rationale(0, Op::Add, 0), "0+0+0=0 #### 0");
        assert_eq!(rationale(12, Op::Mul, 3), "12*3=36 #### 36");
        assert_eq!(verify("417+86=", "7+6+0=13 #### 503"), Some(true));
        assert_eq!(verify("417+86=", "#### 502"), Some(false));
        assert_eq!(verify("417+86=", "503 #### 5 #### 503"), Some(true));
        let w = ArithmeticWorld {
            rationales: true,
            ..world()
        };
        for e in w.train_set(300, 3, &[]) {
            assert_eq!(verify(&e.prompt, &e.completion), Some(true), "{e:?}");
            assert!(e.completion.chars().all(|c| RATIONALE_ALPHABET.contains(c)));
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

    #[test]
    fn harder_prompts_have_operands_of_exactly_the_asked_digits_and_no_held_out_one() {
        let w = ArithmeticWorld {
            ops: vec![Op::Add],
            ..world()
        };
        let held_out = w.eval_set(50);
        let p = w.prompts_with_digits(200, 3, 7, &held_out);
        assert_eq!(p.len(), 200);
        for q in &p {
            let (a, b) = q.trim_end_matches('=').split_once('+').unwrap();
            assert_eq!((a.len(), b.len()), (7, 7), "{q}");
        }
        assert_eq!(p, w.prompts_with_digits(200, 3, 7, &held_out), "seeded");
    }

    #[test]
    fn length_sets_have_operands_of_exactly_that_many_digits() {
        let w = ArithmeticWorld {
            ops: vec![Op::Add],
            digits: (1, 3),
            ood_digits: (4, 4),
            rationales: false,
            reversed: false,
        };
        let eval = w.eval_set(50);
        for n in 1..=6u32 {
            let set = w.length_set(n, 20, &eval);
            assert_eq!(set.len(), 20);
            for e in &set {
                let (a, b) = e.prompt.trim_end_matches('=').split_once('+').unwrap();
                assert_eq!((a.len(), b.len()), (n as usize, n as usize), "{}", e.prompt);
                assert!(!eval.iter().any(|x| x.prompt == e.prompt));
                assert_eq!(verify(&e.prompt, &e.completion), Some(true));
            }
            assert_eq!(set, w.length_set(n, 20, &eval), "fixed");
        }
    }

    #[test]
    fn reversed_problems_write_every_number_units_first_and_verify() {
        let w = ArithmeticWorld {
            ops: vec![Op::Add],
            digits: (1, 12),
            ood_digits: (13, 13),
            rationales: false,
            reversed: true,
        };
        assert_eq!(
            verify_reversed("714+68=", "305"),
            Some(true),
            "417 + 86 = 503"
        );
        assert_eq!(verify_reversed("714+68=", "503"), Some(false));
        assert_eq!(
            verify_reversed("714+68=", "3050"),
            Some(false),
            "0503 is not 503"
        );
        assert_eq!(verify_reversed("5+5=", "01"), Some(true), "5 + 5 = 10");
        assert_eq!(verify_reversed("+5=", "5"), None);
        assert_eq!(verify_reversed("5-5=", "0"), None);
        for e in w.train_set(500, 4, &[]) {
            assert_eq!(
                verify_reversed(&e.prompt, &e.completion),
                Some(true),
                "{e:?}"
            );
            let (a, b) = e.prompt.trim_end_matches('=').split_once('+').unwrap();
            let n = |s: &str| reverse(s).parse::<i64>().unwrap();
            assert_eq!(n(a) + n(b), n(&e.completion), "{e:?}");
            assert!(!a.ends_with('0') || a == "0", "no leading zero: {a}");
        }
        let long = w.length_set(13, 5, &[]);
        assert!(
            long.iter().all(|e| e.prompt.len() == 28),
            "13 + 13 digits, + and ="
        );
    }

    #[test]
    fn a_sum_has_the_longer_operands_digits_or_one_more() {
        assert_eq!(plausible_sum_length("417+86=", "503"), Some(true));
        assert_eq!(plausible_sum_length("999+1=", "1000"), Some(true));
        assert_eq!(plausible_sum_length("417+86=", "50"), Some(false));
        assert_eq!(plausible_sum_length("417+86=", "50300"), Some(false));
        assert_eq!(plausible_sum_length("417+86=", "5a3"), Some(false));
        assert_eq!(plausible_sum_length("417*86=", "503"), None);
        assert_eq!(plausible_sum_length("hello", "1"), None);
    }

    /// Every sum of two 3-digit operands passes, in both digit orders; a 4-digit
    /// answer whose carry digit is not 1 does not.
    #[test]
    fn the_carry_digit_of_a_longer_sum_is_one() {
        for a in (100..1000).step_by(37) {
            for b in (100..1000).step_by(41) {
                let (pa, pb) = (format!("{a:03}"), format!("{b:03}"));
                let sum = (a + b).to_string();
                let plain = format!("{pa}+{pb}=");
                assert_eq!(
                    plausible_sum_shape(&plain, &sum, false),
                    Some(true),
                    "{plain}{sum}"
                );
                let rev = |s: &str| s.chars().rev().collect::<String>();
                let reversed = format!("{}+{}=", rev(&pa), rev(&pb));
                assert_eq!(plausible_sum_shape(&reversed, &rev(&sum), true), Some(true));
            }
        }
        assert_eq!(plausible_sum_shape("417+986=", "2403", false), Some(false));
        assert_eq!(plausible_sum_shape("714+689=", "3042", true), Some(false));
        assert_eq!(plausible_sum_shape("714+689=", "3041", true), Some(true));
        assert_eq!(plausible_sum_shape("714+689=", "30", true), Some(false));
        assert_eq!(plausible_sum_shape("417*86=", "503", false), None);
    }

    /// The low k digits of every sampled reversed sum are its sub-problem's low k digits.
    #[test]
    fn a_sums_high_digits_are_its_sub_problem_plus_the_units_carry() {
        let rev = |s: String| s.chars().rev().collect::<String>();
        for a in (10_000..100_000).step_by(7_919) {
            for b in (1_000..100_000).step_by(8_111) {
                let prompt = format!("{}+{}=", rev(a.to_string()), rev(b.to_string()));
                let high = high_digits_problem(&prompt).unwrap();
                let (ha, hb) = (a / 10, b / 10);
                assert_eq!(
                    high,
                    format!("{}+{}=", rev(ha.to_string()), rev(hb.to_string()))
                );
                let high_sum = rev((ha + hb).to_string());
                assert!(
                    high_digits_agree(&rev((a + b).to_string()), &high_sum),
                    "{prompt}"
                );
                // A dropped or an invented final carry, a top digit off by one: all fail.
                let sum = a + b;
                let top = 10_i64.pow(sum.to_string().len() as u32 - 1);
                for wrong in [sum - top, sum + top, sum + 10 * top, sum + 20] {
                    if wrong / 10 != ha + hb && wrong / 10 != ha + hb + 1 {
                        assert!(
                            !high_digits_agree(&rev(wrong.to_string()), &high_sum),
                            "{prompt} {wrong}"
                        );
                    }
                }
            }
        }
        // 999 + 1 = 1000 (reversed `999+10=` → `0001`): the high part 99 + 0 plus the carry.
        assert_eq!(high_digits_problem("999+1=").as_deref(), None);
        assert_eq!(high_digits_problem("999+10=").as_deref(), Some("99+0="));
        assert!(high_digits_agree("0001", "99"));
        assert!(!high_digits_agree("000", "99"), "the final carry dropped");
        assert!(high_digits_agree(" 4031\n", "031"));
        assert!(!high_digits_agree("4031", "03"));
        assert!(!high_digits_agree("4", "0"));
        assert!(!high_digits_agree("40", ""));
        assert!(!high_digits_agree("é1", "1"), "any text, no panic");
        assert_eq!(high_digits_problem("7*8="), None);
        assert_eq!(high_digits_problem("71+8="), None);
    }

    #[test]
    fn a_sums_low_digits_are_its_sub_problems() {
        let rev = |s: String| s.chars().rev().collect::<String>();
        for a in (10_000..100_000).step_by(7_919) {
            for b in (10_000..100_000).step_by(8_111) {
                let prompt = format!("{}+{}=", rev(a.to_string()), rev(b.to_string()));
                let (low, k) = low_digits_problem(&prompt).unwrap();
                assert_eq!(k, 4);
                let (la, lb) = (a % 10_000, b % 10_000);
                assert_eq!(
                    low,
                    format!("{}+{}=", rev(format!("{la:04}")), rev(format!("{lb:04}")))
                );
                let sum = rev((a + b).to_string());
                let low_sum = rev((la + lb).to_string());
                assert!(low_digits_agree(&sum, &low_sum, k), "{prompt}");
            }
        }
        assert_eq!(low_digits_problem("714+68="), Some(("71+68=".into(), 2)));
        assert_eq!(low_digits_problem("7145+68="), Some(("714+68=".into(), 3)));
        assert_eq!(low_digits_problem("7+8="), None);
        assert_eq!(low_digits_problem("7*8="), None);
        assert!(!low_digits_agree("4031", "3031", 3));
        assert!(!low_digits_agree("40", "403", 3));
        assert!(
            low_digits_agree("82107", "821", 4),
            "0123+0005 = 128 read as 0128"
        );
    }
}
