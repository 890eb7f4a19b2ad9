#!/usr/bin/env python3
"""Logits of BASE with a LoRA adapter attached by `peft` itself (PeftModel.from_pretrained),
on the token ids in IDS_JSON (a JSON list), printed as one JSON list [len(ids) * vocab].
Used by crates/cli/tests/lora.rs to check that PEFT reads a didact adapter as didact does."""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

base_dir, adapter_dir, ids_path = sys.argv[1:4]
ids = json.load(open(ids_path))
base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
model = PeftModel.from_pretrained(base, adapter_dir).eval()
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0]
print(json.dumps(logits.flatten().tolist()))
