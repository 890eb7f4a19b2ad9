#!/usr/bin/env python3
"""Writes cases.jsonl, the bad-input corpus `crates/cli/tests/bad_inputs.rs` runs: each case is
a `didact` command line with the files it needs, the exit status it must end with and a
substring its error must contain. Run after adding cases: python3 make_cases.py

Placeholders in args and file contents: {dir} = the case's fresh directory, {shared} = ../shared
beside the checkout, {repo} = the checkout.
"""
import json
import pathlib

cases = []


def case(name, args, contains, exit=1, files=None, copies=None):
    cases.append({"name": name, "args": args, "exit": exit, "contains": contains,
                  "files": files or {}, "copies": copies or []})


def recipe(name, body, contains):
    case(f"recipe/{name}", ["run", "{dir}/r.toml", "--out", "{dir}/out", "--quiet"], contains,
         files={"r.toml": body})


# 1. Every float key: NaN and infinities are refused by key.
FLOATS = {
    "train": ["lr", "round_lr", "min_lr_ratio", "weight_decay", "beta1", "beta2", "eps", "grad_clip"],
    "dpo": ["beta", "label_smoothing", "rpo_alpha", "min_gap", "lr"],
    "reward": ["eval_fraction", "lr", "center"],
    "generate": ["temperature", "top_p", "timeout_s"],
    "model": ["rope_theta", "rope_scaling"],
    "world": ["zipf", "end_prob"],
    "judge": ["min", "max", "min_score"],
    "mix": ["synthetic_ratio"],
    "filter": ["majority"],
    "teacher": ["lr"],
    "distill": ["beta", "temperature", "on_policy"],
    "self_instruct": ["rouge_threshold"],
    "data": ["eval_fraction"],
}
for section, keys in FLOATS.items():
    for key in keys:
        for v in ["nan", "inf", "-inf"]:
            recipe(f"{section}.{key}={v}", f"[{section}]\n{key} = {v}\n", f"{section}.{key}")

# 2. Out-of-range values, by key.
RANGES = [
    ("train", "lr", "0.0"), ("train", "lr", "2.0"), ("train", "lr", "-0.1"),
    ("train", "round_lr", "-1.0"), ("train", "min_lr_ratio", "1.5"), ("train", "weight_decay", "-0.1"),
    ("train", "beta1", "1.0"), ("train", "beta2", "-0.5"), ("train", "eps", "0.0"),
    ("train", "grad_clip", "-1.0"), ("train", "steps", "0"), ("train", "base_steps", "0"),
    ("train", "batch_size", "0"), ("train", "grad_accum", "0"), ("train", "batch_size", "1000000000"),
    ("train", "init", '"warm"'), ("train", "algo", '"ppo"'),
    ("dpo", "beta", "0.0"), ("dpo", "label_smoothing", "0.5"), ("dpo", "rpo_alpha", "-1.0"),
    ("dpo", "loss", '"kto"'), ("dpo", "scorer", '"vibes"'), ("dpo", "min_gap", "-1.0"),
    ("dpo", "steps", "0"), ("dpo", "batch_size", "0"), ("dpo", "lr", "5.0"),
    ("model", "d_model", "4"), ("model", "d_model", "1000000"), ("model", "n_layers", "0"),
    ("model", "n_layers", "1000"), ("model", "n_heads", "3"), ("model", "n_kv_heads", "3"),
    ("model", "max_seq_len", "4"), ("model", "max_seq_len", "100000000"), ("model", "rope_theta", "0.0"),
    ("model", "tokenizer", '"wordpiece"'), ("model", "bpe_vocab", "10"), ("model", "d_ff", "1000000000"),
    ("model", "hf", '"{dir}/no-such-checkpoint"'), ("model", "positional", '"alibi"'),
    ("model", "rope_scaling", "0.5"), ("model", "positional", '"coupled"'),
    ("generate", "n_prompts", "0"), ("generate", "n_prompts", "1000000000000"), ("generate", "n_per_prompt", "0"),
    ("generate", "n_per_prompt", "100000"), ("generate", "temperature", "-1.0"), ("generate", "temperature", "1000.0"),
    ("generate", "top_p", "0.0"), ("generate", "top_p", "2.0"), ("generate", "max_new_tokens", "0"),
    ("generate", "max_new_tokens", "100000"), ("generate", "batch_size", "0"), ("generate", "prompt_chars", "0"),
    ("generate", "endpoint", '"ftp://example"'), ("generate", "concurrency", "0"), ("generate", "timeout_s", "0.0"),
    ("generate", "max_retries", "1000"),
    ("world", "kind", '"chess"'), ("world", "ops", '["/"]'), ("world", "ops", "[]"), ("world", "digits", "[0, 3]"),
    ("world", "digits", "[3, 2]"), ("world", "ood_digits", "[1, 19]"), ("world", "train_size", "0"),
    ("world", "train_size", "1000000000000"),
    ("mix", "mode", '"blend"'), ("mix", "synthetic_ratio", "1.5"),
    ("filter", "majority", "1.0"), ("filter", "majority", "-0.5"),
    ("filter", "max_chars", "0"),
    ("eval", "eval_size", "0"), ("eval", "eval_size", "10000000000"), ("eval", "n_samples", "1"),
    ("eval", "batch_size", "0"), ("eval", "ood_size", "10000000"),
    ("run", "rounds", "5000"), ("run", "name", '""'), ("run", "name", '"a/b"'), ("run", "device", '"tpu"'),
    ("run", "threads", "100000"), ("run", "peers", "0"), ("run", "peers", "100"),
    ("judge", "mode", '"pairwise"'), ("judge", "max_new_tokens", "0"), ("judge", "endpoint", '"localhost:8000"'),
    ("reward", "eval_fraction", "1.0"), ("reward", "steps", "0"), ("reward", "on_error", '"ignore"'),
    ("reward", "lr", "0.0"), ("reward", "center", "-1.0"),
    ("self_instruct", "rouge_threshold", "0.0"), ("self_instruct", "max_new_tokens", "0"),
    ("teacher", "n_heads", "3"),
]
for section, key, v in RANGES:
    extra = "d_model = 64\n" if section == "teacher" else ""
    recipe(f"{section}.{key}={v}", f"[{section}]\n{extra}{key} = {v}\n", f"{section}.{key}")

