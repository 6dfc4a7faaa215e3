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

from edge.clinical.abbreviations import Abbreviations, Normalised
from edge.inference.bundle import Bundle, verify
from edge.clinical.case import TriageCase
from edge.clinical.decision_rule import softmax
from edge.errors import BundleError
from edge.clinical.features import encode_cases
from edge.clinical.scales import ScaleSpec, scale_specs

WARMUP_TEXTS = ("chest pain", "right forearm laceration after a fall at home with bleeding")


@dataclass(frozen=True)
class RuntimeOptions:
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    allow_spinning: bool = False
    memory_arena: bool = False
    # "auto": int8 arithmetic where ONNX Runtime has the kernel, else fp32 weights made at load
    # (edge.inference.int8_fallback); "int8" / "fp32" force one.
    int8_compute: str = "auto"


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


def _graph_source(bundle: Bundle, options: RuntimeOptions) -> tuple[str | bytes, str]:
    """The graph's path, or — for a MatMulNBits graph on a CPU without an int8 kernel for it — the
    same verified bytes with fp32 weights (``edge.inference.int8_fallback``); and which arithmetic
    that means. A per-row int8 graph (``export.row_int8``: MatMulInteger; ``export.row_int8_compact``:
    MatMulIntegerToFloat) has an int8 kernel on every CPU."""
    from edge.inference import int8_fallback

    method = (bundle.manifest.get("quantization") or {}).get("method")
    if method in ("row_int8", "row_int8_compact"):
        op = "MatMulIntegerToFloat" if method == "row_int8_compact" else "MatMulInteger"
        what = f"int8: {op} on per-row uint8 activations (MLAS uint8 x int8 GEMM on x86-64 and every arm64 core)"
        if options.int8_compute == "fp32":
            what += "; int8_compute = fp32 applies to MatMulNBits graphs only"
        return str(bundle.model_file), what
    if not int8_fallback.needs_fp32_weights(options.int8_compute):
        return str(bundle.model_file), "as the graph says (int8 where it has MatMulNBits and this CPU an int8 kernel)"
    import hashlib

    data = bundle.model_file.read_bytes()
    if hashlib.sha256(data).hexdigest() != bundle.sha256:  # the bytes rewritten are the bytes verified
        raise BundleError("hash_mismatch", "The model graph changed after it was verified; reload the bundle.",
                          field="model_file")
    graph, rewritten = int8_fallback.fp32_weight_graph(data)
    if not rewritten:
        return str(bundle.model_file), "as the graph says (no MatMulNBits to give fp32 weights)"
    why = "forced by int8_compute = fp32" if options.int8_compute == "fp32" else "this CPU has no int8 dot-product kernel"
    return graph, f"fp32 weights made at load from the int8 ones ({rewritten} matrix products; {why})"


