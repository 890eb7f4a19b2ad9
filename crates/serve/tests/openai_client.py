"""The official `openai` Python client against `didact serve` (run by openai_client.rs with
the server's base URL as argv[1]; the client is a test-only, pip-installed dependency).

Streaming must give the same text, finish reason and log-probabilities as the unstreamed
answer; lists of prompts and `n` answer every choice; a seed repeats its sample; an
out-of-range value raises BadRequestError with the server's message."""

import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="unused", max_retries=0, timeout=60)
model = client.models.list().data[0].id
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAIL {what}", flush=True)
        sys.exit(1)
    checks += 1


# Completions: unstreamed vs streamed, with logprobs and a stop string.
args = dict(model=model, prompt="The number 3 is", max_tokens=12, seed=5, logprobs=3, stop=[" the"])
whole = client.completions.create(**args)
c = whole.choices[0]
check(c.finish_reason in ("stop", "length"), "completion finish_reason")
check(len(c.logprobs.tokens) == whole.usage.completion_tokens, "one logprob per token")
check(all(len(t) >= 3 for t in c.logprobs.top_logprobs), "3 alternatives per token")
check(all(lp <= 0 for lp in c.logprobs.token_logprobs), "log-probabilities <= 0")
again = client.completions.create(**args)
check(again.choices[0].text == c.text, "a seed repeats its sample")
text, finish, n_lp = "", None, 0
for chunk in client.completions.create(stream=True, **args):
    for ch in chunk.choices:
        text += ch.text
        n_lp += len(ch.logprobs.tokens) if ch.logprobs else 0
        finish = ch.finish_reason or finish
check(text == c.text, f"streamed completion {text!r} == {c.text!r}")
check(finish == c.finish_reason, "streamed finish_reason")
check(n_lp == len(c.logprobs.tokens), "streamed logprobs")

# A list of prompts with n = 2: four choices, each as its prompt and seed alone.
many = client.completions.create(model=model, prompt=["A cat", "The sky"], n=2, max_tokens=6, seed=11)
check(len(many.choices) == 4, "4 choices")
alone = client.completions.create(model=model, prompt="The sky", max_tokens=6, seed=12)
check(many.choices[3].text == alone.choices[0].text, "prompt 1, sample 1 = seed 12 alone")

# Chat: unstreamed vs streamed with a usage chunk.
msgs = [{"role": "user", "content": "Tell me about cats"}]
cargs = dict(model=model, messages=msgs, max_tokens=10, seed=2, logprobs=True, top_logprobs=2)
whole = client.chat.completions.create(**cargs)
m = whole.choices[0]
check(m.message.role == "assistant", "chat role")
check(len(m.logprobs.content) == whole.usage.completion_tokens, "chat logprobs per token")
text, finish, usage, roles = "", None, None, 0
stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **cargs)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for ch in chunk.choices:
        roles += ch.delta.role == "assistant"
        text += ch.delta.content or ""
        finish = ch.finish_reason or finish
check(text == m.message.content, f"streamed chat {text!r} == {m.message.content!r}")
check(finish == m.finish_reason, "streamed chat finish_reason")
check(roles == 1, "one role delta")
check(usage is not None and usage.total_tokens == whole.usage.total_tokens, "usage chunk")

# Out of range: a 400 the client raises with the server's message.
try:
    client.completions.create(model=model, prompt="x", temperature=-1)
    check(False, "temperature -1 refused")
except openai.BadRequestError as e:
    check("temperature" in str(e), f"message names temperature: {e}")

print(f"openai {openai.__version__}: {checks} checks passed", flush=True)
