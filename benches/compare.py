#!/usr/bin/env python3
"""Run didact's throughput benchmark and the PyTorch eager reference side by side, on the same
number of threads, and print tokens/s with ratios (markdown).

Usage: python3 benches/compare.py [--threads 2] [--skip-rust] [--tch] [--json] [--smollm2]
Needs `python3 -m pip install torch` for the reference column. `--tch` also builds didact with
LibTorch (`--features didact-model/tch`, torch 2.9.0 importable by this python) and adds the
`tch-cpu` column: didact's own code on PyTorch's CPU kernels. `--json` prints one JSON object
instead of the table: per job (`train`, `dpo`, `sample`) didact's default backend (flex) tok/s,
PyTorch eager tok/s and their `ratio`, all from this run (plus every backend measured).
`--smollm2` adds the SmolLM2-135M shape (slow: a 513 MiB checkpoint, minutes per side): one SFT
step's tok/s (batch 4 x 128) and the process's peak RSS, didact (flex, `smollm2_size measure` in a
fresh process) against PyTorch eager (`torch_reference.py --smollm2`, also a fresh process).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKENS = {"train": 2 * 16 * 128, "dpo": 2 * 16 * 128, "sample": 16 * 112}
BACKENDS = ["flex", "ndarray", "tch-cpu"]


def torch_lib_dir():
    import torch  # noqa: the LibTorch that `--tch` builds against and loads
    return str(pathlib.Path(torch.__file__).parent / "lib")


def threads_env(threads):
    # LibTorch's intra-op pool is sized by OMP_NUM_THREADS, rayon's by RAYON_NUM_THREADS.
    return dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))


def rust(threads, skip, tch):
    env = threads_env(threads)
    # ndarray is a column here although CI's build leaves it out (benches/Cargo.toml).
    features = ["ndarray"] + (["didact-model/tch"] if tch else [])
    cmd = ["cargo", "bench", "-p", "didact-benches", "--bench", "throughput"]
    cmd += ["--features", ",".join(features)]
    if tch:
        lib = torch_lib_dir()
        env.update(
            LIBTORCH_USE_PYTORCH="1",
            LD_LIBRARY_PATH=lib + os.pathsep + env.get("LD_LIBRARY_PATH", ""),
            PATH=str(pathlib.Path(sys.executable).parent) + os.pathsep + env["PATH"],
        )
    if not skip:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    out = {}
    for job, tokens in TOKENS.items():
        for backend in BACKENDS:
            est = target / "criterion" / job / backend / "new" / "estimates.json"
            if not est.exists() or (backend == "tch-cpu" and not tch):  # not measured in this run
                out[(job, backend)] = float("nan")
                continue
            ns = json.loads(est.read_text())["mean"]["point_estimate"]
            out[(job, backend)] = tokens / (ns * 1e-9)
    return out


def torch_ref(threads, *extra):
    """The PyTorch reference's JSON (`extra`: e.g. `--smollm2`), or None when it cannot run."""
    script = ROOT / "benches" / "reference" / "torch_reference.py"
    r = subprocess.run(
        [sys.executable, str(script), "--threads", str(threads), "--json", *extra],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        print(f"(PyTorch reference unavailable: {r.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    return json.loads(r.stdout)


def smollm2(threads):
    """didact's and PyTorch's SmolLM2-shape measurements, each in a fresh process."""
    env = threads_env(threads)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    ckpt = target / "smollm2-135m-random"
    run = ["cargo", "run", "--release", "-q", "-p", "didact-benches", "--bin", "smollm2_size", "--"]
    if not (ckpt / "model.safetensors").exists():
        subprocess.run(run + ["write", str(ckpt)], cwd=ROOT, env=env, check=True)
    r = subprocess.run(run + ["measure", str(ckpt)], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    didact = json.loads(r.stdout)
    ref = torch_ref(threads, "--smollm2")
    out = {}
    for key in ["sft_step_tokens_per_s", "forward_tokens_per_s", "peak_rss_mib_after_sft"]:
        d, t = didact[key], ref[key] if ref else None
        out[key] = {"didact": round(d, 1), "pytorch": None if t is None else round(t, 1),
                    "ratio": None if t is None else round(d / t, 3)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-rust", action="store_true", help="reuse the last criterion results")
    ap.add_argument("--tch", action="store_true", help="also build and measure the tch-cpu device")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the markdown table")
    ap.add_argument("--smollm2", action="store_true", help="also the SmolLM2-135M-shape SFT step and peak memory (slow)")
    a = ap.parse_args()
    rs = rust(a.threads, a.skip_rust, a.tch)
    tr = torch_ref(a.threads)
    big = smollm2(a.threads) if a.smollm2 else None
    if a.json:
        out = as_json(rs, tr, a.threads)
        if big:
            out["smollm2_135m"] = big
        print(json.dumps(out, indent=2))
        return
    print(f"\nthreads: {a.threads}; shape: vocab 512, d_model 256, 4 layers, 4/2 heads, seq 128, batch 16")
    if tr:
        print(f"torch {tr['torch_version']}")
    print("\n| job | didact flex tok/s | didact ndarray tok/s | didact tch-cpu tok/s | PyTorch eager tok/s | flex / ndarray | flex / PyTorch | tch-cpu / PyTorch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    num = lambda x: "–" if x != x else f"{x:,.0f}"  # noqa: E731 (NaN: not measured)
    ratio = lambda a, b: "–" if a != a or b != b else f"{a / b:.2f}"  # noqa: E731
    for job in TOKENS:
        f, n, c = rs[(job, "flex")], rs[(job, "ndarray")], rs[(job, "tch-cpu")]
        t = tr[f"{job}_tokens_per_s"] if tr else float("nan")
        print(f"| {job} | {num(f)} | {num(n)} | {num(c)} | {num(t)} | {ratio(f, n)} | {ratio(f, t)} | {ratio(c, t)} |")
    if big:
        print("\nSmolLM2-135M shape (batch 4 x 128, fresh processes):\n")
        print("| figure | didact flex | PyTorch eager | didact / PyTorch |")
        print("|---|---:|---:|---:|")
        for key, row in big.items():
            print(f"| {key} | {num(row['didact'])} | {num(row['pytorch'] or float('nan'))} | {row['ratio'] if row['ratio'] is not None else '–'} |")


def as_json(rs, tr, threads):
    """Per job: didact's default backend, PyTorch eager and their ratio (null: not measured)."""
    clean = lambda x: None if x != x else round(x, 1)  # noqa: E731 (NaN → null)
    out = {
        "threads": threads,
        "shape": {"vocab": 512, "d_model": 256, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2, "seq": 128, "batch": 16},
        "torch_version": tr["torch_version"] if tr else None,
        "default_backend": "flex",
    }
    for job in TOKENS:
        d = rs[(job, "flex")]
        t = tr[f"{job}_tokens_per_s"] if tr else float("nan")
        out[job] = {
            "didact_tokens_per_s": clean(d),
            "pytorch_tokens_per_s": clean(t),
            "ratio": None if d != d or t != t else round(d / t, 3),
            "backends_tokens_per_s": {b: clean(rs[(job, b)]) for b in BACKENDS},
        }
    return out


if __name__ == "__main__":
    main()
