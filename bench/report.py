"""summary.json's headline figures and the markdown table, from the raw results."""

from __future__ import annotations

from typing import Any

from bench.backends import ORDER, SHIPPED, STUDENT_ORT_FP32, STUDENT_TORCH_FP32, TEACHER_TORCH_FP32
from bench.model_level import COLD_INPUT

BASELINES = (STUDENT_ORT_FP32, STUDENT_TORCH_FP32, TEACHER_TORCH_FP32)  # speedup_vs_<id>, speedup_cold_vs_<id>


def _row(rows: list[dict[str, Any]], backend: str, threads: int, label: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["backend"] == backend and r["threads"] == threads and r["input"] == label), None)


def backend_figures(model: dict[str, Any]) -> dict[str, Any]:
    """Per backend at the median complaint length: 1 thread as the headline, every thread count too."""
    rows = model["rows"]
    out: dict[str, Any] = {}
    for name in ORDER:
        by_threads = {}
        for t in sorted({r["threads"] for r in rows}):
            row = _row(rows, name, t, "median")
            if row:
                by_threads[str(t)] = {k: row.get(k) for k in ("p50_ms", "p99_ms", "n", "p50_vs_shipped", "p99_vs_shipped")}
        if by_threads:
            head = by_threads.get("1") or next(iter(by_threads.values()))
            out[name] = {"p50_ms": head["p50_ms"], "p99_ms": head["p99_ms"], "threads": 1 if "1" in by_threads else None,
                         "by_threads": by_threads, "description": model["backends"].get(name)}
    return out


def cold_figures(model: dict[str, Any]) -> dict[str, Any]:
    """The cache-cold, interleaved pass at the median complaint (bench.cold_cache): per backend and
    thread count p50/p99 and the paired ratio to the shipped bundle; headline speedups at 1 thread."""
    rows = [r for r in model["rows"] if r["input"] == COLD_INPUT]
    if not rows:
        return {}
    figures: dict[str, Any] = {}
    for r in rows:
        figures.setdefault(r["backend"], {})[str(r["threads"])] = {
            k: r.get(k) for k in ("p50_ms", "p99_ms", "n", "p50_paired_vs_shipped")}
    result: dict[str, Any] = {"cache_cold": {"flush": model.get("cold_cache"), "backends": figures,
                                             "method": "the last-level cache flushed before every timed call; backends "
                                                       "round-robin, order rotated each round; speedup = median over "
                                                       "rounds of that backend's time / the shipped bundle's time"}}
    for name in BASELINES:
        result[f"speedup_cold_vs_{name}"] = figures.get(name, {}).get("1", {}).get("p50_paired_vs_shipped")
    return result


def cold_fraction_of_floor(cold: dict[str, Any], floor_ms: float | None, same_graph: bool) -> dict[str, Any]:
    """The roofline floor (``roofline.headline``'s ``floor_ms``) over the shipped graph's cache-cold
    p50 at 1 thread (``cold_figures``): the regime the floor's memory term describes (weights from
    DRAM). ``fraction_of_floor`` divides by a hot-loop p50, which on a machine whose cache holds
    the weights is not bound by that term."""
    cold_p50 = cold.get("cache_cold", {}).get("backends", {}).get(SHIPPED, {}).get("1", {}).get("p50_ms")
    if not same_graph or not floor_ms or not cold_p50:
        return {"fraction_of_floor_cold": None}
    return {"fraction_of_floor_cold": round(floor_ms / cold_p50, 4)}


