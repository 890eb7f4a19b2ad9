#!/usr/bin/env python3
"""table.csv and the README table: mean seconds per stage over rounds >= 1 (from each run's
journal.jsonl, which records every stage's wall time), and each doubling's cost ratio.
Run from this directory: python3 table.py"""
import collections
import csv
import json

STAGES = ["generate", "score", "mix", "train", "evaluate"]
rows = []
for recipe in ["quickstart", "collapse-replace"]:
    prev = None
    for n in [1000, 2000, 4000]:
        per = collections.defaultdict(list)
        with open(f"{recipe}/n_prompts-{n}/journal.jsonl") as f:
            for line in f:
                j = json.loads(line)
                if j["round"] >= 1:
                    per[j["stage"]].append(j["seconds"])
        mean = {s: sum(per[s]) / len(per[s]) for s in STAGES if per[s]}
        total = sum(mean.values())
        ratio = total / prev[0] if prev else float("nan")
        gen_ratio = mean["generate"] / prev[1] if prev else float("nan")
        rows.append([recipe, n] + [round(mean.get(s, 0.0), 3) for s in STAGES]
                    + [round(total, 3), round(ratio, 3), round(gen_ratio, 3)])
        prev = (total, mean["generate"])
head = ["recipe", "n_prompts"] + [f"{s}_s" for s in STAGES] + ["round_s", "round_ratio", "generate_ratio"]
with open("table.csv", "w", newline="") as f:
    csv.writer(f).writerows([head] + rows)
for r in rows:
    print("| " + " | ".join(str(x) for x in r) + " |")
