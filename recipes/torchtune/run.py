#!/usr/bin/env python3
"""Train one didact round with torchtune (`tune run full_finetune_single_device`), as a
`[train] external` command: recipes/external-torchtune-sft.toml.

    python3 recipes/torchtune/run.py --model {model} --data {data} --out {out} --steps {steps} \
        --batch-size {batch_size} --lr {lr} --warmup-steps {warmup_steps} --seed {seed32}

The model shape comes from the start checkpoint's config.json (a Llama-family HF directory,
trained without a chat template: didact_tokenizer.py tokenizes as didact does); torchtune's
FullModelHFCheckpointer reads and writes the HF layout; the trained weights and the start's
config/tokenizer files are then put at {out} as one HF directory, with torchtune's step log as
didact's train_log.json. Runs `tune` from the same
Python (pip install torchtune torchao; torchao 0.14 with torch 2.9).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import time
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

p = argparse.ArgumentParser()
for k in ["model", "data", "out"]:
    p.add_argument(f"--{k}", required=True)
p.add_argument("--steps", type=int, required=True)
p.add_argument("--batch-size", type=int, default=16)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--warmup-steps", type=int, default=0)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()

model, out = Path(a.model).resolve(), Path(a.out).resolve()
cfg = json.loads((model / "config.json").read_text())
if cfg["architectures"][0] != "LlamaForCausalLM" or cfg.get("tie_word_embeddings"):
    sys.exit("torchtune run.py: needs an untied LlamaForCausalLM start checkpoint")
rows = sum(1 for line in open(a.data) if line.strip())
steps_per_epoch = max(1, rows // a.batch_size)  # torchtune drops the last partial batch
epochs = math.ceil(a.steps / steps_per_epoch)
work = out.parent / (out.name + ".torchtune")
shutil.rmtree(work, ignore_errors=True)
overrides = {
    "output_dir": str(work),
    "model.vocab_size": cfg["vocab_size"],
    "model.num_layers": cfg["num_hidden_layers"],
    "model.num_heads": cfg["num_attention_heads"],
    "model.num_kv_heads": cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
    "model.embed_dim": cfg["hidden_size"],
    "model.max_seq_len": cfg["max_position_embeddings"],
    "model.intermediate_dim": cfg["intermediate_size"],
    "model.norm_eps": cfg["rms_norm_eps"],
    "model.rope_base": int(cfg.get("rope_theta", 10000)),
    "tokenizer.checkpoint_dir": str(model),
    "tokenizer.max_seq_len": cfg["max_position_embeddings"],
    "dataset.data_files": str(Path(a.data).resolve()),
    "checkpointer.checkpoint_dir": str(model),
    "batch_size": a.batch_size,
    "optimizer.lr": a.lr,
    "lr_scheduler.num_warmup_steps": a.warmup_steps,
    "seed": a.seed,
    # torchtune counts epochs, not steps: `steps` spread over as few epochs as hold them
    # (the total is `steps` rounded up to a multiple of the epochs)
    "epochs": epochs,
    "max_steps_per_epoch": math.ceil(a.steps / epochs),
}
cmd = ["tune", "run", "full_finetune_single_device", "--config", str(HERE / "sft.yaml")]
cmd += [f"{k}={v}" for k, v in overrides.items()]
env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
tune = Path(sys.executable).parent / "tune"
cmd[0] = str(tune) if tune.exists() else "tune"
t0 = time.time()
subprocess.run(cmd, check=True, env=env)
seconds = time.time() - t0

last = max(work.glob("epoch_*"), key=lambda d: int(d.name.split("_")[1]))
out.mkdir(parents=True, exist_ok=True)
for f in last.iterdir():  # the weights torchtune wrote (shards + index)
    if f.name.startswith("model") and ".safetensors" in f.name:
        shutil.copy2(f, out / f.name)
for name in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]:
    if (model / name).is_file():  # the start's, unchanged
        shutil.copy2(model / name, out / name)
# torchtune's DiskLogger lines ("Step 3 | loss:0.45 lr:… tokens_per_second_per_gpu:… grad_norm:…")
# → train_log.json, which didact reads as the round's train/* metrics.
steps = []
for log in sorted((work / "logs").glob("log_*.txt")):
    for line in log.read_text().splitlines():
        if line.startswith("Step "):
            steps.append(dict(kv.split(":", 1) for kv in line.split("|", 1)[1].split()))
losses = [float(s["loss"]) for s in steps]
tail = losses[len(losses) - math.ceil(len(losses) / 4):]
tps = [float(s["tokens_per_second_per_gpu"]) for s in steps]
train_log = {
    "steps": len(losses),
    "final_loss": sum(tail) / len(tail) if tail else None,
    "step_losses": losses,
    "last_grad_norm": float(steps[-1].get("grad_norm", "nan")) if steps else None,
    "tokens": 0,  # torchtune logs a rate, not a count
    "seconds": seconds,
    "tokens_per_s": sum(tps) / len(tps) if tps else None,
}
(out / "train_log.json").write_text(json.dumps(train_log, indent=2))
print(json.dumps({"out": str(out), "from": str(last), "steps": len(losses)}))
