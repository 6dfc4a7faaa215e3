"""Pooled complaint vectors computed by the encoder graph that ships — the int8 one.

The heads learn on these vectors, so the model that training optimizes is the int8 graph the
device runs, not the fp32 encoder it was quantized from: whatever rounding the int8 encoder does,
the heads have seen it. Same tokenizer, padding and truncation as the runtime; the activation
quantization is per row, so a text's vector does not depend on the batch it was computed in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from tokenizers import Tokenizer

if TYPE_CHECKING:
    import onnxruntime as ort


@dataclass
class GraphEmbedder:
    graph: Path  # encoder graph: input_ids, attention_mask → last_hidden_state
    tokenizer_json: str
    pad_id: int
    pad_token: str
    max_len: int
    threads: int = 2
    _session: "ort.InferenceSession | None" = field(default=None, init=False, repr=False)

    @property
    def key(self) -> str:
        """Identifies what these vectors are: the graph's bytes, the tokenizer and the length."""
        digest = hashlib.sha256(self.graph.read_bytes())
        digest.update(self.tokenizer_json.encode("utf-8"))
        digest.update(str(self.max_len).encode())
        return digest.hexdigest()

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(self.graph), sess_options=options, providers=["CPUExecutionProvider"])
        return self._session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]

    def embed(self, texts: Sequence[str], batch_size: int = 128, desc: str = "embed") -> np.ndarray:
        from tqdm import tqdm

        tokenizer = Tokenizer.from_str(self.tokenizer_json)
        tokenizer.enable_truncation(max_length=self.max_len)
        tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)
        # Similar lengths together: less padding computed, same vectors (per-row arithmetic).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 0), np.float32)
        for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False, mininterval=2.0):
            chunk = order[start:start + batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self._run(ids, mask)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-6)
            if out.shape[1] == 0:
                out = np.zeros((len(texts), pooled.shape[1]), np.float32)
            out[chunk] = pooled
        return out
