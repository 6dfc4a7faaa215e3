"""The fused classifier: a sentence encoder for the complaint plus the structured triage
features, joined before the classification head, in one module so one ONNX graph carries both.

The text is mean-pooled over real tokens (the packaged MiniLM's pooler is untrained, and mean
pooling is how both sentence encoders were trained). The structured features pass through
their own small layer first so vitals, protocol levels and one-hots get a learned scale before
they meet the 384/768-wide text vector.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edge.clinical.features import N_FEATURES

FEATURE_WIDTH = 64
HIDDEN = 128


class FusionHead(nn.Module):
    """pooled text [B, D] + features [B, F] → logits [B, 5]."""

    def __init__(self, text_dim: int, n_features: int = N_FEATURES, dropout: float = 0.1) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(n_features, FEATURE_WIDTH), nn.GELU())
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(text_dim + FEATURE_WIDTH, HIDDEN), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(HIDDEN, 5),
        )

    def forward(self, pooled: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.cat([pooled, self.features(features)], dim=-1))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-6)


class FusedClassifier(nn.Module):
    """Encoder + mean pooling + :class:`FusionHead`; ``forward(input_ids, attention_mask, features)``
    is exactly the bundle's graph signature."""

    def __init__(self, encoder: nn.Module, head: FusionHead, text_scale: float = 1.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        # Frozen-encoder heads are trained on standardised embeddings; the scale keeps that.
        self.text_scale = text_scale

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask) * self.text_scale

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(input_ids, attention_mask), features)


class PooledHead(nn.Module):
    """The KTAS part of a bundle graph without the encoder: ``last_hidden_state``, mask and
    features → logits. The encoder graph is joined in front of it (``export.graph_merge``)."""

    def __init__(self, head: FusionHead, text_scale: float) -> None:
        super().__init__()
        self.head = head
        self.text_scale = text_scale

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.head(mean_pool(hidden, attention_mask) * self.text_scale, features)


def load_encoder(path: Path, keep_layers: int | None = None) -> nn.Module:
    """A pretrained encoder from a local folder (no hub), optionally cut to its first layers.
    Eager attention: it exports to plain ONNX ops that every ONNX Runtime build runs."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the unused pooler weights are expected, not news

    model = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="eager",
                                      add_pooling_layer=False) if _is_bert(path) else \
        AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="eager")
    if keep_layers is not None and keep_layers < model.config.num_hidden_layers:
        model.encoder.layer = model.encoder.layer[:keep_layers]
        model.config.num_hidden_layers = keep_layers
    return model


def _is_bert(path: Path) -> bool:
    import json

    return json.loads((path / "config.json").read_text())["model_type"] == "bert"


def tiny_bert(vocab_size: int, seed: int, max_positions: int = 64) -> nn.Module:
    """A random tiny BERT from a config (smoke builds: no download, seconds to train)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=max_positions)
    config._attn_implementation = "eager"  # plain MatMul/Softmax ops in the exported graph
    return BertModel(config, add_pooling_layer=False)


def prune_embeddings(encoder: nn.Module, kept_ids: list[int], max_positions: int | None = None) -> None:
    """Keep only the embedding rows of the pruned vocabulary (new id i = old id kept_ids[i]) and,
    for absolute positions, only the first ``max_positions`` position rows."""
    embeddings = encoder.embeddings
    old = embeddings.word_embeddings.weight.data
    index = torch.as_tensor(kept_ids, dtype=torch.long)
    embeddings.word_embeddings = nn.Embedding(len(kept_ids), old.shape[1], padding_idx=None)
    embeddings.word_embeddings.weight.data = old[index].clone()
    encoder.config.vocab_size = len(kept_ids)
    if max_positions and hasattr(embeddings, "position_embeddings") and encoder.config.model_type == "bert":
        pos = embeddings.position_embeddings.weight.data[:max_positions].clone()
        embeddings.position_embeddings = nn.Embedding(max_positions, pos.shape[1])
        embeddings.position_embeddings.weight.data = pos
        encoder.config.max_position_embeddings = max_positions
        for name in ("position_ids", "token_type_ids"):
            buffer = getattr(embeddings, name, None)
            if buffer is not None:
                embeddings.register_buffer(name, buffer[:, :max_positions].clone(), persistent=False)