def speedups(backends: dict[str, Any]) -> dict[str, Any]:
    shipped = backends.get(SHIPPED)
    result: dict[str, Any] = {}
    for name in BASELINES:
        key = f"speedup_vs_{name}"
        other = backends.get(name)
        if not shipped or not other:
            result[key] = None
            continue
        result[key] = round(other["p50_ms"] / shipped["p50_ms"], 2)
        result[f"{key}_by_threads"] = {t: round(v["p50_ms"] / shipped["by_threads"][t]["p50_ms"], 2)
                                       for t, v in other["by_threads"].items() if t in shipped["by_threads"]}
    return result


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def floor_table(floor: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per thread count and length: FLOPs, the compute-only floors, the shipped p50 and the fraction reached."""
    out = []
    for threads, entry in floor.get("by_threads", {}).items():
        for tokens, floor_ms in entry["by_tokens"].items():
            shipped = next((r for r in rows if r["backend"] == SHIPPED and r["threads"] == int(threads)
                            and r["tokens"] == int(tokens) and r["input"] != "real"), None)
            fp32_ms = entry.get("by_tokens_fp32", {}).get(tokens)
            out.append({"threads": int(threads), "tokens": int(tokens), "mflops": round(floor["flops"][tokens]["flops"] / 1e6, 2),
                        "int8_peak_gops": entry["throughput"]["peak_gops"], "compute_floor_ms_int8": floor_ms,
                        "fp32_peak_gops": entry.get("throughput_fp32", {}).get("peak_gops"), "compute_floor_ms_fp32": fp32_ms,
                        "shipped_p50_ms": shipped["p50_ms"] if shipped else None,
                        "fraction_of_compute_floor_int8": float(f"{floor_ms / shipped['p50_ms']:.3g}") if shipped else None,
                        "fraction_of_compute_floor_fp32": float(f"{fp32_ms / shipped['p50_ms']:.3g}") if shipped and fp32_ms else None})
    return out


VARIANTS = ("as_loaded", "int8_stored", "fp32")


def roofline_table(floor: dict[str, Any], threads: tuple[int, ...]) -> list[dict[str, Any]]:
    """Per thread count and length: each graph's roofline floor (and its bound) beside the
    measured p50 of the graph as loaded."""
    out = []
    for t in threads:
        entry = floor.get("by_threads", {}).get(str(t), {})
        roof = entry.get("roofline", {})
        for tokens in floor.get("lengths", []):
            key = str(tokens)
            p50 = entry.get("shipped_p50_ms", {}).get(key)
            row: dict[str, Any] = {"threads": t, "tokens": tokens, "mflops": round(floor["flops"][key]["flops"] / 1e6, 2),
                                   "measured_p50_ms": p50,
                                   "activation_kib": round(floor.get("activations", {}).get(key, {}).get("bytes", 0) / 1024)}
            for variant in VARIANTS:
                cell = roof.get(variant, {}).get(key, {})
                row[f"{variant}_mib"] = round(cell.get("bytes", 0) / (1 << 20), 2)
                row[f"{variant}_floor_ms"] = cell.get("floor_ms")
                row[f"{variant}_bound"] = cell.get("bound")
            loaded = row["as_loaded_floor_ms"]
            row["fraction_of_floor"] = float(f"{loaded / p50:.3g}") if p50 and loaded else None
            out.append(row)
    return out


def _roofline_markdown(summary: dict[str, Any]) -> list[str]:
    stream = summary.get("memory_bandwidth") or {}
    lines = ["", "## Roofline floor (compute vs memory traffic)", "", summary["floor_method"], "",
             f"This machine: bandwidth {stream.get('best_gbs')} GB/s (STREAM copy {stream.get('copy_gbs')}, triad "
             f"{stream.get('triad_gbs')} STREAM-counted / {stream.get('triad_gbs_actual')} as numpy moves it; arrays "
             f"{stream.get('array_mib')} MiB, LLC {stream.get('llc_mib')} MiB), int8 peak {summary.get('int8_peak_gops')} GOPS, "
             f"fp32 peak {summary.get('fp32_peak_gflops')} GFLOPS, load average before {summary['load_average']['before']}. "
             f"Weights fit in this LLC: {summary.get('weights_fit_in_llc')} (where they do, a hot loop reads them from "
             "cache and can beat the memory term; on the boards below they never fit).", "",
             "| threads | tokens | MFLOP | as loaded MiB | floor ms (bound) | int8 stored MiB | floor ms (bound) | fp32 MiB | "
             "floor ms (bound) | activations KiB (not in floor) | measured p50 ms | fraction of floor |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary.get("roofline_table", []):
        cells = " | ".join(f"{r[f'{v}_mib']} | {_fmt(r[f'{v}_floor_ms'], 3)} ({r[f'{v}_bound']})" for v in VARIANTS)
        lines.append(f"| {r['threads']} | {r['tokens']} | {r['mflops']} | {cells} | {r['activation_kib']} | "
                     f"{_fmt(r['measured_p50_ms'], 3)} | {_fmt(r['fraction_of_floor'], 3)} |")
    estimates = summary.get("board_estimates") or {}
    if estimates:
        first = next(iter(estimates.values()))
        lengths = list(first["by_variant"]["as_loaded"]["by_tokens"])
        lines += ["", "## Board estimates (ESTIMATE: not measured; same FLOPs and bytes, published-class board figures)", "",
                  "Assumptions: " + "; ".join(first["assumptions"]) + ".", "",
                  "| board | threads | graph | compute | " + " | ".join(f"{n} tok ms" for n in lengths) + " |",
                  "|---|---:|---|---|" + "---:|" * len(lengths)]
        for est in estimates.values():
            for variant, v in est["by_variant"].items():
                cells = " | ".join(f"{c['floor_ms']:.3g} {c['bound'][0]}" for c in v["by_tokens"].values())
                lines.append(f"| {est['board']} | {est['threads']} | {variant} | {v['compute']} {v['peak_gops']} G | {cells} |")
        lines += ["", "m = memory-bound, c = compute-bound. Board figures and where each comes from (assumed = an assumption):", ""]
        for est in estimates.values():
            if est["threads"] == 1:
                spec = est["spec"]
                lines.append(f"- {spec['name']}: " + "; ".join(
                    f"{k} {spec[k]['value']} ({spec[k]['source']}{', assumed' if spec[k]['assumed'] else ''})"
                    for k in ("ghz", "fp32_flops_per_cycle", "int8_ops_per_cycle", "stream_gbs", "llc_mib")))
    return lines


def markdown(summary: dict[str, Any], model: dict[str, Any], service: dict[str, Any]) -> str:
    lines = [f"# Benchmark results ({'quick' if summary['quick'] else 'full'} run, {summary['finished_utc']})", ""]
    lines += [f"- Machine: {summary['machine']['cpu']}, {summary['machine']['cores']} cores; load average "
              f"before {summary['load_average']['before']} / after {summary['load_average']['after']}"]
    lines += [f"- Bundle: {summary['bundle']['name']} {summary['bundle']['version']} ({summary['bundle']['note']})"]
    lines += [f"- Inputs: {summary['inputs']['source']}; median complaint {summary['inputs']['median_tokens']} tokens", ""]
    for warning in summary.get("warnings", []):
        lines.append(f"> {warning}")
    lines += ["", "## Model level (same process, same inputs, batch 1)", "",
              "| backend | threads | input | tokens | p50 ms | p99 ms | n | p50 × shipped | p99 × shipped |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    order = {n: i for i, n in enumerate(ORDER)}
    inputs = {"median": -3, COLD_INPUT: -2, "real": -1}
    for r in sorted(model["rows"], key=lambda r: (r["threads"], inputs.get(r["input"], r["tokens"]), order[r["backend"]])):
        lines.append(f"| {r['backend']} | {r['threads']} | {r['input']} | {r['tokens']} | {_fmt(r['p50_ms'], 3)} | "
                     f"{_fmt(r['p99_ms'], 3)} | {r['n']} | {_fmt(r.get('p50_vs_shipped'))} | {_fmt(r.get('p99_vs_shipped'))} |")
    if any(r["input"] == COLD_INPUT for r in model["rows"]):
        flush = model.get("cold_cache") or {}
        lines += ["", f"`{COLD_INPUT}`: the median complaint with the last-level cache flushed before every call (a "
                  f"{flush.get('flush_mib')} MiB read; LLC {flush.get('llc_mib')} MiB), weights streamed from memory as on "
                  "a board; backends interleaved round-robin. Paired × shipped (median over rounds of the per-round "
                  "ratio): " + ", ".join(f"{r['backend']} t={r['threads']} {_fmt(r.get('p50_paired_vs_shipped'))}"
                                          for r in model["rows"] if r["input"] == COLD_INPUT and r["backend"] != SHIPPED)]
    for r in model.get("failed", []):
        lines.append(f"\n{r['backend']} at {r['threads']} thread(s), {r['input']} ({r['tokens']} tokens): cannot run ({r['error']})")
    for name, why in model.get("skipped", {}).items():
        lines.append(f"\n{name}: skipped ({why})")
    if summary.get("floor_table"):
        lines += ["", "## Compute-only floor of the shipped graph (the old floor)", "",
                  "FLOPs / this CPU's measured int8 MatMulInteger peak, and / its fp32 MatMul peak; shipped p50 from the "
                  "model-level table. Ignores memory traffic, so at short lengths it is far below the roofline floor (next section).", "",
                  f"Shipped graph computes with: {summary.get('shipped_compute')}.", "",
                  "| threads | tokens | MFLOP | int8 peak GOPS | int8 floor ms | fp32 peak GFLOPS | fp32 floor ms | shipped p50 ms | fraction of int8 floor | fraction of fp32 floor |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in summary["floor_table"]:
            lines.append(f"| {r['threads']} | {r['tokens']} | {r['mflops']} | {r['int8_peak_gops']} | {_fmt(r['compute_floor_ms_int8'], 4)} | "
                         f"{r['fp32_peak_gops']} | {_fmt(r['compute_floor_ms_fp32'], 4)} | {_fmt(r['shipped_p50_ms'], 3)} | "
                         f"{_fmt(r['fraction_of_compute_floor_int8'], 3)} | {_fmt(r['fraction_of_compute_floor_fp32'], 3)} |")
    if summary.get("roofline_table"):
        lines += _roofline_markdown(summary)
    profile = summary.get("shipped_op_profile")
    if profile:
        lines += ["", f"ONNX Runtime profile of the shipped graph at {profile['tokens']} tokens, 1 thread "
                  f"(kernel time {profile['kernel_ms_per_inference']} ms per inference): "
                  + ", ".join(f"{op} {ms} ms ({profile['top_ops_share'].get(op, 0):.0%})"
                              for op, ms in profile["top_ops_ms_per_inference"].items())]
    lines += ["", "## Headline", "", "| figure | value |", "|---|---|"]
    for key in ("speedup_vs_student_ort_fp32", "speedup_vs_student_pytorch_fp32", "speedup_vs_teacher_pytorch_fp32",
                "speedup_cold_vs_student_ort_fp32", "speedup_cold_vs_student_pytorch_fp32", "speedup_cold_vs_teacher_pytorch_fp32",
                "floor_tokens", "floor_ms",
                "floor_bound", "fraction_of_floor", "fraction_of_floor_cold", "floor_note", "floor_ms_int8_stored", "floor_ms_fp32_graph", "memory_bandwidth_gbs",
                "compute_floor_ms_int8", "fraction_of_compute_floor_int8", "compute_floor_ms_fp32", "fraction_of_compute_floor_fp32",
                "service_p99_ms", "service_max_rps", "rss_mb", "cold_start_s", "joules_per_inference", "joules_method"):
        lines.append(f"| {key} | {_fmt(summary.get(key), 4)} |")
    for key in ("normal", "hot", "critical"):
        run = service.get(key)
        if not run:
            continue
        lines += ["", f"## Service, {run['label']} board (loopback, closed loop, deadline {run['levels'][0]['deadline_ms']:.0f} ms)", "",
                  "| clients | requests | req/s | model answers/s | p50 ms | p99 ms | deadline misses | degraded | 5xx |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in run["levels"]:
            lines.append(f"| {r['concurrency']} | {r['requests']} | {r['throughput_rps']:.1f} | {r['model_answers_rps']:.1f} | "
                         f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['deadline_misses']} | {r['degraded']} | {r['errors_5xx']} |")
        lines.append(f"\nServer RSS max {run['rss_mb_max']} MiB; {run['server_cpu_seconds_per_request'] * 1000:.2f} server CPU-ms per request.")
    lines += ["", "Plots: " + ", ".join(summary.get("plots", [])), ""]
    return "\n".join(lines)
