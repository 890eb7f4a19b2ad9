"""Paired differences against the 0 % arm (same seed = same initial weights and data order):
per ratio and metric, the mean over seeds of (final value − the 0 % arm's final value) and the
95 % Student-t half-width. Reads runs/*/metrics.csv beside it; writes paired.csv and prints it.
Usage: python3 table.py"""
import csv, pathlib, statistics

HERE = pathlib.Path(__file__).parent
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}
METRICS = ["eval/loss_real", "truth/kl", "truth/model_entropy"]

final = {}
for d in sorted((HERE / "runs").iterdir()):
    ratio, seed = d.name.removeprefix("synthetic_ratio-").split("_seed-")
    rows = list(csv.DictReader(open(d / "metrics.csv")))
    final[(float(ratio), int(seed))] = {m: float(rows[-1][m]) for m in METRICS}

ratios = sorted({r for r, _ in final})
seeds = sorted({s for _, s in final})
out = [["synthetic_ratio", "metric", "mean_diff_vs_0", "ci95", "seeds"]]
for r in ratios:
    for m in METRICS:
        diffs = [final[(r, s)][m] - final[(0.0, s)][m] for s in seeds]
        mean = statistics.mean(diffs)
        half = T975[len(diffs) - 1] * statistics.stdev(diffs) / len(diffs) ** 0.5 if r else 0.0
        out.append([r, m, f"{mean:.4f}", f"{half:.4f}", len(diffs)])
with open(HERE / "paired.csv", "w", newline="") as f:
    csv.writer(f).writerows(out)
for row in out:
    print(*row, sep="\t")