# 3. Wrong types, unknown keys and sections, broken TOML: the file and the line are named.
for section, key, v in [("train", "lr", '"fast"'), ("train", "steps", "1.5"), ("train", "steps", "-3"),
                        ("model", "d_model", '"big"'), ("generate", "temperature", "[1]"),
                        ("world", "ops", '"+"'), ("run", "seed", "-1"), ("filter", "dedup", "1")]:
    recipe(f"type/{section}.{key}={v}", f"[{section}]\n{key} = {v}\n", "line 2")
for body, name in [("[train]\nlearning_rate = 0.1\n", "learning_rate"), ("[trian]\nlr = 0.1\n", "trian"),
                   ("[model]\nlayers = 2\n", "layers"), ("[run]\nseeds = 3\n", "seeds")]:
    recipe(f"unknown/{name}", body, name)
recipe("syntax/unclosed", "[train\nlr = 0.1\n", "r.toml")
recipe("syntax/duplicate", "[train]\nlr = 0.1\nlr = 0.2\n", "duplicate")
recipe("syntax/garbage", "\x00\x01 not toml", "r.toml")

# 4. Combinations that cannot run.
recipe("combo/dpo-one-sample", '[train]\nalgo = "dpo"\n', "generate.n_per_prompt")
recipe("combo/judge-scorer-without-judge", '[train]\nalgo = "dpo"\n[generate]\nn_per_prompt = 2\n[dpo]\nscorer = "judge"\n', "judge.mode")
recipe("combo/teacher-and-endpoint", '[teacher]\nd_model = 64\n[generate]\nendpoint = "http://127.0.0.1:9/v1"\n', "generate.endpoint")
recipe("combo/new-tokens-over-context", "[model]\nmax_seq_len = 16\n[generate]\nmax_new_tokens = 16\n", "generate.max_new_tokens")
recipe("combo/verifier-on-dataset", '[data]\npath = "{dir}/d.jsonl"\n[train]\nalgo = "dpo"\n[generate]\nn_per_prompt = 2\n', "dpo.scorer")
# Distillation (issue 17): every teacher source and loss refused by key, before round 0.
MARKOV = '[world]\nkind = "markov"\n'
recipe("distill/unknown-loss", '[teacher]\noracle = true\n' + MARKOV + '[distill]\nloss = "kl"\n', "distill.loss")
recipe("distill/beta-0", '[teacher]\noracle = true\n' + MARKOV + '[distill]\nloss = "jsd"\nbeta = 0.0\n', "distill.beta")
recipe("distill/temperature-0", '[teacher]\noracle = true\n' + MARKOV + '[distill]\nloss = "forward"\ntemperature = 0.0\n', "distill.temperature")
recipe("distill/on-policy-2", '[teacher]\noracle = true\n' + MARKOV + '[distill]\nloss = "forward"\non_policy = 2.0\n', "distill.on_policy")
recipe("distill/loss-without-teacher", '[distill]\nloss = "forward"\n', "distill.loss")
recipe("distill/loss-with-dpo", '[teacher]\noracle = true\n' + MARKOV + '[distill]\nloss = "forward"\n[train]\nalgo = "dpo"\n[generate]\nn_per_prompt = 2\n[dpo]\nscorer = "rules"\n', "distill.loss")
recipe("teacher/two-sources", '[teacher]\nd_model = 64\noracle = true\n' + MARKOV, "teacher.d_model")
recipe("teacher/oracle-arithmetic", '[teacher]\noracle = true\n', "teacher.oracle")
recipe("teacher/oracle-bpe", '[teacher]\noracle = true\n' + MARKOV + '[model]\ntokenizer = "bpe"\n', "teacher.oracle")
recipe("teacher/train-size-without-trained", '[teacher]\noracle = true\ntrain_size = 100\n' + MARKOV, "teacher.train_size")
recipe("teacher/hf-missing", '[teacher]\nhf = "{dir}/no-such-teacher"\n' + MARKOV, "no-such-teacher")
recipe("teacher/hf-other-tokenizer", '[teacher]\nhf = "{shared}/fixtures/llama"\n' + MARKOV, "tokenizer is not the student's")
recipe("teacher/endpoint-url", '[teacher]\nendpoint = "localhost:8000"\n', "teacher.endpoint")
recipe("teacher/endpoint-top-logprobs", '[teacher]\nendpoint = "http://127.0.0.1:9/v1"\ntop_logprobs = 21\n', "teacher.top_logprobs")
recipe("teacher/endpoint-on-policy", '[teacher]\nendpoint = "http://127.0.0.1:9/v1"\n[mix]\nmode = "replace"\n[distill]\nloss = "forward"\non_policy = 0.5\n', "distill.on_policy")
recipe("teacher/endpoint-mix", '[teacher]\nendpoint = "http://127.0.0.1:9/v1"\n[distill]\nloss = "forward"\n', "mix.mode")
recipe("teacher/endpoint-key-unset", '[teacher]\nendpoint = "http://127.0.0.1:9/v1"\napi_key_env = "DIDACT_CORPUS_UNSET_KEY"\n', "teacher.api_key_env")
recipe("combo/endpoint-key-unset", '[generate]\nendpoint = "http://127.0.0.1:9/v1"\napi_key_env = "DIDACT_CORPUS_UNSET_KEY"\n', "generate.api_key_env")

