"""bench.cold_cache: interleaved rounds in rotated order, the flush before every timed call, and
paired ratios. No timing is asserted; the calls here are counters."""

from __future__ import annotations

import pytest

from bench.cold_cache import CacheFlusher, ColdBudget, paired_ratio, time_interleaved


def test_rounds_rotate_and_flush_before_every_timed_call() -> None:
    log: list[str] = []
    calls = {name: (lambda name=name: log.append(name)) for name in ("a", "b", "c")}
    budget = ColdBudget(warmup=1, min_rounds=3, max_rounds=3, max_seconds=0.0)
    samples = time_interleaved(calls, budget, before_each=lambda: log.append("flush"))
    assert log[:3] == ["a", "b", "c"]  # warm-up, unflushed
    timed = log[3:]
    assert timed[0::2] == ["flush"] * 9
    assert timed[1::2] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # each round starts one later
    assert {name: len(values) for name, values in samples.items()} == {"a": 3, "b": 3, "c": 3}


def test_stops_at_the_time_budget_only_after_the_minimum_rounds() -> None:
    calls = {"only": lambda: None}
    samples = time_interleaved(calls, ColdBudget(warmup=0, min_rounds=4, max_rounds=50, max_seconds=0.0))
    assert len(samples["only"]) == 4


def test_paired_ratio_is_the_median_of_per_round_ratios() -> None:
    # Slow stretches in rounds 2 and 3 hit both sides: the ratio of the medians would be 3 / 1,
    # the paired ratio is 2, the ratio in four rounds of five.
    slow = [3.0, 20.0, 20.0, 2.0, 2.0]
    fast = [1.0, 10.0, 10.0, 1.0, 1.0]
    assert paired_ratio(slow, fast) == pytest.approx(2.0)


def test_the_flush_buffer_outgrows_the_cache() -> None:
    flusher = CacheFlusher(llc_bytes=2 << 20)
    assert flusher.bytes >= 3 << 20
    flusher.flush()
    assert flusher.describe() == {"flush_mib": 3.0, "llc_mib": 2.0, "evicts_llc": True}
