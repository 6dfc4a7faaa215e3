"""The student: a small encoder (all-MiniLM-L6-v2, vocabulary pruned to the domain, optionally
fewer layers) with the fusion head, distilled from the teacher's soft labels plus hard labels.

Training runs in two steps: the head first learns on the frozen encoder's pooled embeddings —
computed by the shipped int8 encoder graph once the build has made it (``StudentFactory.embedder``,
``export.graph_embedder``), so the head learns the arithmetic the device runs — then, unless the
build asks for a frozen encoder, every weight is fine-tuned for a few epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from export.modeling import FusedClassifier, FusionHead
from export.teacher import TextEncoder
from export.train import HeadConfig, StudentConfig, seed_everything, train_head, train_student


class Embedder(Protocol):
    def embed(self, texts: Sequence[str], batch_size: int = ..., desc: str = ...) -> np.ndarray: ...


@dataclass
class StudentFactory:
    """Makes a fresh student encoder (same weights every time) and knows its tokenizer."""

    make_encoder: Callable[[], torch.nn.Module]
    tokenizer_json: str
    pad_id: int
    pad_token: str
    # The shipped encoder graph (int8) that computes the pooled vectors the heads learn on; None:
    # the PyTorch encoder computes them (set by the build once the encoder graphs exist).
    embedder: Embedder | None = None
    # Pooled vectors of the *pretrained* encoder by text: the same in every fold, so computed once.
    pooled_cache: dict[str, np.ndarray] = field(default_factory=dict)

    def pretrained_pooled(self, text: TextEncoder, texts: Sequence[str], desc: str) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.pooled_cache))
        if missing:
            source = self.embedder if self.embedder is not None else text
            self.pooled_cache.update(zip(missing, source.embed(missing, desc=desc)))
        return np.stack([self.pooled_cache[t] for t in texts])

    def tokenizer(self) -> Tokenizer:
        return Tokenizer.from_str(self.tokenizer_json)

    @property
    def pad(self) -> tuple[int, str]:
        return self.pad_id, self.pad_token


@dataclass(frozen=True)
class StudentPlan:
    finetune: bool = True
    head: HeadConfig = HeadConfig()
    train: StudentConfig = StudentConfig()


def fit_student(factory: StudentFactory, texts: Sequence[str], features: np.ndarray, labels: np.ndarray,
                soft: np.ndarray, plan: StudentPlan, desc: str = "student") -> FusedClassifier:
    """``labels`` 0..4 or -1; ``soft`` teacher probabilities at the distillation temperature."""
    seed_everything(plan.train.seed)
    encoder = factory.make_encoder()
    text = TextEncoder(encoder, factory.tokenizer(), factory.pad_id, factory.pad_token, plan.train.max_len)
    pooled = factory.pretrained_pooled(text, texts, desc=f"{desc} embed")
    scale = 1.0 / (float((pooled - pooled.mean(axis=0)).std()) or 1.0)
    head = FusionHead(pooled.shape[1], features.shape[1], plan.head.dropout)
    train_head(pooled * scale, features, labels, plan.head, soft=soft, alpha=plan.train.alpha,
               distill_temperature=plan.train.distill_temperature, head=head)
    model = FusedClassifier(encoder, head, text_scale=scale)
    if plan.finetune and plan.train.epochs > 0:
        train_student(model, factory.tokenizer(), factory.pad, texts, features, labels, soft, plan.train, desc=desc)
    model.eval()
    return model
