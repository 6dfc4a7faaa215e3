"""The soak's helpers: mixed lengths really are mixed, and the growth figure is a slope."""

from __future__ import annotations

import json

import pytest

from bench.soak import mixed_payloads, slope_mb_per_min


def test_mixed_payloads_cover_short_and_long_complaints_with_and_without_vitals() -> None:
    cases = [json.loads(p) for p in mixed_payloads(200)]
    lengths = {len(c["complaint"].split()) for c in cases}
    assert min(lengths) <= 3 and max(lengths) >= 30 and len(lengths) > 20
    with_vitals = sum("hr" in c for c in cases)
    assert 0 < with_vitals < len(cases)


def test_slope_is_mb_per_minute_after_warmup_and_none_when_too_short() -> None:
    flat_then_growing = [{"t_s": float(t), "rss_mb": 100.0 + (0.5 * (t - 30) / 60 if t >= 30 else 50.0)}
                         for t in range(0, 600)]
    assert slope_mb_per_min(flat_then_growing, after_s=30) == pytest.approx(0.5, rel=1e-3)
    assert slope_mb_per_min(flat_then_growing[:35], after_s=30) is None
