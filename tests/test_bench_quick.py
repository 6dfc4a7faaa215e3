"""`python -m bench --quick` runs end to end and writes a valid summary.

No timing is asserted (speed is what the bench reports, not what tests check): only that every
phase ran, produced finite positive figures of the right kind, and said what it measured. The
PyTorch backends are switched off here to keep the test short; the shipped bundle is pointed at a
missing directory so the tiny-bundle fallback (and its disclosure) is exercised.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    pytest.importorskip("onnx")
    out = tmp_path_factory.mktemp("bench-results")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-torch", "--out", str(out),
         "--model", str(out / "no-such-bundle")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    return out, done


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_mode_exits_cleanly(quick_run):
    _, done = quick_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_summary_has_every_required_figure(quick_run):
    out, done = quick_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quick"] is True
    assert summary["errors"] == {}, summary["errors"]
    shipped = summary["backends"]["shipped_int8_ort"]
    assert _positive(shipped["p50_ms"]) and shipped["p99_ms"] >= shipped["p50_ms"]
    assert _positive(summary["backends"]["student_ort_fp32"]["p50_ms"]) if "student_ort_fp32" in summary["backends"] else True
    assert _positive(summary["floor_ms"]) and _positive(summary["fraction_of_floor"])
    assert _positive(summary["floor_flops_at_median"])
    # The floor is the roofline: never below the compute-only floor of the arithmetic the graph does.
    assert summary["floor_bound"] in ("memory", "compute")
    assert summary["floor_ms"] >= summary["compute_floor_ms_fp32"] * 0.999
    assert _positive(summary["compute_floor_ms_int8"]) and _positive(summary["memory_bandwidth_gbs"])
    assert all(_positive(v) for v in summary["floor_bytes_per_inference"].values())
    for key in ("service_p99_ms", "rss_mb", "cold_start_s", "joules_per_inference"):
        assert _positive(summary[key]), key
    assert summary["service_max_rps"] is None or _positive(summary["service_max_rps"])
    assert summary["joules_method"] in ("board_power_sensor", "rapl", "estimate")
    assert summary["energy"]["detail"]
    if summary["joules_method"] == "estimate":  # an estimate always carries what it assumes
        assert "not measured here" in summary["energy"]["assumptions"]
    assert len(summary["load_average"]["before"]) == 3
    # Both speedup keys exist; without torch they are None and the reason is recorded.
    assert summary["speedup_vs_student_pytorch_fp32"] is None
    assert summary["speedup_vs_teacher_pytorch_fp32"] is None
    assert "--no-torch" in summary["skipped_backends"]["student_pytorch_fp32"]
    # The cache-cold, interleaved pass ran and says what it flushed; a baseline not run has no speedup.
    cold = summary["cache_cold"]
    assert _positive(cold["backends"]["shipped_int8_ort"]["1"]["p50_ms"])
    assert cold["backends"]["shipped_int8_ort"]["1"]["p50_paired_vs_shipped"] == 1.0
    assert _positive(cold["flush"]["flush_mib"])
    assert summary["speedup_cold_vs_teacher_pytorch_fp32"] is None
    assert _positive(summary["fraction_of_floor_cold"])


def test_tiny_bundle_fallback_is_disclosed(quick_run):
    out, _ = quick_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bundle"]["is_shipped"] is False
    assert any("TINY TEST BUNDLE" in w for w in summary["warnings"])
    assert "TINY TEST BUNDLE" in (out / "results.md").read_text()


def test_service_ran_loopback_levels_and_hot_board(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    normal = results["service"]["normal"]
    assert [level["concurrency"] for level in normal["levels"]] == [1, 4]
    for level in normal["levels"]:
        assert level["requests"] > 0
        assert level["errors_5xx"] == 0, level["status_counts"]
    assert normal["rss_samples"], "RSS was never sampled"
    assert results["service"]["hot"]["levels"][0]["requests"] > 0


def test_critical_board_answers_degraded_toward_review(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    critical = results["service"]["critical"]["levels"][0]
    assert critical["requests"] > 0
    assert critical["degraded"] == critical["requests"], critical["status_counts"]
    assert set(critical["degraded_by_reason"]) == {"thermal"}
    assert critical["degraded_low_acuity"] == 0


def test_roofline_per_length_and_board_estimates(quick_run):
    out, _ = quick_run
    summary = json.loads((out / "summary.json").read_text())
    lengths = {row["tokens"] for row in summary["roofline_table"]}
    assert {3, 5, 8, 11, 16, 32} <= lengths
    for row in summary["roofline_table"]:
        for variant in ("as_loaded", "int8_stored", "fp32"):
            assert _positive(row[f"{variant}_floor_ms"]) and row[f"{variant}_bound"] in ("memory", "compute")
    estimates = summary["board_estimates"]
    assert {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano-8gb"} <= set(estimates)
    assert all(e["estimate"] is True and e["assumptions"] for e in estimates.values())
    assert "Board estimates (ESTIMATE" in (out / "results.md").read_text()


def test_plots_and_table_written(quick_run):
    out, _ = quick_run
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["plots"]) == 5 and "roofline_vs_measured.png" in summary["plots"]
    for name in summary["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    table = (out / "results.md").read_text()
    assert "| shipped_int8_ort | 1 | median |" in table
