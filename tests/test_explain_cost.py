"""Explanations at their real cost: one batched model call with a bounded number of variants
(long complaints are cut into MAX_EXPLAIN_SPANS spans), priced by admission by that size."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.clinical.case import TriageCase
from edge.inference.session import TriageModel
from edge.service.scheduler import Scheduler
from edge.inference.triager import MAX_EXPLAIN_SPANS, Triager, explain_variants


@pytest.fixture(scope="module")
def model(tiny_bundle: Path) -> TriageModel:
    return TriageModel.load(tiny_bundle)


def _counting(model: TriageModel) -> list[int]:
    """Batch sizes of the real model's calls (the real inference still runs)."""
    sizes: list[int] = []
    real = model.probabilities

    def probabilities(cases, *args, **kwargs):  # max_tokens, scale: whatever the triager passes
        sizes.append(len(cases))
        return real(cases, *args, **kwargs)

    model.probabilities = probabilities  # type: ignore[method-assign]
    return sizes


def test_a_long_complaint_costs_one_bounded_batch(model) -> None:
    words = " ".join(f"word{i}" for i in range(250))
    case = TriageCase(complaint="chest pain " + words, age=60, hr=120)
    sizes = _counting(model)
    explanation = Triager(model).explain(case)
    del model.probabilities
    assert sizes == [1 + MAX_EXPLAIN_SPANS + 2] == [explain_variants(case)]
    assert 0 < len(explanation) <= 8
    phrases = [e["name"] for e in explanation if e["kind"] == "phrase"]
    assert phrases and all(len(p.split()) > 1 for p in phrases), "past the cap, spans of words are left out"


def test_short_complaints_still_explain_word_by_word(model) -> None:
    case = TriageCase(complaint="crushing chest pain", age=60)
    explanation = Triager(model).explain(case)
    assert {e["name"] for e in explanation if e["kind"] == "phrase"} == {"crushing", "chest", "pain"}
    assert explain_variants(case) == 3 + 1 + 1


def test_admission_prices_an_explanation_by_its_size() -> None:
    scheduler = Scheduler(lambda: Triager(None), initial_service_s=0.01)
    short = explain_variants(TriageCase(complaint="cough"))
    long = explain_variants(TriageCase(complaint=" ".join(["pain"] * 200), age=50, hr=90, sbp=120))
    assert scheduler.job_cost(1, short) < scheduler.job_cost(1, long) == scheduler.job_cost(1, MAX_EXPLAIN_SPANS + 4)
