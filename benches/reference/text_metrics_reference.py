"""The Python references for benches/src/bin/text_metrics.rs, on the same Tiny Shakespeare
lines: rouge-score's RougeScorer(['rougeL']) over candidate × pool pairs and nltk's
sentence_bleu (method1 smoothing, 4-gram) Self-BLEU. The full sizes (10,000 × 10,000 pairs;
10,000 samples, quadratic) take hours in Python, so each is timed on a slice and scaled:
novelty linearly in the number of candidates (each scans the full 10,000 pool), Self-BLEU
quadratically in the number of samples (each sample is scored against all others).
Prints one JSON object. Needs: pip install rouge-score nltk
"""
import json, sys, time
from rouge_score import rouge_scorer
from nltk.translate.bleu_score import sentence_bleu, SmoothingFunction

path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/tinyshakespeare/input.txt"
lines = [l.strip() for l in open(path) if len(l.split()) >= 3]
pool, cands = lines[:10000], lines[10000:20000]

scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
n_c = 20
t = time.perf_counter()
for c in cands[:n_c]:
    any(scorer.score(p, c)["rougeL"].fmeasure > 0.7 for p in pool)
nov = (time.perf_counter() - t) * (len(cands) / n_c)

n_s = 300
samples = [l.split() for l in lines[:n_s]]
smooth = SmoothingFunction().method1
t = time.perf_counter()
for i, h in enumerate(samples):
    sentence_bleu(samples[:i] + samples[i + 1:], h, smoothing_function=smooth)
sb = (time.perf_counter() - t) * (10000 / n_s) ** 2

print(json.dumps({
    "novelty_10k_x_10k_s_extrapolated": nov, "novelty_measured_candidates": n_c,
    "self_bleu_10k_s_extrapolated": sb, "self_bleu_measured_samples": n_s,
}))
