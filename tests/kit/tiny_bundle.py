"""Build a tiny but real model bundle: an ONNX graph (embedding → masked mean pool → concat
structured features → linear) and a word-level ``tokenizer.json``, with a manifest that
``edge.inference.bundle.verify`` accepts. Used by the runtime's tests and benchmarks so they exercise
real ONNX Runtime sessions without torch. Needs the ``onnx`` package (a test dependency).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from edge.inference.bundle import write_manifest
from edge.clinical.decision_rule import cost_matrix
from edge.clinical.features import N_FEATURES, feature_spec

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "chest", "pain", "headache", "fever", "cough", "dyspnea",
    "laceration", "ankle", "sprain", "rash", "abdominal", "vomiting", "dizziness", "weakness",
    "fall", "bleeding", "right", "left", "arm", "leg", "back", "eye", "seizure", "suicidal",
]
URGENT_WORDS = {"chest": 1, "dyspnea": 1, "seizure": 2, "weakness": 2, "suicidal": 2, "bleeding": 2}
MINOR_WORDS = {"rash": 5, "sprain": 4, "ankle": 4, "eye": 4, "laceration": 4}


def _tokenizer_json(max_len: int) -> str:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.enable_truncation(max_length=max_len)
    return tokenizer.to_str()


def _graph(dim: int, seed: int):  # -> onnx.ModelProto
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    embedding = rng.normal(0, 0.3, size=(len(VOCAB), dim)).astype(np.float32)
    weight = rng.normal(0, 0.2, size=(dim + N_FEATURES, 5)).astype(np.float32)
    # Give words a readable effect so tests can tell urgent from minor complaints.
    for word, level in {**URGENT_WORDS, **MINOR_WORDS}.items():
        embedding[VOCAB.index(word), :] = 0.0
        embedding[VOCAB.index(word), level % dim] = 3.0
        weight[level % dim, :] = 0.0
        weight[level % dim, level - 1] = 4.0
    bias = np.array([-1.0, 0.0, 0.5, 0.5, -0.5], dtype=np.float32)
    inits = [
        numpy_helper.from_array(embedding, "embedding"),
        numpy_helper.from_array(weight, "weight"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"),
        numpy_helper.from_array(np.array([1e-6], dtype=np.float32), "eps"),
    ]
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis_last"], ["mask_3d"]),
        helper.make_node("Mul", ["embedded", "mask_3d"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask_f", "axis1"], ["count"], keepdims=1),
        helper.make_node("Add", ["count", "eps"], ["count_safe"]),
        helper.make_node("Div", ["summed", "count_safe"], ["pooled"]),
        helper.make_node("Concat", ["pooled", "features"], ["fused"], axis=1),
        helper.make_node("MatMul", ["fused", "weight"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_triage",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", N_FEATURES]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edge-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_tiny_bundle(path: str | Path, *, dim: int = 8, seed: int = 0, max_seq_len: int = 32,
                      name: str = "tiny-test", version: str = "0.0.1") -> Path:
    """Write a verified tiny bundle into ``path`` (created) and return it."""
    import onnx

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(_graph(dim, seed), str(path / "model.onnx"))
    (path / "tokenizer.json").write_text(_tokenizer_json(max_seq_len), encoding="utf-8")
    manifest = {
        "schema": "edge-triage-bundle/1",
        "name": name,
        "version": version,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "base_model": {"name": "tiny word-level test model", "license": "Apache-2.0", "package": None},
        "labels": [1, 2, 3, 4, 5],
        "max_seq_len": max_seq_len,
        "pad_id": 0,
        "pad_token": "[PAD]",
        "inputs": ["input_ids", "attention_mask", "features"],
        "output": "logits",
        "features": feature_spec(),
        "calibration": {"temperature": 1.0},
        "decision": {"rule": "min_expected_cost", "cost_matrix": cost_matrix(2.0).tolist(),
                     "under_weight": 2.0, "review_below_confidence": 0.5},
        "files": {"model.onnx": "", "tokenizer.json": ""},
        "quantization": {"recipe": "none (fp32 test graph)"},
        "target": "any",
        "training_data": {"note": "random weights; for tests only"},
        "evaluation": {},
        "intended_use": "Software tests only. Not a clinical model.",
    }
    write_manifest(path, manifest)
    return path


def build_nbits_bundle(tiny: str | Path, path: str | Path, *, accuracy_level: int = 4) -> Path:
    """The tiny bundle with its MatMul as an 8-bit ``MatMulNBits`` (int8 compute at
    ``accuracy_level`` 4): the graph ``edge.inference.int8_fallback`` gives fp32 weights to on a
    core without ONNX Runtime's int8 kernel for it."""
    import json
    import shutil

    from export.quantization_recipe import QuantRecipe, quantize

    tiny, path = Path(tiny), Path(path)
    shutil.copytree(tiny, path)
    quantize(tiny / "model.onnx", path / "model.onnx",
             QuantRecipe(method="matmul_nbits", block_rows=16, accuracy_level=accuracy_level, embeddings_per_row=False))
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    manifest["quantization"] = {"method": "matmul_nbits", "accuracy_level": accuracy_level}
    write_manifest(path, manifest)
    return path
