"""Training data for the build: the labelled KTAS rows and the transfer set for distillation.

The transfer set pairs real chief-complaint vocabulary without labels (the NHAMCS 2022
reason-for-visit texts, CDC public domain) with triage-time structured fields drawn from
training rows, so the student sees many more complaint phrasings with the teacher's soft
labels than the 1,014 labelled rows hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.clinical.case import TriageCase
from edge.clinical.datasets import ktas
from edge.clinical.features import encode_cases

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
KTAS_FILE = "ktas-moon2019/data.csv"
NHAMCS_FILE = "nhamcs-ed-2022-docs/ed22for.txt"
# NHAMCS entries that are bookkeeping, not complaints.
_NOT_COMPLAINTS = re.compile(r"blank|illegible|inadequate data|refused care|entry of \"none\"", re.IGNORECASE)
# Chief-complaint shorthand common in ED records (MIMIC-IV-ED style) that neither corpus spells
# out; kept in the pruned vocabulary so these stay whole tokens.
ED_SHORTHAND = (
    "sob dyspnea cp abd n/v nausea vomiting s/p fall etoh intox si hi loc uti mvc mva gsw syncope "
    "presyncope palpitations hematemesis melena brbpr epistaxis dizziness vertigo ams altered mental "
    "status weakness numbness slurred speech seizure headache lbp flank hematuria dysuria rash cellulitis "
    "abscess laceration fracture sprain overdose od psych anxiety depression tachycardia bradycardia "
    "hypotension hypertension htn hypoglycemia hyperglycemia dka fever chills cough uri pneumonia "
    "copd asthma chf edema swelling pain injury trauma burn bite allergic reaction anaphylaxis "
    "pregnant vaginal bleeding pelvic testicular urinary retention constipation diarrhea jaundice "
    "stroke tia cva facial droop arrest unresponsive lethargy confusion"
)


@dataclass
class Corpus:
    cases: list[TriageCase]
    labels: np.ndarray  # expert KTAS 1..5
    nurse: np.ndarray  # KTAS_RN or 0 where absent
    rfv_texts: list[str]

    @property
    def texts(self) -> list[str]:
        return [c.complaint for c in self.cases]

    @property
    def features(self) -> np.ndarray:
        return encode_cases(self.cases)


def data_root(override: str | Path | None = None) -> Path:
    return Path(override) if override else DATA_ROOT


def reason_for_visit_texts(path: Path) -> list[str]:
    """The ``VALUE RFVF`` block of ``ed22for.txt``: code = 'text' lines."""
    text = path.read_text(encoding="latin-1")
    start = text.index("VALUE RFVF")
    end = text.find("VALUE ", start + len("VALUE RFVF"))
    block = text[start:end if end > 0 else None]
    entries = re.findall(r"=\s*'([^']*)'", block)
    return list(dict.fromkeys(e.strip() for e in entries if e.strip() and not _NOT_COMPLAINTS.search(e)))


def load_corpus(root: Path, limit: int | None = None) -> Corpus:
    dataset = ktas.load(root / KTAS_FILE)
    rows = dataset.cases[:limit] if limit else dataset.cases
    rfv_path = root / NHAMCS_FILE
    rfv = reason_for_visit_texts(rfv_path) if rfv_path.is_file() else []
    return Corpus(
        cases=[r.case for r in rows],
        labels=np.asarray([r.truth for r in rows], dtype=np.int64),
        nurse=np.asarray([r.nurse or 0 for r in rows], dtype=np.int64),
        rfv_texts=rfv[: limit] if limit else rfv,
    )


def transfer_cases(texts: Sequence[str], donors: Sequence[TriageCase], copies: int, seed: int) -> list[TriageCase]:
    """Each unlabelled complaint ``copies`` times, with the structured fields of a random donor
    row (a real combination of vitals and facts) and the donor's complaint replaced."""
    rng = np.random.default_rng(seed)
    out: list[TriageCase] = []
    for _ in range(copies):
        picks = rng.integers(0, len(donors), size=len(texts))
        out += [replace(donors[int(j)], complaint=text[:500]) for text, j in zip(texts, picks)]
    return out