class TriageModel:
    """A loaded bundle ready to score cases. Thread-safe: ONNX Runtime sessions allow concurrent
    ``run`` calls; the tokenizer is guarded because its padding/truncation state is mutable."""

    def __init__(self, bundle: Bundle, session: ort.InferenceSession, tokenizer: Tokenizer,
                 options: RuntimeOptions, arithmetic: str = "as the graph says") -> None:
        self.bundle = bundle
        self.session = session
        self.tokenizer = tokenizer
        self.options = options
        self.max_seq_len = int(bundle.manifest["max_seq_len"])
        self.temperature = float(bundle.manifest["calibration"].get("temperature", 1.0))
        self.scales: dict[str, ScaleSpec] = scale_specs(bundle.manifest)
        self._input_names = {i.name for i in session.get_inputs()}
        self._output_names = [o.name for o in session.get_outputs()]
        self._tokenizer_lock = threading.Lock()
        self.arithmetic = arithmetic  # int8 as the graph says, or fp32 weights (edge.inference.int8_fallback)
        knowledge = bundle.manifest.get("knowledge") or {}
        table = bundle.knowledge_file("abbreviations_file")
        self.abbreviations = Abbreviations.load(table) if table is not None else None
        self.complaint_names: list[str] = list(knowledge.get("complaints", []))

    @property
    def default_scale(self) -> str:
        return str(self.bundle.manifest.get("default_scale", next(iter(self.scales))))

    @classmethod
    def load(cls, path: str | Path, options: RuntimeOptions | None = None, warm: bool = True) -> "TriageModel":
        options = options or RuntimeOptions()
        bundle = verify(path)
        try:
            ort.disable_telemetry_events()
        except AttributeError:  # not every build has telemetry to switch off
            pass
        try:
            source, arithmetic = _graph_source(bundle, options)
            session = ort.InferenceSession(source, sess_options=_session_options(options), providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(bundle.tokenizer_file))
        except Exception as error:  # onnxruntime raises its own exception types per failure
            raise BundleError("bundle_unloadable", f"The bundle's model or tokenizer failed to load: {type(error).__name__}.") from error
        expected = set(bundle.manifest["inputs"])
        actual = {i.name for i in session.get_inputs()}
        if expected != actual:
            raise BundleError("manifest_invalid", f"Graph inputs {sorted(actual)} differ from manifest inputs {sorted(expected)}.")
        outputs = {o.name for o in session.get_outputs()}
        missing = sorted({o for spec in scale_specs(bundle.manifest).values() for o in (spec.output, spec.outcome_output)
                          if o is not None} - outputs)
        if missing:
            raise BundleError("manifest_invalid", f"The manifest's scales name graph outputs {missing} the graph lacks; "
                                                  "rebuild the bundle.", field="scales")
        try:
            model = cls(bundle, session, tokenizer, options, arithmetic)
        except (OSError, ValueError, KeyError) as error:
            raise BundleError("bundle_unloadable", f"The bundle's knowledge files failed to load: {type(error).__name__}.") from error
        if warm:
            model.warmup()
        return model

    def warmup(self, rounds: int = 1) -> None:
        """Run inferences (one case, then a batch of two lengths) so first real requests do not pay
        for lazy initialisation. One round is enough: ONNX Runtime packs weights when the session
        is built and pays its first-run costs once; more rounds only delayed readiness."""
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

    def normalise(self, case: TriageCase) -> Normalised:
        """The complaint as the model reads it (ED shorthand expanded where its sense is clear)."""
        if self.abbreviations is None:
            return Normalised(case.complaint)
        return self.abbreviations.normalise(case.complaint, case.age)

    def outputs(self, cases: Sequence[TriageCase], max_tokens: int | None = None,
                texts: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Every graph output for ``cases`` (the level logits of each scale, the outcome logit and
        the complaint similarities where the bundle has them). ``texts``: the complaints already
        normalised (the triager normalises once and reuses it for the rules and the basis)."""
        if texts is None:
            texts = [self.normalise(c).text for c in cases]
        ids, mask = self.encode_text(texts, max_tokens)
        return self.run_all(ids, mask, encode_cases(cases))

    def run_all(self, ids: np.ndarray, mask: np.ndarray, features: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {"input_ids": ids, "attention_mask": mask, "features": features.astype(np.float32)}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        values = self.session.run(self._output_names, feeds)
        return {name: np.asarray(v, dtype=np.float64) for name, v in zip(self._output_names, values)}

    def logits(self, cases: Sequence[TriageCase], max_tokens: int | None = None, scale: str | None = None) -> np.ndarray:
        return self.outputs(cases, max_tokens)[self.scales[scale or self.default_scale].output]

    def run_arrays(self, ids: np.ndarray, mask: np.ndarray, features: np.ndarray, scale: str | None = None) -> np.ndarray:
        return self.run_all(ids, mask, features)[self.scales[scale or self.default_scale].output]

    def probabilities(self, cases: Sequence[TriageCase], max_tokens: int | None = None,
                      scale: str | None = None) -> np.ndarray:
        """Calibrated probabilities ``[len(cases), 5]`` for levels 1..5 in ``scale``."""
        spec = self.scales[scale or self.default_scale]
        return softmax(self.outputs(cases, max_tokens)[spec.output], spec.temperature)