# 5. Datasets: malformed rows are named file:line; empty or all-bad files say why.
def dataset(name, text, contains, extra=""):
    case(f"data/{name}", ["run", "{dir}/r.toml", "--out", "{dir}/out", "--quiet"], contains,
         files={"r.toml": f'[data]\npath = "{{dir}}/d.jsonl"\n{extra}[run]\nrounds = 0\n[train]\nbase_steps = 1\n', "d.jsonl": text})
dataset("bad-json-line", '{"prompt": "a", "completion": "b"}\n{not json}\n', "d.jsonl:2")
dataset("missing-field", '{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n', "d.jsonl:2")
dataset("wrong-type", '{"prompt": "a", "completion": "b"}\n{"prompt": 3, "completion": "x"}\n', "d.jsonl:2")
dataset("empty", "", "d.jsonl")
dataset("one-row", '{"prompt": "a", "completion": "b"}\n', "d.jsonl")
dataset("all-rows-skipped", '{"x": 1}\n{"y": 2}\n{"z": 3}\n', "3 rows skipped as malformed", extra='on_error = "skip"\n')
dataset("too-long-rows", "".join(json.dumps({"prompt": "p", "completion": "x" * 400}) + "\n" for _ in range(5)), "longer than the model's context")
dataset("messages-not-a-list", '{"messages": "hi"}\n{"messages": "there"}\n', "d.jsonl:1")
case("data/missing-file", ["run", "{dir}/r.toml", "--out", "{dir}/out"], "no-such.jsonl",
     files={"r.toml": '[data]\npath = "{dir}/no-such.jsonl"\n'})
case("data/unknown-extension", ["run", "{dir}/r.toml", "--out", "{dir}/out"], "d.xml",
     files={"r.toml": '[data]\npath = "{dir}/d.xml"\n', "d.xml": "<a/>"})
case("data/bad-parquet", ["run", "{dir}/r.toml", "--out", "{dir}/out"], "d.parquet",
     files={"r.toml": '[data]\npath = "{dir}/d.parquet"\n', "d.parquet": "not parquet"})

