#!/usr/bin/env python3
"""PyTorch eager reference for benches/benches/throughput.rs.

Same workload as didact-benches (benches/src/lib.rs): a Llama-style decoder with vocab 512,
d_model 256, 4 layers, 4 heads / 2 KV heads, SwiGLU (d_ff 704 = Llama's 8/3 rule rounded to 32),
RMSNorm, rotate-half RoPE, untied head; sequence 128, batch 16.

  train:  AdamW optimizer steps on 16 x 128 tokens (cross-entropy on all but the first token,
          global-norm clip 1.0) -> tokens/s = steps * 16 * 128 / seconds
  dpo:    sigmoid-DPO steps on 8 pairs x 128 tokens (prompt 16 masked), cached reference log-probs
  sample: 16 prompts of 16 tokens, 112 new tokens each with a KV cache, multinomial sampling at
          temperature 1 -> tokens/s = 16 * 112 / seconds

  --smollm2: instead, the SmolLM2-135M shape (vocab 49152, d_model 576, 30 layers, 9/3 heads,
          SwiGLU 1536, tied embeddings): forward and SFT-step tokens/s on 4 x 128 and peak RSS, as
          benches/src/bin/smollm2_size.rs measures didact (run it in a fresh process).

Usage: python3 benches/reference/torch_reference.py [--threads 2] [--json] [--smollm2]
Needs `python3 -m pip install torch`. Not part of the test suite.
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, D, LAYERS, HEADS, KV, SEQ, BATCH, PROMPT = 512, 256, 4, 4, 2, 128, 16, 16
NEW = SEQ - PROMPT


class Shape:
    """A Llama-family shape: the reference workload's by default, or SmolLM2-135M's
    (benches/src/bin/smollm2_size.rs)."""

    def __init__(self, vocab=VOCAB, d=D, layers=LAYERS, heads=HEADS, kv=KV, ff=None, seq=SEQ,
                 rope_theta=10000.0, tied=False):
        self.vocab, self.d, self.layers, self.heads, self.kv, self.seq = vocab, d, layers, heads, kv, seq
        self.ff = ff or math.ceil(8 * d / 3 / 32) * 32
        self.hd = d // heads
        self.rope_theta, self.tied = rope_theta, tied


REFERENCE = Shape()
SMOLLM2 = Shape(vocab=49152, d=576, layers=30, heads=9, kv=3, ff=1536, seq=2048,
                rope_theta=100000.0, tied=True)


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope_tables(s):
    inv = 1.0 / s.rope_theta ** (torch.arange(0, s.hd, 2).float() / s.hd)
    freqs = torch.outer(torch.arange(s.seq).float(), inv)
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


class Block(nn.Module):
    def __init__(self, s):
        super().__init__()
        d, hd = s.d, s.hd
        self.s = s
        self.ln1, self.ln2 = RMSNorm(d), RMSNorm(d)
        self.q = nn.Linear(d, s.heads * hd, bias=False)
        self.k = nn.Linear(d, s.kv * hd, bias=False)
        self.v = nn.Linear(d, s.kv * hd, bias=False)
        self.o = nn.Linear(s.heads * hd, d, bias=False)
        self.gate = nn.Linear(d, s.ff, bias=False)
        self.up = nn.Linear(d, s.ff, bias=False)
        self.down = nn.Linear(s.ff, d, bias=False)

    def forward(self, x, cos, sin, cache=None):
        b, t, _ = x.shape
        s = self.s
        h = self.ln1(x)
        q = self.q(h).view(b, t, s.heads, s.hd).transpose(1, 2)
        k = self.k(h).view(b, t, s.kv, s.hd).transpose(1, 2)
        v = self.v(h).view(b, t, s.kv, s.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        k = k.repeat_interleave(s.heads // s.kv, 1)
        v = v.repeat_interleave(s.heads // s.kv, 1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=(t > 1))
        x = x + self.o(a.transpose(1, 2).reshape(b, t, s.d))
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, s=REFERENCE):
        super().__init__()
        self.embed = nn.Embedding(s.vocab, s.d)
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.layers))
        self.norm = RMSNorm(s.d)
        self.head = nn.Linear(s.d, s.vocab, bias=False)
        cos, sin = rope_tables(s)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)
        if s.tied:
            self.head.weight = self.embed.weight

    def forward(self, ids, start=0, caches=None):
        t = ids.shape[1]
        cos, sin = self.cos[start : start + t], self.sin[start : start + t]
        x = self.embed(ids)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, None if caches is None else caches[i])
        return self.head(self.norm(x))


def timed(step, steps, reps):
    """Median seconds of `steps` calls of `step` over `reps` repetitions, after 2 warm-up calls."""
    for _ in range(2):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def data(gen):
    return torch.randint(3, VOCAB, (BATCH, SEQ), generator=gen)


def bench_train(model, steps, reps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    batch = data(gen)

    def step():
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return steps * BATCH * SEQ / timed(step, steps, reps)


def bench_dpo(model, steps, reps, beta=0.1):
    """DPO (sigmoid) steps on BATCH/2 pairs of SEQ tokens, prompt PROMPT tokens masked, cached
    reference log-probs; AdamW + clip as the train step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    gen = torch.Generator().manual_seed(1)
    batch = data(gen)  # rows [chosen_0..chosen_{B/2-1}, rejected_0..]
    batch[BATCH // 2 :, :PROMPT] = batch[: BATCH // 2, :PROMPT]
    mask = torch.zeros(BATCH, SEQ - 1)
    mask[:, PROMPT - 1 :] = 1.0

    def logps(m):
        lp = F.log_softmax(m(batch[:, :-1]), -1).gather(2, batch[:, 1:].unsqueeze(2)).squeeze(2)
        return (lp * mask).sum(-1)

    with torch.no_grad():
        ref = logps(model)

    def step():
        pi = logps(model)
        h = BATCH // 2
        delta = (pi[:h] - ref[:h]) - (pi[h:] - ref[h:])
        loss = -F.logsigmoid(beta * delta).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return steps * BATCH * SEQ / timed(step, steps, reps)


@torch.no_grad()
def bench_sample(model, reps):
    gen = torch.Generator().manual_seed(0)
    prompts = data(gen)[:, :PROMPT]

    def run():
        caches = [dict() for _ in model.blocks]
        logits = model(prompts, 0, caches)[:, -1]
        pos = PROMPT
        for _ in range(NEW):
            nxt = torch.multinomial(F.softmax(logits, -1), 1, generator=gen)
            logits = model(nxt, pos, caches)[:, -1]
            pos += 1

    run()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return BATCH * NEW / statistics.median(times)


def peak_rss_mib():
    """Peak resident set size of this process, MiB (Linux `ru_maxrss` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_smollm2(threads):
    """What `smollm2_size measure` does, in PyTorch: forward tokens/s on 4 x 128 (1 warm-up, 3
    timed), then two SFT steps (AdamW, clip 1.0, loss on tokens 1..127) timed together from a
    fresh optimizer, as didact's SFT report times them and counting the 127 predicted tokens
    per row as it does; peak RSS of this process after each."""
    b, t = 4, 128
    model = Llama(SMOLLM2)
    params = sum(p.numel() for p in model.parameters())
    rss_model = peak_rss_mib()
    ids = torch.tensor([3 + (i * 7919 % 49000) for i in range(b * t)]).view(b, t)
    with torch.no_grad():
        model(ids)
        t0 = time.perf_counter()
        for _ in range(3):
            model(ids)
        fwd = 3 * b * t / (time.perf_counter() - t0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    t1 = time.perf_counter()
    for _ in range(2):
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, SMOLLM2.vocab), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    sft = 2 * b * (t - 1) / (time.perf_counter() - t1)  # predicted tokens, as didact's report counts
    return {
        "torch_version": torch.__version__,
        "threads": threads,
        "params_millions": params / 1e6,
        "peak_rss_mib_after_init": rss_model,
        "forward_tokens_per_s": fwd,
        "sft_step_tokens_per_s": sft,
        "peak_rss_mib_after_sft": peak_rss_mib(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smollm2", action="store_true", help="only the SmolLM2-135M-shape SFT step and peak memory")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.smollm2:
        out = bench_smollm2(a.threads)
        print(json.dumps(out) if a.json else json.dumps(out, indent=2))
        return
    model = Llama()
    out = {
        "torch_version": torch.__version__,
        "threads": a.threads,
        "train_tokens_per_s": bench_train(model, 2, a.reps),
        "dpo_tokens_per_s": bench_dpo(model, 2, a.reps),
        "sample_tokens_per_s": bench_sample(model.eval(), a.reps),
    }
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
