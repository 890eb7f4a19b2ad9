#!/usr/bin/env python3
"""paired.csv / the README table: each arm's final held-out accuracy per seed, and its paired
difference from SFT alone at the same SFT steps and data (same seed = same round-0 base, same
problems). Run from this directory: python3 table.py"""
import csv
import math

SWEEPS = {
    "main": ["sft75", "sft150", "dpo", "beta_0.5", "rpo_0", "rpo_2", "lr_3e-5", "dpo_steps150", "ipo"],
    "t05": ["sft75", "sft150", "dpo", "lr_3e-5", "rpo_2"],
    "more": ["dpo_batch64", "sft75_prompts2000", "dpo_prompts2000", "dpo_only", "dpo_only_lr3e-5"],
}
SEEDS = [1, 2, 3]
T95 = 4.303  # Student t, 2 degrees of freedom


def final(sweep, arm, seed, key="eval/accuracy"):
    with open(f"{sweep}/runs/arm-{arm}_seed-{seed}/metrics.csv") as f:
        return float(list(csv.DictReader(f))[-1][key])


def baseline(sweep, arm):
    if "prompts2000" in arm:
        return sweep, "sft75_prompts2000"
    return (sweep if sweep != "more" else "main"), "sft75"


def mean_ci(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    return m, T95 * sd / math.sqrt(len(v))


rows = []
for sweep, arms in SWEEPS.items():
    for arm in arms:
        acc = [final(sweep, arm, s) for s in SEEDS]
        bs, ba = baseline(sweep, arm)
        diff = [a - final(bs, ba, s) for a, s in zip(acc, SEEDS)]
        m, ci = mean_ci(acc)
        dm, dci = mean_ci(diff)
        loss = mean_ci([final(sweep, arm, s, "eval/loss_real") for s in SEEDS])
        rows.append([sweep, arm, ba, *acc, round(m, 4), round(ci, 4), *[round(d, 4) for d in diff],
                     round(dm, 4), round(dci, 4), round(loss[0], 4), round(loss[1], 4)])
head = ["sweep", "arm", "baseline", "acc_s1", "acc_s2", "acc_s3", "acc_mean", "acc_ci95",
        "diff_s1", "diff_s2", "diff_s3", "diff_mean", "diff_ci95", "loss_real_mean", "loss_real_ci95"]
with open("paired.csv", "w", newline="") as f:
    csv.writer(f).writerows([head] + rows)
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[6]:.3f} ± {r[7]:.3f} | {r[8]:+.3f} {r[9]:+.3f} {r[10]:+.3f} | "
          f"{r[11]:+.3f} ± {r[12]:.3f} | {r[13]:.3f} |")
