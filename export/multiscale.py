"""One graph for every scale: the shared encoder and features, the KTAS head, the ESI level and
outcome heads, and the presenting-complaint matcher.

Outputs: ``logits`` (KTAS levels), ``logits_esi`` (ESI levels), ``outcome_logit`` (log-odds of
critical care or death) and ``complaint_similarity`` (cosine similarity of the complaint to each
standard presenting complaint, the "read as" basis and an ESI-head input). Every head sits under
a module named ``head`` so the int8 recipe keeps it fp32 (``export.onnx_export.head_node_names``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.modeling import FusedClassifier, mean_pool
from export.scale_heads import ScaleHeads

OUTPUTS = ["logits", "logits_esi", "outcome_logit", "complaint_similarity"]


class ComplaintMatcher(nn.Module):
    def __init__(self, vectors: np.ndarray) -> None:
        super().__init__()
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
        self.register_buffer("complaints_t", torch.as_tensor(unit.T.copy(), dtype=torch.float32))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        unit = pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        return unit @ self.complaints_t


class _Holder(nn.Module):
    """A namespace so a head's nodes are named ``/<scale>/head/...``."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head


class MultiScaleClassifier(nn.Module):
    def __init__(self, ktas: FusedClassifier, esi_heads: ScaleHeads, esi_text_scale: float,
                 complaint_vectors: np.ndarray) -> None:
        super().__init__()
        self.encoder = ktas.encoder
        self.head = ktas.head
        self.ktas_text_scale = ktas.text_scale
        self.esi = _Holder(esi_heads)
        self.esi_text_scale = esi_text_scale
        self.matcher = _Holder(ComplaintMatcher(complaint_vectors))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = mean_pool(hidden, attention_mask)
        similarity = self.matcher.head(pooled)
        logits = self.head(pooled * self.ktas_text_scale, features)
        esi_logits, outcome = self.esi.head(pooled * self.esi_text_scale, features, similarity)
        return logits, esi_logits, outcome, similarity


def export(model: MultiScaleClassifier, path: Path, n_features: int, vocab_size: int) -> Path:
    model.eval()
    ids = torch.randint(5, max(6, vocab_size), (2, 8), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    feats = torch.zeros(2, n_features, dtype=torch.float32)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "features": {0: "batch"}}
    axes.update({name: {0: "batch"} for name in OUTPUTS})
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask, feats), str(path), input_names=["input_ids", "attention_mask", "features"],
                          output_names=OUTPUTS, opset_version=17, dynamo=False, dynamic_axes=axes)
    return path
