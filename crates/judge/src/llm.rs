//! LLM-as-judge: the prompt a judge model sees and the parser of its verdict, a score on a
//! scale (`min..=max`, e.g. 1–10). The formats accepted are the common ones (MT-Bench's
//! `[[7]]`, `Score: 7`, `Rating: 7/10`, a verdict alone on the last line). A verdict that parses to nothing — or to two different answers — is
//! `Unparseable` with the reason: callers count it and never turn it into a score.

/// Default single-answer grading prompt; `{prompt}` and `{response}` are replaced.
pub const SCORE_TEMPLATE: &str = "Rate the response to the instruction on a scale of {min} to {max} for correctness and helpfulness. Answer with the rating in double brackets, like [[5]].\n\nInstruction: {prompt}\nResponse: {response}\nRating: ";

/// Fill a template's `{name}` placeholders.
pub fn render(template: &str, fields: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in fields {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum Unparseable {
    /// No verdict found.
    Missing,
    /// A number outside the scale.
    OutOfRange(f64),
    /// Two different verdicts in one judgement.
    Conflicting(String, String),
}

impl std::fmt::Display for Unparseable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unparseable::Missing => write!(f, "no verdict found"),
            Unparseable::OutOfRange(x) => write!(f, "{x} is outside the scale"),
            Unparseable::Conflicting(a, b) => write!(f, "conflicting verdicts {a} and {b}"),
        }
    }
}

/// Contents of every `[[…]]` in `text`.
fn bracketed(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("[[") {
        let after = &rest[i + 2..];
        match after.find("]]") {
            Some(j) => {
                out.push(after[..j].trim().to_string());
                rest = &after[j + 2..];
            }
            None => break,
        }
    }
    out
}

/// The number at the start of `s` (after spaces, `*`, `:`), e.g. "  7/10" → 7.
fn leading_number(s: &str) -> Option<f64> {
    let s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '*' || c == ':' || c == '=');
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*c == '.' && *i > 0)))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    s[..end].trim_end_matches('.').parse().ok()
}

/// A score on `min..=max`. Looks, in order, for `[[N]]`, for `score`/`rating` followed by a
/// number, for `N/max`, and for a number alone on the last non-empty line.
pub fn parse_score(text: &str, min: f64, max: f64) -> Result<f64, Unparseable> {
    let mut found: Vec<f64> = bracketed(text)
        .iter()
        .filter_map(|b| b.parse::<f64>().ok())
        .collect();
    if found.is_empty() {
        let lower = text.to_lowercase();
        for key in ["score", "rating"] {
            let mut rest = lower.as_str();
            while let Some(i) = rest.find(key) {
                rest = &rest[i + key.len()..];
                // "score of 7", "rating: 7", "score is 7"
                let r = rest
                    .trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '*')
                    .trim_start_matches("of ")
                    .trim_start_matches("is ");
                if let Some(x) = leading_number(r) {
                    found.push(x);
                }
            }
        }
    }
    if found.is_empty() {
        let max_str = format!("/{}", max as i64);
        for (i, _) in text.match_indices(&max_str) {
            let head = &text[..i];
            let start = head
                .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
                .map(|j| j + 1)
                .unwrap_or(0);
            if let Ok(x) = head[start..].parse::<f64>() {
                found.push(x);
            }
        }
    }
    if found.is_empty()
        && let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty())
        && let Ok(x) = last
            .trim()
            .trim_matches(|c: char| c == '*' || c == '.')
            .parse::<f64>()
    {
        found.push(x);
    }
    let Some(&first) = found.first() else {
        return Err(Unparseable::Missing);
    };
    if let Some(&other) = found.iter().find(|&&x| x != first) {
        return Err(Unparseable::Conflicting(
            first.to_string(),
            other.to_string(),
        ));
    }
    if !(min..=max).contains(&first) {
        return Err(Unparseable::OutOfRange(first));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_in_the_common_formats() {
        for (text, want) in [
            ("The answer is right. Rating: [[8]]", 8.0),
            ("[[ 3 ]]", 3.0),
            ("Score: 7", 7.0),
            ("I would give it a score of 6.5 overall.", 6.5),
            ("**Rating:** 9/10", 9.0),
            ("Good answer, 4/10 though for brevity", 4.0),
            ("Reasoning here.\n\n10", 10.0),
            ("Reasoning.\n**2**.", 2.0),
            ("[[7]] — I repeat, [[7]]", 7.0),
        ] {
            assert_eq!(parse_score(text, 1.0, 10.0), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn unparseable_scores_are_reported_not_guessed() {
        assert_eq!(parse_score("", 1.0, 10.0), Err(Unparseable::Missing));
        assert_eq!(
            parse_score("It is quite good.", 1.0, 10.0),
            Err(Unparseable::Missing)
        );
        assert_eq!(
            parse_score("Rating: [[11]]", 1.0, 10.0),
            Err(Unparseable::OutOfRange(11.0))
        );
        assert_eq!(
            parse_score("[[0]]", 1.0, 10.0),
            Err(Unparseable::OutOfRange(0.0))
        );
        assert!(matches!(
            parse_score("[[3]] or maybe [[8]]", 1.0, 10.0),
            Err(Unparseable::Conflicting(_, _))
        ));
        // A bracket that is not a number is not a score.
        assert_eq!(
            parse_score("[[good]]", 1.0, 10.0),
            Err(Unparseable::Missing)
        );
        // An unclosed bracket is not a verdict; the trailing number is.
        assert_eq!(parse_score("[[7\n5", 1.0, 10.0), Ok(5.0));
    }

    #[test]
    fn templates_fill_every_placeholder() {
        let p = render(
            SCORE_TEMPLATE,
            &[
                ("prompt", "2+2="),
                ("response", "4"),
                ("min", "1"),
                ("max", "10"),
            ],
        );
        assert!(p.contains("Instruction: 2+2=") && p.contains("Response: 4"));
        assert!(p.contains("scale of 1 to 10") && !p.contains('{'));
    }
}
