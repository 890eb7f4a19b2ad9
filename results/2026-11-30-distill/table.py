"""The distillation comparison table from the sweeps' own comparison.csv files.

    python3 results/2026-11-30-distill/table.py runs/distill-compare-sweep runs/distill-teacher-quality-sweep

Writes comparison.csv beside this file (method, teacher, teacher/loss_real, eval/loss_real,
truth/kl, gap_closed, distill/kl_to_teacher, distill/on_policy_fraction, sweep) and prints it as
a markdown table. teacher/loss_real is round 0's (the `real` arm of the same teacher: every
point of a teacher shares it); gap_closed is didact's `distill/gap_closed`.
Standard library only.
"""
import csv
import os
import sys

COLS = ["method", "teacher", "teacher/loss_real", "eval/loss_real", "truth/kl", "gap_closed",
        "distill/kl_to_teacher", "distill/on_policy_fraction", "sweep"]


def rows(sweep_dir):
    with open(os.path.join(sweep_dir, "comparison.csv")) as f:
        pts = list(csv.DictReader(f))
    teacher_loss = {p["teacher"]: p["teacher/loss_real"] for p in pts if p["method"] == "real"}
    for p in pts:
        yield {
            "method": p["method"],
            "teacher": p["teacher"],
            "teacher/loss_real": teacher_loss.get(p["teacher"], ""),
            "eval/loss_real": p["eval/loss_real"],
            "truth/kl": p["truth/kl"],
            "gap_closed": p.get("distill/gap_closed", ""),
            "distill/kl_to_teacher": p.get("distill/kl_to_teacher", ""),
            "distill/on_policy_fraction": p.get("distill/on_policy_fraction", ""),
            "sweep": os.path.basename(sweep_dir.rstrip("/")),
        }


def fmt(v):
    try:
        return f"{float(v):.4f}"
    except ValueError:
        return v or "–"


out = [r for d in sys.argv[1:] for r in rows(d)]
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "comparison.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=COLS)
    w.writeheader()
    w.writerows(out)
print("| " + " | ".join(COLS[:-1]) + " |")
print("|" + "---|" * 2 + "---:|" * (len(COLS) - 3))
for r in out:
    print("| " + " | ".join(fmt(r[c]) if i >= 2 else r[c] for i, c in enumerate(COLS[:-1])) + " |")
