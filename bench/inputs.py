"""The inputs every backend is timed on: the real complaint-length distribution of the KTAS
data (tokenized with the shipped bundle's tokenizer, truncated as the service truncates) and
fixed lengths of 16/32/64/128 tokens built from real complaint text.

Every backend gets the same token ids and the same structured-feature row, so differences are
the backends', not the inputs'. Token ids are folded into each backend's vocabulary when it is
smaller (a pruned student vocabulary): compute depends on sequence length, not on id values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edge.clinical.case import TriageCase
from edge.clinical.features import encode_cases

KTAS_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ktas-moon2019" / "data.csv"
FIXED_LENGTHS = (16, 32, 64, 128)
# Used only when the KTAS file is absent (a fresh clone without ../shared/data).
FALLBACK_COMPLAINTS = (
    "chest pain", "abdominal pain", "headache", "dyspnea", "fever", "dizziness",
    "right ankle sprain after a fall", "vomiting and diarrhea since yesterday",
    "laceration left forearm", "general weakness",
)


@dataclass
class BenchInputs:
    source: str                      # where the complaints came from
    lengths: np.ndarray              # token count of each real complaint (with specials)
    real_ids: list[np.ndarray]       # per complaint, [1, n] int64 token ids
    fixed_ids: dict[int, np.ndarray]  # length -> [1, length] ids from real text, no padding
    features: np.ndarray             # [1, N_FEATURES] float32, a real case's structured fields

    @property
    def median_length(self) -> int:
        return int(np.median(self.lengths))

    def length_histogram(self) -> dict[str, int]:
        values, counts = np.unique(self.lengths, return_counts=True)
        return {str(int(v)): int(c) for v, c in zip(values, counts)}


def load_cases(csv_path: Path = KTAS_CSV) -> tuple[str, list[TriageCase]]:
    if csv_path.is_file():
        from edge.clinical.datasets import ktas

        dataset = ktas.load(csv_path)
        return f"{csv_path.parent.name}/{csv_path.name} ({len(dataset.cases)} cases)", [c.case for c in dataset.cases]
    return "built-in fallback complaints (KTAS data absent)", [TriageCase(complaint=t) for t in FALLBACK_COMPLAINTS]


def build_inputs(tokenizer_file: Path, max_seq_len: int, csv_path: Path = KTAS_CSV) -> BenchInputs:
    source, cases = load_cases(csv_path)
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_seq_len)
    real_ids = [np.asarray([e.ids], dtype=np.int64) for e in tokenizer.encode_batch([c.complaint for c in cases])]
    lengths = np.asarray([ids.shape[1] for ids in real_ids])

    # Fixed lengths: real complaint text run together, cut to length, specials kept at both ends.
    tokenizer.no_truncation()
    joined = tokenizer.encode(" ; ".join(c.complaint for c in cases[:400])).ids
    first, last, body = joined[0], joined[-1], joined[1:-1]
    fixed_ids: dict[int, np.ndarray] = {}
    for length in FIXED_LENGTHS:
        repeats = -(-(length - 2) // max(1, len(body)))
        content = (body * repeats)[: length - 2]
        fixed_ids[length] = np.asarray([[first, *content, last]], dtype=np.int64)

    # The structured fields of the first case that has vitals: the model graph's features path
    # costs the same whatever the values.
    with_vitals = next((c for c in cases if c.hr is not None), cases[0])
    return BenchInputs(source, lengths, real_ids, fixed_ids, encode_cases([with_vitals]).astype(np.float32))


def median_length_ids(inputs: BenchInputs) -> np.ndarray:
    """A real complaint whose length is the median length (so 'at the median' is real text)."""
    target = inputs.median_length
    return next(ids for ids in inputs.real_ids if ids.shape[1] == target)
