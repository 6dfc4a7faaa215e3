"""The triage model at run time: one ONNX Runtime session, its tokenizer and its manifest.

Session settings are chosen for fanless ARM boards: a fixed thread count from configuration,
idle spinning off (spinning threads burn watts and heat for nothing between requests), the CPU
memory arena off (it ratchets up with every new sequence length and never gives memory back),
and no telemetry. Tokens are truncated to the manifest's ``max_seq_len`` (or a lower limit set
by the thermal policy) and padded only to the longest text in the batch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from edge.bundle import Bundle, verify
from edge.case import TriageCase
from edge.decision import softmax
from edge.errors import BundleError
from edge.features import encode_cases

WARMUP_TEXTS = ("chest pain", "right forearm laceration after a fall at home with bleeding")


@dataclass(frozen=True)
class RuntimeOptions:
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    allow_spinning: bool = False
    memory_arena: bool = False


def _session_options(options: RuntimeOptions) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, options.intra_op_threads)
    so.inter_op_num_threads = max(1, options.inter_op_threads)
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_cpu_mem_arena = options.memory_arena
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.allow_spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if options.allow_spinning else "0")
    so.log_severity_level = 3
    return so


class TriageModel:
    """A loaded bundle ready to score cases. Thread-safe: ONNX Runtime sessions allow concurrent
    ``run`` calls; the tokenizer is guarded because its padding/truncation state is mutable."""

    def __init__(self, bundle: Bundle, session: ort.InferenceSession, tokenizer: Tokenizer,
                 options: RuntimeOptions) -> None:
        self.bundle = bundle
        self.session = session
        self.tokenizer = tokenizer
        self.options = options
        self.max_seq_len = int(bundle.manifest["max_seq_len"])
        self.temperature = float(bundle.manifest["calibration"].get("temperature", 1.0))
        self._input_names = {i.name for i in session.get_inputs()}
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, options: RuntimeOptions | None = None, warm: bool = True) -> "TriageModel":
        options = options or RuntimeOptions()
        bundle = verify(path)
        try:
            ort.disable_telemetry_events()
        except AttributeError:  # not every build has telemetry to switch off
            pass
        try:
            session = ort.InferenceSession(
                str(bundle.model_file), sess_options=_session_options(options), providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(bundle.tokenizer_file))
        except Exception as error:  # onnxruntime raises its own exception types per failure
            raise BundleError("bundle_unloadable", f"The bundle's model or tokenizer failed to load: {type(error).__name__}.") from error
        expected = set(bundle.manifest["inputs"])
        actual = {i.name for i in session.get_inputs()}
        if expected != actual:
            raise BundleError("manifest_invalid", f"Graph inputs {sorted(actual)} differ from manifest inputs {sorted(expected)}.")
        model = cls(bundle, session, tokenizer, options)
        if warm:
            model.warmup()
        return model

    def warmup(self, rounds: int = 3) -> None:
        """Run a few inferences so first real requests do not pay for lazy initialisation."""
        case = TriageCase(complaint=WARMUP_TEXTS[1], age=50, hr=90)
        for _ in range(rounds):
            self.logits([case])
            self.logits([TriageCase(complaint=t) for t in WARMUP_TEXTS])

    def encode_text(self, texts: Sequence[str], max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        limit = min(self.max_seq_len, max_tokens) if max_tokens else self.max_seq_len
        with self._tokenizer_lock:
            self.tokenizer.enable_truncation(max_length=limit)
            self.tokenizer.enable_padding(pad_id=self.bundle.manifest.get("pad_id", 0),
                                          pad_token=self.bundle.manifest.get("pad_token", "[PAD]"))
            encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def logits(self, cases: Sequence[TriageCase], max_tokens: int | None = None) -> np.ndarray:
        ids, mask = self.encode_text([c.complaint for c in cases], max_tokens)
        return self.run_arrays(ids, mask, encode_cases(cases))

    def run_arrays(self, ids: np.ndarray, mask: np.ndarray, features: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "features": features.astype(np.float32)}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (logits,) = self.session.run([self.bundle.manifest["output"]], feeds)
        return np.asarray(logits, dtype=np.float64)

    def probabilities(self, cases: Sequence[TriageCase], max_tokens: int | None = None) -> np.ndarray:
        """Calibrated probabilities ``[len(cases), 5]`` for levels 1..5."""
        return softmax(self.logits(cases, max_tokens), self.temperature)
