"""Triage scales a bundle answers in, and what each one's answer is made of.

An ED triages with one scale: ``ktas`` (Korea; the CTAS family) or ``esi`` (the US Emergency
Severity Index). Levels run 1 (most urgent) … 5 in both and level 1-2 means the same clinically;
what separates 3, 4 and 5 differs. One bundle serves several scales: the encoder and the
structured features are shared, and each scale has its own graph output (head), calibration
temperature, decision rule and safety-rule set. The manifest's ``scales`` table holds them; a
bundle without one (schema 1, KTAS only) is read as ``ktas`` from its top-level keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

SCALES = ("ktas", "esi")
SCALE_NAMES = {"ktas": "Korean Triage and Acuity Scale (CTAS family)", "esi": "Emergency Severity Index (US)"}


@dataclass(frozen=True)
class ScaleSpec:
    name: str
    output: str  # the graph output holding this scale's 5 level logits
    temperature: float
    decision: dict[str, Any]
    outcome_output: str | None = None  # log-odds of critical care or death (training target only)
    evaluation: dict[str, Any] = field(default_factory=dict)


def scale_specs(manifest: Mapping[str, Any]) -> dict[str, ScaleSpec]:
    table = manifest.get("scales")
    if not table:
        return {"ktas": ScaleSpec("ktas", str(manifest["output"]),
                                  float(manifest["calibration"].get("temperature", 1.0)), dict(manifest["decision"]))}
    specs = {}
    for name, entry in table.items():
        specs[name] = ScaleSpec(name, str(entry["output"]), float(entry["calibration"].get("temperature", 1.0)),
                                dict(entry["decision"]), entry.get("outcome_output"), dict(entry.get("evaluation", {})))
    return specs
