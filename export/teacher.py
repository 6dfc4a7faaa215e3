"""The teacher: all-mpnet-base-v2 sentence embeddings of the complaint, fused with the
structured features in a trained head.

The encoder is frozen in this build (fine-tuning a 110M-parameter encoder in every CV fold
does not fit a shared 2-core CPU); its mean-pooled embeddings are computed once, standardised
with one global scale (a few of mpnet's dimensions are constant, so no per-dimension scaling),
and the fusion head is trained per fold. The teacher's value to the student is its soft labels
on the transfer set, which a frozen encoder provides as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm import tqdm

from export.modeling import FusionHead, mean_pool
from export.train import HeadConfig, head_logits, train_head


@dataclass
class TextEncoder:
    """An encoder module with its tokenizer and padding: texts → mean-pooled vectors."""

    module: torch.nn.Module
    tokenizer: Tokenizer
    pad_id: int
    pad_token: str
    max_len: int

    @classmethod
    def from_folder(cls, module: torch.nn.Module, folder: Path, max_len: int) -> "TextEncoder":
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        padding = tokenizer.padding or {}
        return cls(module, tokenizer, int(padding.get("pad_id", 0)), str(padding.get("pad_token", "[PAD]")), max_len)

    def batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        self.tokenizer.enable_truncation(max_length=self.max_len)
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)
        encodings = self.tokenizer.encode_batch(list(texts))
        return (torch.as_tensor([e.ids for e in encodings], dtype=torch.long),
                torch.as_tensor([e.attention_mask for e in encodings], dtype=torch.long))

    @torch.no_grad()
    def embed(self, texts: Sequence[str], batch_size: int = 64, desc: str = "embed") -> np.ndarray:
        self.module.eval()
        out = []
        for start in tqdm(range(0, len(texts), batch_size), desc=desc, leave=False, mininterval=2.0):
            ids, mask = self.batch(texts[start:start + batch_size])
            hidden = self.module(input_ids=ids, attention_mask=mask).last_hidden_state
            out.append(mean_pool(hidden, mask).numpy())
        return np.concatenate(out).astype(np.float32)


@dataclass
class Standardiser:
    mean: np.ndarray
    scale: float

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardiser":
        mean = x.mean(axis=0)
        return cls(mean, float((x - mean).std()) or 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale


@dataclass
class Teacher:
    """A fusion head over standardised frozen embeddings."""

    head: FusionHead
    standardiser: Standardiser

    def logits(self, embeddings: np.ndarray, features: np.ndarray) -> np.ndarray:
        return head_logits(self.head, self.standardiser(embeddings), features)


def fit_teacher(embeddings: np.ndarray, features: np.ndarray, labels: np.ndarray, config: HeadConfig) -> Teacher:
    standardiser = Standardiser.fit(embeddings)
    head = train_head(standardiser(embeddings), features, labels, config)
    return Teacher(head, standardiser)
