"""Model-level latency: every backend, same process, same inputs, at 1 and 2 threads.

Inputs per backend and thread count: a real complaint of the median length, the real length
distribution (every complaint in a fixed shuffled order), and fixed 16/32/64/128 tokens.
Backends run one after another, never concurrently, each warmed up first: a hot loop, weights in
cache where they fit. Then the median complaint again, cache-cold and interleaved
(``bench.cold_cache``, input ``median_cold``): the boards' regime, with paired ratios.
"""

from __future__ import annotations

import gc
import time
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import backends as B
from bench import cold_cache
from bench.inputs import BenchInputs, median_length_ids
from bench.stats import LoopBudget, summarize_ms, time_calls


COLD_INPUT = "median_cold"  # the median complaint, cache-cold and interleaved (bench.cold_cache)


@dataclass(frozen=True)
class ModelLevelConfig:
    threads: tuple[int, ...] = (1, 2)
    fixed_lengths: tuple[int, ...] = (16, 32, 64, 128)
    with_real_distribution: bool = True
    with_torch: bool = True
    budget: LoopBudget = LoopBudget()
    student_onnx: Path | None = None
    cold_budget: cold_cache.ColdBudget | None = cold_cache.ColdBudget()  # None: no cache-cold pass


def input_sets(inputs: BenchInputs, config: ModelLevelConfig) -> list[tuple[str, int, Callable[[int], np.ndarray]]]:
    """(label, tokens, i -> ids) for every input the backends are timed on."""
    median_ids = median_length_ids(inputs)
    sets: list[tuple[str, int, Callable[[int], np.ndarray]]] = [
        ("median", int(median_ids.shape[1]), lambda i: median_ids)]
    if config.with_real_distribution:
        order = np.random.default_rng(0).permutation(len(inputs.real_ids))
        real = [inputs.real_ids[j] for j in order]
        sets.append(("real", int(np.mean(inputs.lengths).round()), lambda i: real[i % len(real)]))
    for length in config.fixed_lengths:
        ids = inputs.fixed_ids[length]
        sets.append((f"len{length}", length, lambda i, ids=ids: ids))
    return sets


def attention_layers(model_path: Path) -> int:
    """Transformer layers in an ONNX graph, counted by its attention softmaxes (or fused Attention)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return sum(1 for n in graph.node if n.op_type in ("Softmax", "Attention", "MultiHeadAttention"))


def locate_student_onnx(repo: Path) -> Path | None:
    """An fp32 student graph left by the model build, if any."""
    for pattern in ("models/**/*fp32*.onnx", "export/**/*fp32*.onnx", "build/**/*fp32*.onnx", "var/**/*fp32*.onnx"):
        found = sorted(repo.glob(pattern))
        if found:
            return found[0]
    return None


def time_backend(backend: B.Backend, inputs: BenchInputs, sets: list, budget: LoopBudget, log: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    for label, tokens, ids_for in sets:
        try:
            samples, cpu_s = time_calls(lambda i: backend(ids_for(i), inputs.features), budget)
        except Exception as error:  # e.g. a graph whose position table is shorter than the input
            rows.append({"backend": backend.name, "threads": backend.threads, "input": label, "tokens": tokens,
                         "error": f"{type(error).__name__}: {str(error)[:200]}"})
            log(f"  {backend.name:<22} t={backend.threads} {label:<7} ({tokens:>3} tok) cannot run: {type(error).__name__}")
            continue
        stats = summarize_ms(samples)
        rows.append({"backend": backend.name, "threads": backend.threads, "input": label, "tokens": tokens, **stats,
                     "cpu_s_per_inference": float(f"{cpu_s / max(1, stats['n']):.4g}")})
        log(f"  {backend.name:<22} t={backend.threads} {label:<7} ({tokens:>3} tok) p50 {stats['p50_ms']:8.3f} ms  p99 {stats['p99_ms']:8.3f} ms  n={stats['n']}")
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Every figure also as a ratio to the shipped bundle at the same threads and input."""
    shipped = {(r["threads"], r["input"]): r for r in rows if r["backend"] == B.SHIPPED and "error" not in r}
    for row in rows:
        ref = shipped.get((row["threads"], row["input"]))
        if ref and "error" not in row:
            row["p50_vs_shipped"] = round(row["p50_ms"] / ref["p50_ms"], 3)
            row["p99_vs_shipped"] = round(row["p99_ms"] / ref["p99_ms"], 3)


