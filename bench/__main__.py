"""``python -m bench [--quick]``: model level, compute floor, service load (normal and faked hot
board), cold start and energy; writes results.json, summary.json, results.md and PNG plots into
bench/results/ (or --out). Quick mode (< 1 minute) trims every budget, and falls back to the tiny
test bundle when the shipped one is missing, saying so in the summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench import energy, model_level, plots, report, roofline, service_level, service_runs
from bench.backends import SHIPPED
from bench.inputs import build_inputs, load_cases
from bench.cold_cache import ColdBudget
from bench.stats import LoopBudget

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "triage-minilm-int8"
CONTAMINATION_LOAD = 0.5  # load average per core above which timings are flagged as contaminated


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small budgets, finishes in under a minute")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="shipped bundle (default %(default)s)")
    parser.add_argument("--student-onnx", type=Path, help="fp32 student ONNX graph (default: found or exported)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="output directory")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch backends")
    parser.add_argument("--no-service", action="store_true", help="skip the service, hot-board and cold-start runs")
    parser.add_argument("--floor-graph", type=Path, help="ONNX graph for the floor section (default: the bundle's); "
                        "it is only counted and timed, not verified, so an older bundle's graph can be measured")
    return parser.parse_args(argv)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("onnxruntime", "numpy", "tokenizers", "torch", "transformers"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def resolve_bundle(path: Path, quick: bool, scratch: Path) -> tuple[Path, str]:
    if (path / "manifest.json").is_file():
        return path, "the shipped bundle"
    if not quick:
        raise SystemExit(f"bench: no bundle at {path} (manifest.json missing); build it or pass --model DIR, "
                         "or run --quick to use the tiny test bundle")
    from tests.kit.tiny_bundle import build_tiny_bundle

    return build_tiny_bundle(scratch / "tiny-bundle"), (f"TINY TEST BUNDLE: {path} is missing, so quick mode used "
                                                         "tests.kit.tiny_bundle — figures are not the shipped model's")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))

    def log(message: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {message}", flush=True)

    errors: dict[str, str] = {}
    warnings: list[str] = []
    load_before = [round(x, 2) for x in os.getloadavg()]
    if load_before[0] > CONTAMINATION_LOAD * (os.cpu_count() or 1):
        warnings.append(f"load average {load_before} at start on {os.cpu_count()} cores: other work was running, "
                        "timings are contaminated (slower and noisier than on a quiet machine)")

    import onnxruntime

    onnxruntime.set_default_logger_severity(4)  # a length a graph cannot take is recorded, not printed in red
    bundle_dir, bundle_note = resolve_bundle(args.model, args.quick, scratch)
    from edge.inference.bundle import verify

    bundle = verify(bundle_dir)
    if "TINY" in bundle_note:
        warnings.append(bundle_note)
    inputs = build_inputs(bundle.tokenizer_file, int(bundle.manifest["max_seq_len"]))
    log(f"bundle {bundle.name} {bundle.version} ({bundle_note}); inputs: {inputs.source}, median {inputs.median_length} tokens")

    if args.quick:
        ml_config = model_level.ModelLevelConfig(threads=(1,), fixed_lengths=(32,), with_torch=not args.no_torch,
                                                 budget=LoopBudget(warmup=2, min_runs=10, max_runs=100, max_seconds=0.25),
                                                 cold_budget=ColdBudget(warmup=2, min_rounds=8, max_rounds=20, max_seconds=3.0),
                                                 student_onnx=args.student_onnx)
        load_config = service_level.LoadConfig(concurrency=(1, 4), seconds_per_level=1.5, max_requests_per_level=600,
                                               hot_concurrency=(4,), critical_concurrency=(4,))
        cold_starts = 0
    else:
        ml_config = model_level.ModelLevelConfig(with_torch=not args.no_torch, student_onnx=args.student_onnx)
        load_config = service_level.LoadConfig()
        cold_starts = 3

    # 1. Model level.
    model: dict[str, Any] = {"rows": [], "backends": {}, "skipped": {}}
    try:
        model = model_level.run(bundle_dir, inputs, ml_config, log)
    except Exception as error:  # keep going: the other phases still say something
        errors["model_level"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()

    # The floor: roofline (compute vs memory traffic) per token length, and the board estimates.
    floor_result: dict[str, Any] = {}
    floor_graph = args.floor_graph or bundle.model_file
    floor_inputs = inputs if args.floor_graph is None else roofline.inputs_for(floor_graph, inputs)
    try:
        floor_result = roofline.run(floor_graph, floor_inputs, ml_config.threads, args.quick, log)
    except Exception as error:
        errors["floor"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()

    # Where the shipped graph's time goes (explains the distance to the floor).
    profile_result: dict[str, Any] = {}
    try:
        from bench.profile import op_profile

        median_ids = next(i for i in inputs.real_ids if i.shape[1] == inputs.median_length)
        profile_result = op_profile(bundle.model_file, median_ids, inputs.features, runs=10 if args.quick else 50)
        log(f"shipped graph profile at {inputs.median_length} tokens: {profile_result['top_ops_ms_per_inference']}")
    except Exception as error:
        errors["profile"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()

    # 2.–3. Service level (normal, hot, critical board) and cold start.
    service: dict[str, Any] = {}
    cold: list[float] = []
    if not args.no_service:
        from edge.service.config import ServiceConfig

        _, cases = load_cases()
        service, cold = service_runs.run(bundle_dir, service_level.payloads_from(cases), load_config,
                                         ServiceConfig().deadline_ms, cold_starts, scratch, log, errors)

    # 4. Energy: the shipped bundle, 1 thread, median complaint.
    energy_result: dict[str, Any] = {}
    shipped_row = next((r for r in model["rows"] if r["backend"] == SHIPPED and r["input"] == "median"
                        and r["threads"] == ml_config.threads[0]), None)
    try:
        from edge.inference.session import RuntimeOptions, TriageModel

        tm = TriageModel.load(bundle_dir, RuntimeOptions(intra_op_threads=1))
        ids = next(i for i in inputs.real_ids if i.shape[1] == inputs.median_length)
        runs = 200 if args.quick else 3000

        def loop() -> int:
            for _ in range(runs):
                tm.run_arrays(ids, np.ones_like(ids), inputs.features)
            return runs

        energy_result = energy.measure(loop, shipped_row["cpu_s_per_inference"] if shipped_row and not energy.rapl_zones() else None)
        if service.get("normal") and "watts_per_busy_core" in energy_result:
            # The whole request path (HTTP, JSON, rules, audit write) on the same power figure.
            per_request = service["normal"]["server_cpu_seconds_per_request"]
            energy_result["service_joules_per_request"] = float(f"{per_request * energy_result['watts_per_busy_core']:.4g}")
            energy_result["service_cpu_seconds_per_request"] = per_request
    except Exception as error:
        errors["energy"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()

    # 5. Summary, table, plots.
    load_after = [round(x, 2) for x in os.getloadavg()]
    backends = report.backend_figures(model) if model["rows"] else {}
    shipped = backends.get(SHIPPED, {})
    floor_tokens = floor_result.get("median_tokens", inputs.median_length)
    # fraction_of_floor divides by the p50 of the same graph timed at the same length (roofline.py).
    floor_p50 = floor_result.get("by_threads", {}).get(str(ml_config.threads[0]), {}).get("shipped_p50_ms", {}).get(str(floor_tokens))
    floor_head = roofline.headline(floor_result, ml_config.threads[0], floor_tokens, floor_p50)
    cache_cold = report.cold_figures(model)
    normal = service.get("normal")
    sustained = service_level.max_sustained_rps(normal["levels"]) if normal else None
    summary: dict[str, Any] = {
        "quick": args.quick,
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": None,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "arch": platform.machine(), "versions": versions()},
        "load_average": {"before": load_before, "after": load_after,
                         "note": "1/5/15-minute load averages; above ~1 per core means shared-CPU contamination"},
        "bundle": {"path": str(bundle_dir), "name": bundle.name, "version": bundle.version, "sha256": bundle.sha256,
                   "created": bundle.manifest.get("created"), "note": bundle_note,
                   "is_shipped": "TINY" not in bundle_note},
        "inputs": {"source": inputs.source, "median_tokens": inputs.median_length,
                   "mean_tokens": round(float(np.mean(inputs.lengths)), 2), "length_histogram": inputs.length_histogram()},
        "backends": backends,
        "skipped_backends": model.get("skipped", {}),
        **report.speedups(backends),
        **cache_cold,
        **report.cold_fraction_of_floor(cache_cold, floor_head["floor_ms"], same_graph=args.floor_graph is None),
        **floor_head,
        "floor_tokens": floor_tokens, "floor_graph": str(floor_graph), "floor_shipped_p50_ms": floor_p50,
        "shipped_op_profile": profile_result,
        "shipped_compute": str(bundle.manifest.get("quantization", {}).get("activations", "unknown")),
        "floor_method": roofline.METHOD,
        "floor_flops_at_median": floor_result.get("flops", {}).get(str(floor_tokens), {}).get("flops"),
        # The model-level rows time the bundle's graph: joined with the floor only when it is the same graph.
        "floor_table": report.floor_table(floor_result, model["rows"] if args.floor_graph is None else []) if floor_result else [],
        "roofline_table": report.roofline_table(floor_result, ml_config.threads) if floor_result else [],
        "service_p99_ms": normal["levels"][0]["p99_ms"] if normal else None,
        "service_p99_ms_by_concurrency": {str(r["concurrency"]): r["p99_ms"] for r in normal["levels"]} if normal else None,
        "service_p50_ms_by_concurrency": {str(r["concurrency"]): r["p50_ms"] for r in normal["levels"]} if normal else None,
        "service_max_rps": sustained["rps"] if sustained else None,
        "service_max_rps_detail": sustained,
        **{f"service_{key}": ({"levels": [{k: r[k] for k in ("concurrency", "throughput_rps", "model_answers_rps", "p50_ms",
                                                               "p99_ms", "degraded", "degraded_by_reason", "deadline_misses",
                                                               "errors_5xx")} for r in service[key]["levels"]],
                                "fake_board": service[key].get("fake_board"), "policy_metrics": service[key].get("policy_metrics")}
                               if service.get(key) else None) for key in ("hot", "critical")},
        "rss_mb": normal["rss_mb_max"] if normal else None,
        "cold_start_s": round(float(np.median(cold)), 3) if cold else None,
        "cold_start_samples_s": [round(c, 3) for c in cold],
        "joules_per_inference": energy_result.get("joules_per_inference"),
        "joules_method": energy_result.get("method"),
        "energy": energy_result,
        "definitions": {
            "p50_ms/p99_ms": "per-backend batch-1 latency at the median complaint length, 1 thread (by_threads has 2)",
            "speedup_vs_*": "that backend's p50 / the shipped bundle's p50, same input and threads",
            "service_p99_ms": "end-to-end p99 at 1 client over loopback; *_by_concurrency for the rest",
            "service_max_rps": "highest rate of model (non-degraded) answers at a concurrency whose p99 stays under the deadline with no 5xx",
            "rss_mb": "maximum server RSS sampled during the normal-board load run",
            "cold_start_s": "median of process start → first /readyz 200",
        },
        "warnings": warnings,
        "errors": errors,
    }
    plot_names: list[str] = []
    try:
        if model["rows"]:
            plot_names += [plots.latency_vs_tokens(floor_result, model["rows"], out), plots.median_length_bars(summary, out)]
        if floor_result.get("by_threads"):
            plot_names.append(plots.roofline_vs_measured(floor_result, out))
        if service:
            plot_names += [plots.service_curves(service, out), plots.service_rss(service, out)]
    except ImportError as error:
        warnings.append(f"plots skipped: {error.name} not installed (pip install -e '.[export]')")
    summary["plots"] = plot_names
    summary["elapsed_s"] = round(time.time() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"model_level": model, "floor": floor_result, "service": service,
                                                  "cold_start_s": cold, "energy": energy_result}, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(report.markdown(summary, model, service), encoding="utf-8")
    log(f"wrote {out}/summary.json, results.json, results.md, {', '.join(plot_names)}; errors: {sorted(errors) or 'none'}")
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    return 1 if errors.get("model_level") else 0


if __name__ == "__main__":
    sys.exit(main())
