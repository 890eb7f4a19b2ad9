"""A torchtune ModelTokenizer over a checkpoint's own tokenizer.json that tokenizes a row the
way didact does: prompt ++ completion ++ [eos], no BOS, no chat template, loss on the completion
(and eos) only. Lets `tune run` train a didact round on its TRL-format rows
(recipes/external-torchtune-sft.toml; torchtune's `instruct_dataset` maps `prompt`/`completion`
to the user/assistant messages this receives).
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tokenizers import Tokenizer


class DidactTokenizer:
    def __init__(self, checkpoint_dir: str, max_seq_len: Optional[int] = None):
        d = Path(checkpoint_dir)
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.eos_id = json.loads((d / "config.json").read_text())["eos_token_id"]
        self.pad_id = self.eos_id
        self.max_seq_len = max_seq_len
        self.special_tokens: Dict[str, int] = {}

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = True) -> List[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids + [self.eos_id] if add_eos else ids

    def decode(self, token_ids: List[int]) -> str:
        return self.tokenizer.decode(token_ids)

    def tokenize_messages(self, messages, add_end_tokens: bool = True, **_: Any) -> Tuple[List[int], List[bool]]:
        tokens: List[int] = []
        mask: List[bool] = []  # True = no loss (torchtune's convention)
        for m in messages:
            text = "".join(c["content"] for c in m.content if c["type"] == "text")
            ids = self.tokenizer.encode(text, add_special_tokens=False).ids
            tokens += ids
            mask += [m.masked] * len(ids)
        if add_end_tokens:
            tokens.append(self.eos_id)
            mask.append(False)
        if self.max_seq_len is not None:
            tokens, mask = tokens[: self.max_seq_len], mask[: self.max_seq_len]
        return tokens, mask

    def __call__(self, sample: Mapping[str, Any], inference: bool = False) -> Mapping[str, Any]:
        messages = sample.pop("messages")
        tokens, mask = self.tokenize_messages(messages, add_end_tokens=not inference)
        sample["tokens"] = tokens
        sample["mask"] = mask
        return sample