def run(bundle_dir: Path, inputs: BenchInputs, config: ModelLevelConfig, log: Callable[[str], None]) -> dict[str, Any]:
    from edge.inference.bundle import verify

    sets = input_sets(inputs, config)
    bundle = verify(bundle_dir)
    shipped_layers = attention_layers(bundle.model_file)
    rows: list[dict[str, Any]] = []
    described: dict[str, str] = {}
    skipped: dict[str, str] = {}

    torch_models: dict[str, Any] = {}
    student_onnx = config.student_onnx
    workdir = tempfile.TemporaryDirectory(prefix="bench-onnx-")
    if config.with_torch:
        try:
            import torch  # noqa: F401
            import transformers

            transformers.utils.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
            from bench import torch_models as loader

            torch_models["teacher"] = loader.load("teacher")
            # Match the shipped student's depth when the build shrank it (same layers, fair ratio).
            torch_models["student"] = loader.load("student", layers=shipped_layers if 0 < shipped_layers < 6 else None)
        except ImportError as error:
            skipped[B.TEACHER_TORCH_FP32] = skipped[B.STUDENT_TORCH_FP32] = f"torch/transformers not installed ({error.name})"
    else:
        skipped[B.TEACHER_TORCH_FP32] = skipped[B.STUDENT_TORCH_FP32] = "PyTorch backends disabled (--no-torch)"

    if student_onnx is None and "student" in torch_models:
        student_onnx = Path(workdir.name) / "student-fp32.onnx"
        from bench import torch_models as tm

        tm.export_onnx_fp32(torch_models["student"], str(student_onnx))
        described[B.STUDENT_ORT_FP32] = (f"exported by bench (export.onnx_export when present) from the PyTorch student "
                                          f"({torch_models['student'].weights}), opset 17")
    elif student_onnx is not None:
        described[B.STUDENT_ORT_FP32] = f"fp32 graph {student_onnx}"
    else:
        skipped[B.STUDENT_ORT_FP32] = "no fp32 student graph found and torch unavailable to export one"

    flusher: cold_cache.CacheFlusher | None = None
    for threads in config.threads:
        log(f"model level, {threads} thread(s):")
        shipped = B.shipped_backend(bundle_dir, threads)
        described[B.SHIPPED] = shipped.description
        candidates: list[B.Backend] = []
        for kind, name in (("teacher", B.TEACHER_TORCH_FP32), ("student", B.STUDENT_TORCH_FP32)):
            if kind in torch_models:
                model = torch_models[kind]
                described[name] = f"transformers {model.weights}, {model.layers} layers, fp32"
                candidates.append(B.torch_backend(name, model.module, threads, described[name], model.vocab_size))
        if student_onnx is not None:
            candidates.append(B.ort_backend(B.STUDENT_ORT_FP32, student_onnx, threads, described[B.STUDENT_ORT_FP32]))
        for backend in [*candidates, shipped]:
            time.sleep(0.3)  # let the previous backend's worker threads stop spinning before timing
            rows.extend(time_backend(backend, inputs, sets, config.budget, log))
        if config.cold_budget is not None:
            flusher = flusher or cold_cache.CacheFlusher()
            cold = cold_cache.run([*candidates, shipped], median_length_ids(inputs), inputs.features, COLD_INPUT,
                                  config.cold_budget, flusher)
            for row in cold:
                log(f"  {row['backend']:<22} t={threads} cold    ({row['tokens']:>3} tok) p50 {row['p50_ms']:8.3f} ms  "
                    f"p99 {row['p99_ms']:8.3f} ms  n={row['n']}  paired x shipped {row.get('p50_paired_vs_shipped')}")
            rows.extend(cold)
        del candidates, shipped
        gc.collect()
    add_ratios(rows)
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    result = {"rows": rows, "failed": failed, "backends": described, "skipped": skipped, "shipped_attention_layers": shipped_layers,
              "student_onnx": str(student_onnx) if student_onnx else None,
              "cold_cache": flusher.describe() if flusher is not None else None}
    workdir.cleanup()
    return result
