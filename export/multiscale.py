"""One graph for every scale: the shared encoder and features, the KTAS head, the ESI level and
outcome heads, and the presenting-complaint matcher. The heads are traced here; the int8
encoder graph they were trained on is joined in front of them (``export.onnx_export.bundle_graph``).

Outputs: ``logits`` (KTAS levels), ``logits_esi`` (ESI levels), ``outcome_logit`` (log-odds of
critical care or death) and ``complaint_similarity`` (cosine similarity of the complaint to each
standard presenting complaint, the "read as" basis and an ESI-head input). Every head sits under
a module named ``head``, so its nodes are named ``/…/head/…`` (``export.quantization_recipe.quantized_head_nodes``
checks that none is quantized).
"""

from __future__ import annotations

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


class MultiScaleHeads(nn.Module):
    """Every scale's head after the encoder: ``last_hidden_state``, mask and features → the four
    outputs. The encoder graph is joined in front (``export.graph_merge``)."""

    def __init__(self, ktas: FusedClassifier, esi_heads: ScaleHeads, esi_text_scale: float,
                 complaint_vectors: np.ndarray) -> None:
        super().__init__()
        self.head = ktas.head
        self.ktas_text_scale = ktas.text_scale
        self.esi = _Holder(esi_heads)
        self.esi_text_scale = esi_text_scale
        self.matcher = _Holder(ComplaintMatcher(complaint_vectors))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor):
        pooled = mean_pool(hidden, attention_mask)
        similarity = self.matcher.head(pooled)
        logits = self.head(pooled * self.ktas_text_scale, features)
        esi_logits, outcome = self.esi.head(pooled * self.esi_text_scale, features, similarity)
        return logits, esi_logits, outcome, similarity
