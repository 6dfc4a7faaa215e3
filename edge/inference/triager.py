"""Case → triage result: model probabilities → decision rule → raise-only safety rules.

This is the one path every consumer uses — the HTTP service, ``edge-triage predict`` and
``edge-triage eval`` — so what is measured is what is served. Every degraded path (no model,
deadline, thermal or memory limits) answers "clinician review now" at level 2 or more urgent.
"""

from __future__ import annotations

import time
import secrets
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from edge.clinical import rules
from edge.clinical.abbreviations import Normalised
from edge.clinical.case import NUMERIC_BOUNDS, TriageCase
from edge.clinical.decision_rule import decide, sigmoid, softmax
from edge.errors import CaseError
from edge.inference.session import TriageModel
from edge.clinical.scales import ScaleSpec

# The level a degraded answer carries when no rule asks for more: "clinician review now".
DEGRADED_LEVEL = 2
REVIEW_NOW = "clinician review now"
DEFAULT_REVIEW_CONFIDENCE = 0.5
# Occlusion costs one model pass per variant: at most this many complaint spans are left out in
# turn (long complaints are cut into this many contiguous spans), so a 250-word complaint costs
# the same bounded batch as a 24-word one, and admission can price it (explain_variants).
MAX_EXPLAIN_SPANS = 24
_EXPLAIN_FIELDS = ("age", "sex", "arrival", "injury", "mental", "pain", *[k for k in NUMERIC_BOUNDS if k not in ("age", "pain")])


@dataclass
class TriageResult:
    level: int
    model_level: int | None
    probabilities: list[float] | None
    review_required: bool
    reasons: list[str]
    rules_fired: list[dict[str, Any]]
    degraded: str | None
    latency_ms: float
    model: dict[str, str] | None
    request_id: str
    explanation: list[dict[str, Any]] | None = field(default=None)
    scale: str = "ktas"
    read_as: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "level": self.level,
            "scale": self.scale,
            "model_level": self.model_level,
            "probabilities": self.probabilities,
            "review_required": self.review_required,
            "reasons": self.reasons,
            "rules_fired": self.rules_fired,
            "degraded": self.degraded,
            "latency_ms": round(self.latency_ms, 3),
            "model": self.model,
            "request_id": self.request_id,
        }
        if self.read_as is not None:
            out["read_as"] = self.read_as
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


def new_request_id() -> str:
    return secrets.token_hex(16)  # 128 random bits, as uuid4().hex gave, without building a UUID


