"""What the kept pseudo-labels of one round get wrong, and what a prefix self-check would keep.

usage: python3 label_errors.py RUN_DIR ROUND [--prefix-check] [--didact target/release/didact]
(needs polars: pip install polars). Reads RUN_DIR/rounds/round-XX/scored.parquet (reversed sums).

1. Kept labels by kind — right, "units+1" (only the units digit wrong, one too high), other —
   split by whether the operands' top digits add to 10 or more.
2. With --prefix-check: the round's training-start model (round ROUND-1, peer 0) answers, greedy,
   the same problems cut to their low n-1 digits (in reversed order: the first n-1 characters of
   each operand); a label passes when its first n-1 digits equal that answer's. Prints how many
   labels would pass, how many of them are right, and how many right labels it would drop.
"""
import collections, json, subprocess, sys
import polars as pl

run, r = sys.argv[1], int(sys.argv[2])
didact = sys.argv[sys.argv.index("--didact") + 1] if "--didact" in sys.argv else "target/release/didact"
kept = pl.read_parquet(f"{run}/rounds/round-{r:02d}/scored.parquet").filter(pl.col("kept"))
rows = [(p, c.strip()) for p, c in kept.select("prompt", "completion").rows()]


def operands(p):
    return p[:-1].split("+")


def truth(p):
    a, b = operands(p)
    return str(int(a[::-1]) + int(b[::-1]))[::-1]


kinds = collections.Counter()
for p, c in rows:
    a, b = operands(p)
    t = truth(p)
    top = "top digits carry" if int(a[-1]) + int(b[-1]) >= 10 else "no top carry"
    if c == t:
        kind = "right"
    elif c[:1] == str((int(t[0]) + 1) % 10) and c[1:] == t[1:]:
        kind = "units+1"
    else:
        kind = "other"
    kinds[(kind, top)] += 1
print(f"{run} round {r}: {len(rows)} kept labels")
for (kind, top), n in sorted(kinds.items()):
    print(f"  {kind:8} {top:17} {n}")

if "--prefix-check" in sys.argv:
    def cut(p):
        a, b = operands(p)
        k = max(len(a), len(b)) - 1
        return f"{a[:k]}+{b[:k]}=", k

    args = [didact, "generate", "--model", f"{run}/rounds/round-{r - 1:02d}/model", "--greedy",
            "--max-new-tokens", "16"]
    for p, _ in rows:
        args += ["--prompt", cut(p)[0]]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    answers = [json.loads(l)["completion"].strip() for l in out.splitlines() if l.startswith("{")]
    assert len(answers) == len(rows)
    c = collections.Counter()
    for (p, label), short in zip(rows, answers):
        k = cut(p)[1]
        c[(label[:k] == short[:k], label == truth(p))] += 1
    passed = c[(True, True)] + c[(True, False)]
    print(f"prefix check: {passed} of {len(rows)} labels pass, {c[(True, True)]} of them right "
          f"({c[(True, True)] / max(1, passed):.1%}); right labels dropped: {c[(False, True)]}")
