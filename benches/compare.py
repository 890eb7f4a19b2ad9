#!/usr/bin/env python3
"""Run didact's throughput benchmark and the PyTorch eager reference side by side, on the same
number of threads, and print tokens/s with ratios (markdown).

Usage: python3 benches/compare.py [--threads 2] [--skip-rust] [--tch]
Needs `python3 -m pip install torch` for the reference column. `--tch` also builds didact with
LibTorch (`--features didact-model/tch`, torch 2.9.0 importable by this python) and adds the
`tch-cpu` column: didact's own code on PyTorch's CPU kernels.
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


def rust(threads, skip, tch):
    # LibTorch's intra-op pool is sized by OMP_NUM_THREADS, rayon's by RAYON_NUM_THREADS.
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    cmd = ["cargo", "bench", "-p", "didact-benches", "--bench", "throughput"]
    if tch:
        cmd += ["--features", "didact-model/tch"]
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


def torch_ref(threads):
    script = ROOT / "benches" / "reference" / "torch_reference.py"
    r = subprocess.run(
        [sys.executable, str(script), "--threads", str(threads), "--json"],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        print(f"(PyTorch reference unavailable: {r.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-rust", action="store_true", help="reuse the last criterion results")
    ap.add_argument("--tch", action="store_true", help="also build and measure the tch-cpu device")
    a = ap.parse_args()
    rs = rust(a.threads, a.skip_rust, a.tch)
    tr = torch_ref(a.threads)
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


if __name__ == "__main__":
    main()