class Triager:
    """Runs cases through model, decision rule and safety rules. ``model`` may be None
    (no bundle loaded): then every answer is the degraded rules-only answer."""

    # Below this cosine similarity the nearest standard complaint is not shown as "read as".
    READ_AS_MIN_SIMILARITY = 0.5

    def __init__(self, model: TriageModel | None, scale: str | None = None) -> None:
        self.model = model
        self.scale = scale or (model.default_scale if model is not None else "ktas")
        if model is not None and self.scale not in model.scales:
            raise CaseError("scale_unavailable", f"The bundle answers in {', '.join(model.scales)}; "
                                                 f"set 'scale' to one of them.", field="scale")

    def scale_of(self, case: TriageCase) -> str:
        return case.scale or self.scale

    def check_scale(self, case: TriageCase) -> None:
        """A request for a scale the bundle lacks is the client's error (400 naming ``scale``)."""
        scale = self.scale_of(case)
        if self.model is not None and scale not in self.model.scales:
            raise CaseError("scale_unavailable", f"This model answers in {', '.join(self.model.scales)}; "
                                                 "choose one of them for 'scale'.", field="scale")

    def spec(self, scale: str | None = None) -> ScaleSpec:
        assert self.model is not None
        return self.model.scales[scale or self.scale]

    @property
    def decision(self) -> dict[str, Any]:
        return self.spec().decision

    def degraded(self, case: TriageCase, reason: str, started: float | None = None,
                 request_id: str | None = None) -> TriageResult:
        """Rules-only answer that fails toward clinician review now."""
        started = time.perf_counter() if started is None else started
        fired = self.rules_fired(case, self.scale_of(case))
        level = rules.apply(DEGRADED_LEVEL, fired)
        return TriageResult(
            scale=self.scale_of(case),
            level=level, model_level=None, probabilities=None, review_required=True,
            reasons=[f"{REVIEW_NOW}: answer is degraded ({reason}), the model did not decide this case"],
            rules_fired=[f.to_dict() for f in fired], degraded=reason,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            model=self.model.bundle.identity() if self.model else None,
            request_id=request_id or new_request_id(),
        )

    def triage_batch(self, cases: Sequence[TriageCase], *, max_tokens: int | None = None,
                     explain: bool = False, request_ids: Sequence[str] | None = None) -> list[TriageResult]:
        if self.model is None:
            return [self.degraded(c, "model unavailable") for c in cases]
        for case in cases:
            self.check_scale(case)
        started = time.perf_counter()
        read = [self.model.normalise(c) for c in cases]  # once per case: tokens, rules and basis
        outputs = self.model.outputs(cases, max_tokens, [r.text for r in read])
        by_scale: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for scale in dict.fromkeys(self.scale_of(c) for c in cases):
            spec = self.spec(scale)
            probs = softmax(outputs[spec.output], spec.temperature)
            outcome = sigmoid(outputs[spec.outcome_output][:, 0]) if spec.outcome_output in outputs else None
            by_scale[scale] = probs, decide(probs, spec.decision, outcome)
        elapsed = (time.perf_counter() - started) * 1000.0
        similarity = outputs.get("complaint_similarity")
        results = []
        for i, case in enumerate(cases):
            scale = self.scale_of(case)
            probs, levels = by_scale[scale]
            result = self._finish(case, read[i], probs[i], int(levels[i]), elapsed,
                                  request_ids[i] if request_ids else new_request_id(), scale)
            result.read_as = self._read_as(read[i], similarity[i] if similarity is not None else None)
            if explain:
                result.explanation = self.explain(case, max_tokens)
            results.append(result)
        return results

    def triage(self, case: TriageCase, **kwargs: Any) -> TriageResult:
        return self.triage_batch([case], **kwargs)[0]

    def _read_as(self, normalised: Normalised, similarity: np.ndarray | None) -> dict[str, Any] | None:
        """The basis shown with the answer: the standard presenting complaint the text is nearest
        to (when near enough) and the shorthand read or left unresolved."""
        assert self.model is not None
        out: dict[str, Any] = {}
        if similarity is not None and self.model.complaint_names:
            best = int(np.argmax(similarity))
            if similarity[best] >= self.READ_AS_MIN_SIMILARITY:
                out["complaint"] = self.model.complaint_names[best]
                out["similarity"] = round(float(similarity[best]), 3)
        if normalised.expanded or normalised.unresolved:
            out.update(normalised.basis())
        return out or None

    def rules_fired(self, case: TriageCase, scale: str, normalised: Normalised | None = None) -> list[rules.FiredRule]:
        """The safety rules on the complaint as the model reads it (shorthand expanded), as the
        build scored them; without a model, on the text as written (the rules know the shorthand)."""
        if normalised is None and self.model is not None:
            normalised = self.model.normalise(case)
        if normalised is not None and normalised.text != case.complaint:
            case = _replace(case, complaint=normalised.text)
        return rules.evaluate(case, scale)

    def _finish(self, case: TriageCase, normalised: Normalised, probs: np.ndarray, model_level: int,
                elapsed_ms: float, request_id: str, scale: str) -> TriageResult:
        fired = self.rules_fired(case, scale, normalised)
        level = rules.apply(model_level, fired)
        reasons: list[str] = []
        if level < model_level:
            reasons.append(f"safety rule raised the level from {model_level} to {level}")
        if level <= 2:
            reasons.append(f"level {level}: {REVIEW_NOW}")
        threshold = float(self.spec(scale).decision.get("review_below_confidence", DEFAULT_REVIEW_CONFIDENCE))
        if probs[model_level - 1] < threshold:
            reasons.append("the model is uncertain between levels")
        return TriageResult(
            level=level, model_level=model_level, probabilities=[round(float(p), 6) for p in probs],
            review_required=bool(reasons), reasons=reasons, rules_fired=[f.to_dict() for f in fired],
            degraded=None, latency_ms=elapsed_ms, model=self.model.bundle.identity() if self.model else None,
            request_id=request_id, scale=scale,
        )

    def explain(self, case: TriageCase, max_tokens: int | None = None) -> list[dict[str, Any]]:
        """Occlusion: how much the urgency (P(level 1-2)) drops when each complaint word (or span
        of words, past MAX_EXPLAIN_SPANS) or recorded field is left out, largest first. One batched
        inference for all variants, at most ``explain_variants(case)`` of them."""
        assert self.model is not None
        spans = _spans(case.complaint.split())
        variants: list[TriageCase] = [case]
        labels: list[tuple[str, str]] = []
        for i, span in enumerate(spans):
            if len(spans) > 1:
                kept = [word for j, other in enumerate(spans) if j != i for word in other]
                variants.append(_replace(case, complaint=" ".join(kept)))
                labels.append(("phrase", " ".join(span)))
        for name in _EXPLAIN_FIELDS:
            if getattr(case, name) is not None:
                variants.append(_replace(case, **{name: None}))
                labels.append(("field", name))
        if len(variants) == 1:
            return []
        probs = self.model.probabilities(variants, max_tokens, self.scale_of(case))
        urgency = probs[:, :2].sum(axis=1)
        effects = [
            {"kind": kind, "name": name, "urgency_effect": round(float(urgency[0] - urgency[i + 1]), 4)}
            for i, (kind, name) in enumerate(labels)
        ]
        return sorted(effects, key=lambda e: -abs(e["urgency_effect"]))[:8]


def _spans(words: list[str]) -> list[list[str]]:
    """The words, or MAX_EXPLAIN_SPANS contiguous runs of them when there are more."""
    if len(words) <= MAX_EXPLAIN_SPANS:
        return [[word] for word in words]
    size, extra = divmod(len(words), MAX_EXPLAIN_SPANS)
    spans, start = [], 0
    for i in range(MAX_EXPLAIN_SPANS):
        end = start + size + (1 if i < extra else 0)
        spans.append(words[start:end])
        start = end
    return spans


def explain_variants(case: TriageCase) -> int:
    """Model passes an explanation of ``case`` costs beyond the answer itself (what admission prices)."""
    spans = min(len(case.complaint.split()), MAX_EXPLAIN_SPANS)
    return (spans if spans > 1 else 0) + sum(getattr(case, name) is not None for name in _EXPLAIN_FIELDS) + 1


def _replace(case: TriageCase, **changes: Any) -> TriageCase:
    values = {**case.__dict__, **changes}
    return TriageCase(**values)
