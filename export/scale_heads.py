"""The ESI scale: a level head and a critical-outcome head on the shared frozen encoder.

The bundle's encoder and structured features are shared by every scale; what differs per scale
is kept apart. For ESI the head reads the pooled complaint vector, the structured features and
the complaint's similarity to each standard presenting complaint (CEDIS/CTAS list, embedded by
the same encoder) and answers two things at once: the nurse's ESI level (5 logits) and the
log-odds that the visit ends in a critical care unit or in death in the ED (1 logit). The outcome
is a training target only; at run time it can only *raise* a level (see ``edge.clinical.decision_rule``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.train import seed_everything, warmup_linear

FEATURE_WIDTH = 64
HIDDEN = 256


@dataclass(frozen=True)
class ScaleHeadConfig:
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-2
    dropout: float = 0.2
    outcome_weight: float = 1.0  # weight of the outcome loss beside the level loss
    outcome_pos_weight: float = 5.0  # critical outcomes are ~2 % of visits
    use_complaints: bool = True
    seed: int = 0


class ScaleHeads(nn.Module):
    """pooled [B, D] (standardised), features [B, F], complaint similarities [B, K] →
    (level logits [B, 5], outcome logit [B, 1])."""

    def __init__(self, text_dim: int, n_features: int, n_complaints: int, dropout: float) -> None:
        super().__init__()
        self.n_complaints = n_complaints
        self.features = nn.Sequential(nn.Linear(n_features, FEATURE_WIDTH), nn.GELU())
        self.trunk = nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim + FEATURE_WIDTH + n_complaints, HIDDEN),
                                   nn.GELU(), nn.Dropout(dropout))
        self.level = nn.Linear(HIDDEN, 5)
        self.outcome = nn.Linear(HIDDEN, 1)

    def forward(self, pooled: torch.Tensor, features: torch.Tensor, similarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [pooled, self.features(features)]
        if self.n_complaints:
            parts.append(similarity)
        hidden = self.trunk(torch.cat(parts, dim=-1))
        return self.level(hidden), self.outcome(hidden)


def complaint_similarity(pooled: np.ndarray, complaint_vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of each text to each standard complaint (vectors unnormalised)."""
    a = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-6)
    b = complaint_vectors / np.maximum(np.linalg.norm(complaint_vectors, axis=1, keepdims=True), 1e-6)
    return (a @ b.T).astype(np.float32)


def train(pooled: np.ndarray, features: np.ndarray, similarity: np.ndarray, levels: np.ndarray,
          outcome: np.ndarray, config: ScaleHeadConfig) -> ScaleHeads:
    """``levels`` 1..5 (0: none), ``outcome`` 0/1 (-1: unknown). One thread: tiny ops (see
    export.train.train_head)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed_everything(config.seed)
        n_complaints = similarity.shape[1] if config.use_complaints else 0
        model = ScaleHeads(pooled.shape[1], features.shape[1], n_complaints, config.dropout)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        x = torch.as_tensor(pooled, dtype=torch.float32)
        f = torch.as_tensor(features, dtype=torch.float32)
        s = torch.as_tensor(similarity if n_complaints else np.zeros((len(x), 0), np.float32), dtype=torch.float32)
        y = torch.as_tensor(levels - 1, dtype=torch.long)
        o = torch.as_tensor(outcome, dtype=torch.float32)
        steps = config.epochs * int(np.ceil(len(y) / config.batch_size))
        scheduler = warmup_linear(optimizer, steps)
        generator = torch.Generator().manual_seed(config.seed)
        pos_weight = torch.tensor([config.outcome_pos_weight])
        model.train()
        for _ in range(config.epochs):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), config.batch_size):
                batch = order[start:start + config.batch_size]
                level_logits, outcome_logit = model(x[batch], f[batch], s[batch])
                has_level = y[batch] >= 0
                loss = level_logits.new_zeros(())
                if has_level.any():
                    loss = loss + F.cross_entropy(level_logits[has_level], y[batch][has_level])
                has_outcome = o[batch] >= 0
                if has_outcome.any():
                    loss = loss + config.outcome_weight * F.binary_cross_entropy_with_logits(
                        outcome_logit[has_outcome, 0], o[batch][has_outcome], pos_weight=pos_weight)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
        model.eval()
        return model
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def predict(model: ScaleHeads, pooled: np.ndarray, features: np.ndarray, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    s = similarity if model.n_complaints else np.zeros((len(pooled), 0), np.float32)
    level, outcome = model(torch.as_tensor(pooled, dtype=torch.float32), torch.as_tensor(features, dtype=torch.float32),
                           torch.as_tensor(s, dtype=torch.float32))
    return level.numpy().astype(np.float64), outcome.numpy()[:, 0].astype(np.float64)
