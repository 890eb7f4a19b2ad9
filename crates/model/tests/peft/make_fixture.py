#!/usr/bin/env python3
"""Make the PEFT LoRA fixture didact's adapter loader is tested against (crates/model/tests/lora.rs).

For each tiny HF checkpoint in ../shared/fixtures (llama, gpt2), `peft` itself attaches a LoRA
adapter with random A and B (init_lora_weights=False, so the adapter changes the logits), saves
it with `save_pretrained` (adapter_config.json + adapter_model.safetensors, PEFT's own tensor
names), and records the adapted model's logits on one fixture case (eval mode, float32, CPU),
plus the logits after `merge_and_unload()` as a cross-check of PEFT against itself.

Run from the repository root:  python3 crates/model/tests/peft/make_fixture.py
Needs torch, transformers and peft: when they are missing, the script makes a venv in
target/peft-venv, pip-installs them there and re-runs itself with it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
OUT = Path(__file__).resolve().parent
SHARED = ROOT.parent / "shared" / "fixtures"

try:
    import peft  # noqa: F401
    import torch
    import transformers  # noqa: F401
except ImportError:
    venv = ROOT / "target" / "peft-venv"
    py = venv / "bin" / "python"
    if Path(sys.executable).resolve() == py.resolve():
        raise
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
    subprocess.check_call([str(py), "-m", "pip", "install", "--quiet", "torch", "transformers", "peft", "safetensors"])
    os.execv(str(py), [str(py), __file__])

from peft import LoraConfig, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

CASE = 2  # the 25-token case of expected.json

SETUPS = {
    # A mix of attention and MLP projections, not all of them (untargeted ones must stay).
    "llama": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"]),
    # `c_proj` matches both attn.c_proj and mlp.c_proj (PEFT's suffix rule); Conv1D weights.
    "gpt2": dict(r=4, lora_alpha=12, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True),
}


def main():
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    for name, setup in SETUPS.items():
        src = SHARED / name
        ids = json.loads((src / "expected.json").read_text())["cases"][CASE]["input_ids"]
        torch.manual_seed(20261201)
        base = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
        cfg = LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, init_lora_weights=False, **setup)
        model = get_peft_model(base, cfg).eval()
        out = OUT / name
        model.save_pretrained(out)
        x = torch.tensor([ids])
        with torch.no_grad():
            adapted = model(x).logits[0].contiguous()
            merged = model.merge_and_unload()(x).logits[0].contiguous()
        with torch.no_grad():
            plain = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()(x).logits[0]
        save_file({"logits": adapted}, str(out / "expected_logits.safetensors"))
        (out / "expected.json").write_text(json.dumps({
            "base": f"../shared/fixtures/{name}",
            "input_ids": ids,
            "lora_config": setup,
            "versions": versions,
            "max_abs_adapted_minus_merged": float((adapted - merged).abs().max()),
            "max_abs_adapted_minus_base": float((adapted - plain).abs().max()),
        }, indent=2) + "\n")
        # PEFT writes a model card template as README.md; say what this folder is instead.
        (out / "README.md").write_text(
            f"# PEFT LoRA adapter on ../shared/fixtures/{name}\n\n"
            f"Made by `crates/model/tests/peft/make_fixture.py` with peft {peft.__version__}, "
            f"transformers {transformers.__version__}, torch {torch.__version__}: "
            f"`get_peft_model(base, LoraConfig({setup}, lora_dropout=0, init_lora_weights=False))` "
            "after `torch.manual_seed(20261201)`, saved by `save_pretrained`. "
            "`expected_logits.safetensors` → `logits`: the adapted model's float32 logits "
            "`[len(input_ids), vocab]` on `expected.json` → `input_ids`.\n"
        )
        print(name, "adapter changes logits by up to", float((adapted - plain).abs().max()))


if __name__ == "__main__":
    main()