# 6. Checkpoints: missing, truncated, wrong shapes, mismatched tokenizer.
LLAMA = "{shared}/fixtures/llama"
def ckpt(name, contains, copies, files=None, cmd="score"):
    args = {"score": ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"],
            "generate": ["generate", "--model", "{dir}/m", "--prompt", "hello", "--greedy"]}[cmd]
    f = {"in.jsonl": '{"text": "hello there"}\n'}
    f.update(files or {})
    case(f"checkpoint/{name}", args, contains, files=f, copies=copies)
full = [{"from": f"{LLAMA}/{n}", "to": f"m/{n}"} for n in ["config.json", "model.safetensors", "tokenizer.json"]]
ckpt("missing-dir", "m", [])
ckpt("no-config", "config.json", [c for c in full if "config" not in c["to"]])
ckpt("no-weights", "model.safetensors", [c for c in full if "safetensors" not in c["to"]])
ckpt("no-tokenizer", "tokenizer.json", [c for c in full if "tokenizer" not in c["to"]])
ckpt("truncated-weights", "model.safetensors", [dict(c, truncate=4000) if "safetensors" in c["to"] else c for c in full])
ckpt("empty-weights", "model.safetensors", [dict(c, truncate=0) if "safetensors" in c["to"] else c for c in full])
ckpt("garbage-config", "config.json", [c for c in full if "config" not in c["to"]], files={"m/config.json": "{nope"})
ckpt("wrong-vocab-config", "embedding", [c for c in full if "config" not in c["to"]],
     files={"m/config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "vocab_size": 7, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "max_position_embeddings": 64})})
ckpt("wrong-shape-config", "shape", [c for c in full if "config" not in c["to"]],
     files={"m/config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "max_position_embeddings": 64})})
ckpt("garbage-tokenizer", "tokenizer", [c for c in full if "tokenizer" not in c["to"]], files={"m/tokenizer.json": "[]"})
ckpt("truncated-weights-generate", "model.safetensors", [dict(c, truncate=4000) if "safetensors" in c["to"] else c for c in full], cmd="generate")

# 7. Command lines.
GOOD = full
def cli(name, args, contains, files=None, copies=None, exit=1):
    case(f"cli/{name}", args, contains, files=files, copies=copies, exit=exit)
cli("run-missing-recipe", ["run", "{dir}/nope.toml"], "nope.toml")
cli("run-bad-set", ["run", "{repo}/recipes/smoke.toml", "--set", "train.lr", "--out", "{dir}/o"], "train.lr")
cli("run-set-unknown-key", ["run", "{repo}/recipes/smoke.toml", "--set", "train.speed=3", "--out", "{dir}/o"], "speed")
cli("run-set-bad-value", ["run", "{repo}/recipes/smoke.toml", "--set", "train.lr=-1", "--out", "{dir}/o"], "train.lr")
cli("run-set-nan", ["run", "{repo}/recipes/smoke.toml", "--set", "train.eps=nan", "--out", "{dir}/o"], "train.eps")
cli("run-unknown-flag", ["run", "{repo}/recipes/smoke.toml", "--frobnicate"], "frobnicate", exit=2)
cli("unknown-command", ["train-everything"], "train-everything", exit=2)
cli("no-command", [], "Usage", exit=2)
for t in ["-1", "nan", "inf"]:
    cli(f"generate-temperature-{t}", ["generate", "--model", "{dir}/m", "--prompt", "hi", f"--temperature={t}"], "temperature", copies=GOOD)
for p in ["0", "2", "nan"]:
    cli(f"generate-top-p-{p}", ["generate", "--model", "{dir}/m", "--prompt", "hi", "--top-p", p], "top_p", copies=GOOD)
cli("generate-stop-outside-vocab", ["generate", "--model", "{dir}/m", "--prompt", "hi", "--stop-token", "4000000000"], "outside the vocabulary", copies=GOOD)
cli("generate-no-prompt", ["generate", "--model", "{dir}/m"], "--prompt", copies=GOOD, exit=2)
cli("generate-bad-device", ["generate", "--model", "{dir}/m", "--prompt", "hi", "--device", "tpu"], "tpu", copies=GOOD)
cli("generate-prompt-too-long", ["generate", "--model", "{dir}/m", "--prompt", "word " * 400], "max_seq_len", copies=GOOD)
cli("score-id-beyond-vocab", ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"], "in.jsonl:1", files={"in.jsonl": '{"input_ids": [1, 2, 100000]}\n'}, copies=GOOD)
cli("score-id-above-u32", ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"], "in.jsonl:1", files={"in.jsonl": '{"input_ids": [1, 99999999999]}\n'}, copies=GOOD)
cli("score-negative-id", ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"], "in.jsonl:1", files={"in.jsonl": '{"input_ids": [1, -5]}\n'}, copies=GOOD)
cli("score-bad-json", ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"], "in.jsonl:2", files={"in.jsonl": '{"text": "a b"}\n{oops\n'}, copies=GOOD)
cli("score-no-field", ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"], "in.jsonl:1", files={"in.jsonl": '{"body": "x"}\n'}, copies=GOOD)
cli("score-one-token", ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"], "in.jsonl:1", files={"in.jsonl": '{"input_ids": [5]}\n'}, copies=GOOD)
cli("score-missing-input", ["score", "--model", "{dir}/m", "--input", "{dir}/nope.jsonl"], "nope.jsonl", copies=GOOD)
cli("score-too-long", ["score", "--model", "{dir}/m", "--input", "{dir}/in.jsonl"], "in.jsonl:1", files={"in.jsonl": json.dumps({"input_ids": [5] * 5000}) + "\n"}, copies=GOOD)
cli("metrics-empty-input", ["metrics", "--input", "{dir}/s.txt"], "no samples", files={"s.txt": ""})
cli("metrics-empty-reference", ["metrics", "--input", "{dir}/s.txt", "--reference", "{dir}/r.txt"], "no reference", files={"s.txt": "a b\nc d\n", "r.txt": ""})
cli("metrics-missing-input", ["metrics", "--input", "{dir}/none.txt"], "none.txt")
cli("metrics-bad-extension", ["metrics", "--input", "{dir}/s.csv"], "s.csv", files={"s.csv": "a,b"})
cli("metrics-jsonl-no-field", ["metrics", "--input", "{dir}/s.jsonl", "--field", "completion"], "s.jsonl:1", files={"s.jsonl": '{"text": "x"}\n'})
cli("report-not-a-run", ["report", "{dir}"], "not a run directory")
cli("report-several-without-out", ["report", "{dir}/a", "{dir}/b"], "not a run directory")
cli("doctor-unknown-device", ["doctor", "--device", "tpu"], "unknown device")
cli("serve-bad-faults", ["serve", "--model", "{dir}/m", "--fault-every", "2", "--faults", "teapot"], "teapot", copies=GOOD)
cli("serve-missing-model", ["serve", "--model", "{dir}/nope"], "nope")
cli("train-rm-no-data", ["train-rm", "{dir}/r.toml", "--out", "{dir}/o"], "reward.data", files={"r.toml": "[run]\nname = \"x\"\n"})
cli("train-rm-bad-prefs", ["train-rm", "{dir}/r.toml", "--out", "{dir}/o"], "p.jsonl:1",
    files={"r.toml": '[reward]\ndata = "{dir}/p.jsonl"\non_error = "fail"\n', "p.jsonl": '{"prompt": "a"}\n'})
cli("sweep-no-grid", ["sweep", "{repo}/recipes/smoke.toml", "--out", "{dir}/s"], "no [sweep] grid")
cli("resume-with-other-recipe", ["run", "{repo}/recipes/smoke.toml", "--resume", "--set", "train.lr=0.01", "--out", "{dir}/o"], "differs",
    files={"o/recipe.resolved.toml": "[run]\nname = \"other\"\n", "o/journal.jsonl": ""})
cli("run-into-existing", ["run", "{repo}/recipes/smoke.toml", "--out", "{dir}/o"], "--resume", files={"o/journal.jsonl": ""})

# Detector rules (issue 18): the noise guard and persistence are checked by key; calibrate
# needs runs and rules.
RULE = '[detector]\nrules = [{{ metric = "eval/loss_real", kind = "rise_over_best", pct = 5.0, {} }}]\n'
recipe("detector/noise_sd-negative", RULE.format("noise_sd = -0.1"), "noise_sd >= 0")
recipe("detector/noise_sd-nan", RULE.format("noise_sd = nan"), "noise_sd")
recipe("detector/rounds-zero", RULE.format("rounds = 0"), "rounds in 1..=100")
recipe("detector/rounds-float", RULE.format("rounds = 1.5"), "line 2")
recipe("detector/unknown-field", RULE.format("sigma = 2"), "sigma")
cli("calibrate-not-a-run", ["calibrate", "--stable", "{dir}", "--collapsing", "{dir}", "--recipe", "{repo}/recipes/collapse-replace.toml", "--out", "{dir}/c"], "not a run directory")
cli("calibrate-no-rules", ["calibrate", "--stable", "{dir}", "--collapsing", "{dir}", "--recipe", "{repo}/recipes/smoke.toml", "--out", "{dir}/c"], "no [detector] rules")
cli("calibrate-no-collapsing", ["calibrate", "--stable", "{dir}", "--out", "{dir}/c"], "--collapsing", exit=2)
cli("calibrate-bad-rule-set", ["calibrate", "--stable", "{dir}", "--collapsing", "{dir}", "--recipe", "{repo}/recipes/collapse-replace.toml", "--set", "detector.rules=[{metric = \"x\", kind = \"up\", pct = 1.0}]", "--out", "{dir}/c"], "detector.rules")

# External trainer (issue 16): the command names its inputs and output; one objective.
recipe("external/no-out", '[train]\nexternal = { command = "trl sft {data} {model}" }\n', "{out}")
recipe("external/no-data", '[train]\nexternal = { command = "trl sft {model} {out}" }\n', "{data}")
recipe("external/sft+dpo", '[train]\nalgo = "sft+dpo"\nexternal = { command = "x {data} {model} {out}" }\n[generate]\nn_per_prompt = 2\n', "sft+dpo")
recipe("external/timeout-negative", '[train]\nexternal = { command = "x {data} {model} {out}", timeout_s = -1.0 }\n', "timeout_s")
recipe("external/unknown-field", '[train]\nexternal = { command = "x {data} {model} {out}", gpus = 8 }\n', "gpus")
recipe("external/with-distill", '[train]\nexternal = { command = "x {data} {model} {out}" }\n[world]\nkind = "markov"\n[teacher]\noracle = true\n[distill]\nloss = "forward"\n', "no [distill]")
recipe("lora/rank-zero", '[train]\nlora = { r = 0, alpha = 16, targets = ["q_proj"] }\n', "r >= 1")
recipe("lora/alpha-negative", '[train]\nlora = { r = 8, alpha = -1, targets = ["q_proj"] }\n', "alpha > 0")
recipe("lora/dropout", '[train]\nlora = { r = 8, alpha = 16, dropout = 0.05, targets = ["q_proj"] }\n', "dropout = 0")
recipe("lora/unknown-target", '[train]\nlora = { r = 8, alpha = 16, targets = ["qproj"] }\n', "`qproj`")
recipe("lora/no-targets", '[train]\nlora = { r = 8, alpha = 16, targets = [] }\n', "non-empty list")
recipe("lora/unknown-field", '[train]\nlora = { r = 8, alpha = 16, targets = ["q_proj"], rank = 4 }\n', "rank")
recipe("lora/missing-alpha", '[train]\nlora = { r = 8, targets = ["q_proj"] }\n', "alpha")
recipe("lora/with-external", '[train]\nlora = { r = 8, alpha = 16, targets = ["q_proj"] }\nexternal = { command = "x {data} {model} {out}" }\n', "no [train] external")
recipe("precision/unknown", '[train]\nprecision = "fp16"\n', "`f32` or `bf16`")
recipe("precision/bf16-with-lora", '[train]\nprecision = "bf16"\nlora = { r = 8, alpha = 16, targets = ["q_proj"] }\n', "burn does not nest")
cli("train-missing-model", ["train", "--model", "{dir}/nope", "--data", "{dir}/d.jsonl", "--out", "{dir}/o"], "nope", files={"d.jsonl": '{"prompt": "a", "completion": "b"}\n'})
cli("train-bad-algo", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o", "--algo", "ppo"], "--algo", copies=GOOD, files={"d.jsonl": '{"prompt": "a", "completion": "b"}\n'})
cli("train-lr-nan", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o", "--lr", "nan"], "--lr", copies=GOOD, files={"d.jsonl": '{"prompt": "a", "completion": "b"}\n'})
cli("train-steps-zero", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o", "--steps", "0"], "--steps", copies=GOOD, files={"d.jsonl": '{"prompt": "a", "completion": "b"}\n'})
cli("train-bad-loss", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o", "--algo", "dpo", "--loss", "kto"], "--loss", copies=GOOD, files={"d.jsonl": '{"prompt": "a", "chosen": "b", "rejected": "c"}\n'})
cli("train-dpo-rows-for-sft", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o"], "d.jsonl:1", copies=GOOD, files={"d.jsonl": '{"prompt": "a", "chosen": "b", "rejected": "c"}\n'})
cli("train-sft-rows-for-dpo", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o", "--algo", "dpo"], "d.jsonl:1", copies=GOOD, files={"d.jsonl": '{"prompt": "a", "completion": "b"}\n'})
cli("train-empty-data", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o", "--on-error", "skip"], "no prompt/completion rows", copies=GOOD, files={"d.jsonl": '{"oops": 1}\n'})
cli("train-row-too-long", ["train", "--model", "{dir}/m", "--data", "{dir}/d.jsonl", "--out", "{dir}/o"], "longer than the model's context", copies=GOOD, files={"d.jsonl": json.dumps({"prompt": "a", "completion": "word " * 2000}) + "\n"})

cli("sweep-launcher-without-cmd", ["sweep", "{repo}/recipes/synthetic-ratio-ablation.toml", "--out", "{dir}/s", "--launcher", "sbatch --wait"], "{cmd}")

recipe("eval/by_length-markov", '[world]\nkind = "markov"\n[eval]\nby_length = true\n', "eval.by_length")
recipe("eval/by_length-no-ood", '[eval]\nby_length = true\nood_size = 0\n', "eval.by_length")
recipe("generate/digits_step-markov", '[world]\nkind = "markov"\n[generate]\ndigits_step = 1\n', "generate.digits_step")
recipe("generate/digits_step-rationales", '[world]\nrationales = true\n[generate]\ndigits_step = 1\n', "generate.digits_step")
recipe("generate/digits_step-past-context", '[run]\nrounds = 5\n[model]\nmax_seq_len = 24\n[generate]\ndigits_step = 2\nmax_new_tokens = 6\n', "round 5 would need 13-digit operands")
recipe("generate/digits_schedule-short", '[run]\nrounds = 3\n[generate]\ndigits_schedule = [4, 5]\n', "at least run.rounds = 3 entries")
recipe("generate/digits_schedule-and-step", '[run]\nrounds = 2\n[generate]\ndigits_step = 1\ndigits_schedule = [4, 5]\n', "not both")
recipe("generate/digits_schedule-zero", '[run]\nrounds = 2\n[generate]\ndigits_schedule = [4, 0]\n', "generate.digits_schedule")
recipe("generate/digits_schedule-text", '[run]\nrounds = 1\n[world]\nkind = "markov"\n[generate]\ndigits_schedule = [4]\n', "generate.digits_schedule")
recipe("generate/digits_schedule-past-context", '[run]\nrounds = 2\n[model]\nmax_seq_len = 24\n[generate]\nmax_new_tokens = 6\ndigits_schedule = [8, 4]\n', "round 1 would need 8-digit operands")
recipe("generate/digits_schedule-not-a-list", '[generate]\ndigits_schedule = 4\n', "expected a sequence")
recipe("world/products-past-9-digits", '[world]\nops = ["*"]\ndigits = [1, 10]\n', "<= 9")
recipe("world/reversed-subtraction", '[world]\nops = ["-"]\nreversed = true\n', "world.reversed")
recipe("world/reversed-rationales", '[world]\nreversed = true\nrationales = true\n', "world.reversed")
recipe("run/peers-dpo", '[run]\npeers = 3\n[train]\nalgo = "sft+dpo"\n[generate]\nn_per_prompt = 2\n', "run.peers")
recipe("run/peers-judge", '[run]\npeers = 2\n[judge]\nmode = "score"\n', "run.peers")
recipe("filter/carry_digit-alone", '[filter]\ncarry_digit = true\n', "filter.carry_digit")
recipe("filter/prefix_check-plain", '[filter]\nprefix_check = true\n', "filter.prefix_check")
recipe("filter/top_check-plain", '[filter]\ntop_check = true\n', "filter.top_check")
recipe("filter/top_check-markov", '[world]\nkind = "markov"\n[filter]\ntop_check = true\n', "high-digit")
recipe("filter/answer_length-markov", '[world]\nkind = "markov"\n[filter]\nanswer_length = true\n', "filter.answer_length")
recipe("filter/answer_length-products", '[world]\nops = ["*"]\n[filter]\nanswer_length = true\n', "filter.answer_length")
recipe("generate/digits_step-overflow", '[run]\nrounds = 10\n[world]\nops = ["*"]\n[model]\nmax_seq_len = 128\n[generate]\ndigits_step = 1\n', "at most 9 digits")

# Memory: each key within its bounds, the whole run far beyond any laptop.
recipe("memory/d65536-256-layers", "[model]\nd_model = 65536\nn_layers = 256\nn_heads = 256\nn_kv_heads = 256\n", "parameters_and_adamw")
recipe("memory/70b-shape", "[model]\nd_model = 8192\nn_layers = 64\nn_heads = 64\nn_kv_heads = 8\nd_ff = 28672\n", "needs an estimated")
recipe("memory/activations", "[world]\nkind = \"markov\"\nmax_chars = 4000\nend_prob = 0.0001\n[model]\nd_model = 64\nn_layers = 2\nmax_seq_len = 4096\n[train]\nbatch_size = 4096\n", "train.batch_size")
cli("serve-zero-workers", ["serve", "--model", "{dir}/m", "--workers", "0"], "--workers", copies=GOOD, exit=2)
cli("serve-zero-timeout", ["serve", "--model", "{dir}/m", "--read-timeout-secs", "0"], "--read-timeout-secs", copies=GOOD, exit=2)

# Raw HTTP requests to `didact serve` (one server for all; bad_inputs.rs starts it on the
# fixture Llama with --max-body-bytes 100000 --read-timeout-secs 2). `status` is the answer's
# HTTP status; `contains` a substring of its body.
def http(name, raw, status, contains):
    cases.append({"name": f"http/{name}", "http": raw, "status": status, "contains": contains})


def post(path, body, extra=""):
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body.encode())}\r\nConnection: close\r\n{extra}\r\n{body}"


C, CHAT = "/v1/completions", "/v1/chat/completions"
http("not-json", post(C, "{oops"), 400, "invalid JSON")
http("json-array-body", post(C, "[1, 2]"), 400, "JSON object")
http("no-prompt", post(C, "{}"), 400, "prompt")
http("prompt-number", post(C, '{"prompt": 5}'), 400, "prompt")
http("prompt-mixed-list", post(C, '{"prompt": ["a", [1]]}'), 400, "prompt")
http("prompt-id-beyond-vocab", post(C, '{"prompt": [1, 4000000000]}'), 400, "vocabulary")
http("prompt-too-long", post(C, json.dumps({"prompt": "word " * 3000})), 400, "context")
http("n-million", post(C, '{"prompt": "a", "n": 1000000}'), 400, "`n`")
http("choices-over-256", post(C, json.dumps({"prompt": ["a"] * 100, "n": 3})), 400, "256")
http("temperature-negative", post(C, '{"prompt": "a", "temperature": -1}'), 400, "temperature")
http("temperature-string", post(C, '{"prompt": "a", "temperature": "hot"}'), 400, "temperature")
http("top-p-two", post(C, '{"prompt": "a", "top_p": 2}'), 400, "top_p")
http("max-tokens-zero", post(C, '{"prompt": "a", "max_tokens": 0}'), 400, "max_tokens")
http("max-tokens-negative", post(C, '{"prompt": "a", "max_tokens": -5}'), 400, "max_tokens")
http("logprobs-too-many", post(C, '{"prompt": "a", "logprobs": 50}'), 400, "logprobs")
http("seed-negative", post(C, '{"prompt": "a", "seed": -3}'), 400, "seed")
http("stop-not-strings", post(C, '{"prompt": "a", "stop": [1]}'), 400, "stop")
http("stop-too-many", post(C, json.dumps({"prompt": "a", "stop": [str(i) for i in range(20)]})), 400, "stop")
http("penalty", post(C, '{"prompt": "a", "presence_penalty": 1}'), 400, "presence_penalty")
http("logit-bias", post(C, '{"prompt": "a", "logit_bias": {"3": 100}}'), 400, "logit_bias")
http("echo", post(C, '{"prompt": "a", "echo": true}'), 400, "echo")
http("unknown-field", post(C, '{"prompt": "a", "temprature": 1}'), 400, "temprature")
http("stream-options-without-stream", post(C, '{"prompt": "a", "stream_options": {"include_usage": true}}'), 400, "stream_options")
http("chat-no-messages", post(CHAT, '{"prompt": "a"}'), 400, "prompt")
http("chat-messages-not-list", post(CHAT, '{"messages": "hi"}'), 400, "messages")
http("chat-top-logprobs-alone", post(CHAT, '{"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}'), 400, "logprobs")
http("body-over-limit-announced", f"POST {C} HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n", 413, "larger than")
http("body-over-limit-chunked", f"POST {C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + ("ffff\r\n" + "x" * 0xffff + "\r\n") * 2 + "0\r\n\r\n", 413, "larger than")
http("body-never-arrives", f"POST {C} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{{", 408, "did not arrive")
http("get-completions", f"GET {C} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "not allowed")
http("delete-models", "DELETE /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "not allowed")
http("unknown-route", "GET /v2/everything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "no route")
http("garbage-request-line", "HELLO\r\n\r\n", 400, "")

out = pathlib.Path(__file__).with_name("cases.jsonl")
out.write_text("".join(json.dumps(c) + "\n" for c in cases))
print(f"{len(cases)} cases -> {out}")
