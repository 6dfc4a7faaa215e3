"""The floor that tells the truth: max(compute time, memory time) per token length.

Compute time = matrix-multiply FLOPs (bench.floor.count_flops) / this CPU's measured peak for the
arithmetic the graph really does (int8 MatMulInteger or fp32 MatMul, bench.floor); memory time =
bytes read per inference (bench.traffic) / this machine's measured bandwidth (bench.bandwidth).
At complaint lengths (3-11 tokens) each weight is used a few times, so memory usually wins.

Three graphs per length: the shipped graph as ONNX Runtime loads it (``as_loaded``), the same
weights kept int8 in memory with int8 compute (``int8_stored``: what the file could cost), and an
fp32 graph (``fp32``). The shipped graph is also timed at each length (same session settings as
the service) so the plot and table put measured latency beside its floor.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import bandwidth, boards, floor, traffic
from bench.inputs import BenchInputs, median_length_ids
from bench.stats import sig

LENGTHS = (3, 5, 8, 11, 16, 32)
METHOD = ("floor_ms = max(compute, memory) for the graph as ONNX Runtime loads it, at the median complaint length, "
          "1 thread: compute = matrix-multiply FLOPs counted from the graph (shapes observed at that length) / this "
          "CPU's measured peak for the arithmetic the loaded graph does (fp32 MatMul for weight-only int8, which ONNX "
          "Runtime folds to fp32 at load; int8 MatMulInteger otherwise); memory = bytes read per inference (the "
          "optimized graph's initializers, embedding tables by rows gathered) / measured STREAM-style bandwidth "
          "(best of copy and triad). fraction_of_floor = floor_ms / the same graph's p50 at that length (1.0 = at "
          "the floor). Element-wise work and activations (cache-resident at these lengths) are left out, so it is "
          "optimistic; where the weights fit in this machine's last-level cache a hot loop can beat the memory term. "
          "compute_floor_ms_int8 / _fp32 are the old compute-only floors; floor_ms_int8_stored and floor_ms_fp32_graph "
          "are the same roofline for int8 weights kept in memory (int8 compute) and for an fp32 graph.")
INT8_COMPUTE_OPS = {"MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm"}


@dataclass(frozen=True)
class Floor:
    variant: str
    tokens: int
    compute: str          # int8 | fp32: whose peak the FLOPs are divided by
    flops: int
    bytes: int            # DRAM bytes per inference (weights + gathered rows; activations apart)
    compute_ms: float
    memory_ms: float
    floor_ms: float       # max(compute_ms, memory_ms)
    bound: str            # memory | compute


def roofline(variant: str, tokens: int, compute: str, flops: int, nbytes: int, gops: float, gbs: float) -> Floor:
    compute_ms, memory_ms = flops / (gops * 1e9) * 1000, nbytes / (gbs * 1e9) * 1000
    return Floor(variant, tokens, compute, flops, nbytes, sig(compute_ms), sig(memory_ms), sig(max(compute_ms, memory_ms)),
                 "memory" if memory_ms >= compute_ms else "compute")


def compute_kind(loaded: Any) -> str:
    """int8 when the graph ONNX Runtime runs multiplies in int8 (MatMulNBits at accuracy_level 4
    included), else fp32 (weight-only int8 included)."""
    def int8_nbits(node: Any) -> bool:
        return node.op_type == "MatMulNBits" and any(a.name == "accuracy_level" and a.i == 4 for a in node.attribute)

    return "int8" if any(n.op_type in INT8_COMPUTE_OPS or int8_nbits(n) for n in loaded.graph.node) else "fp32"


def ids_at(inputs: BenchInputs, tokens: int) -> np.ndarray:
    """[1, tokens] ids of real complaint text, both specials kept (cut from the longest fixed input)."""
    if tokens == inputs.median_length:
        return median_length_ids(inputs)
    longest = inputs.fixed_ids[max(inputs.fixed_ids)][0]
    return np.asarray([[longest[0], *longest[1:tokens - 1], longest[-1]]], dtype=np.int64)


def fit_features(model: Any, features: np.ndarray) -> np.ndarray:
    """The feature row cut or zero-padded to the width the graph declares (an older graph takes an
    older, shorter feature vector; the cost of the features path does not depend on the values)."""
    declared = next((i for i in model.graph.input if i.name == "features"), None)
    if declared is None:
        return features
    width = declared.type.tensor_type.shape.dim[-1].dim_value
    if not width or width == features.shape[1]:
        return features
    fitted = np.zeros((features.shape[0], width), dtype=np.float32)
    fitted[:, :min(width, features.shape[1])] = features[:, :width]
    return fitted


def inputs_for(graph: Path, default: BenchInputs) -> BenchInputs:
    """Inputs tokenized with the tokenizer beside ``graph`` (a bundle directory's, read without
    verifying the bundle: the floor needs only the graph), else ``default``."""
    import json

    from bench.inputs import build_inputs

    tokenizer, manifest = graph.parent / "tokenizer.json", graph.parent / "manifest.json"
    if not tokenizer.is_file():
        return default
    max_len = json.loads(manifest.read_text()).get("max_seq_len", 32) if manifest.is_file() else 32
    return build_inputs(tokenizer, int(max_len))


def time_lengths(model_path: Path, ids_by_tokens: dict[int, np.ndarray], features: np.ndarray, threads: int,
                 seconds: float) -> dict[int, float]:
    """Median latency of the shipped graph at each length, ONNX Runtime alone, with the service's
    session settings (edge.model: ORT_ENABLE_ALL, sequential, no idle spinning, no arena), set
    here directly so bench does not reach into edge's internals."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    out = {}
    for tokens, ids in sorted(ids_by_tokens.items()):
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "features" in names:
            feeds["features"] = features
        for _ in range(3):
            session.run(None, feeds)
        samples = []
        deadline = time.perf_counter() + seconds
        while len(samples) < 10 or time.perf_counter() < deadline:
            started = time.perf_counter()
            session.run(None, feeds)
            samples.append((time.perf_counter() - started) * 1000)
        out[tokens] = sig(float(np.median(samples)))
    return out


def run(model_path: Path, inputs: BenchInputs, threads: tuple[int, ...], quick: bool,
        log: Callable[[str], None]) -> dict[str, Any]:
    """FLOPs, bytes, peaks, bandwidth, roofline floors and measured latency per length and thread
    count, plus the board estimates. The compute-only floors keep their old keys (by_tokens,
    by_tokens_fp32) so older readers of results.json still work."""
    stored, loaded = traffic.load_graphs(model_path)
    features = fit_features(stored, inputs.features)
    wanted = sorted({*LENGTHS, inputs.median_length, *inputs.fixed_ids})
    flops: dict[str, Any] = {}
    for n in wanted:
        try:
            flops[str(n)] = floor.count_flops(model_path, ids_at(inputs, n), features)
        except Exception as error:  # a length beyond the graph's position table
            log(f"floor: the graph cannot run {n} tokens ({type(error).__name__}: {str(error)[:120]})")
    lengths = [int(n) for n in flops]
    views = traffic.graph_bytes(stored, loaded, model_path.name)
    kinds = {"as_loaded": compute_kind(loaded), "int8_stored": "int8", "fp32": "fp32"}
    activations = traffic.activation_bytes(loaded, {n: ids_at(inputs, n) for n in lengths}, features)
    streams = {b.threads: b for b in bandwidth.measure(threads, runs=2 if quick else 3)}
    result: dict[str, Any] = {
        "graph": str(model_path), "median_tokens": inputs.median_length, "flops": flops, "lengths": lengths, "bytes": {k: v.as_dict() for k, v in views.items()},
        "bytes_by_tokens": {k: {str(n): v.bytes_at(n) for n in lengths} for k, v in views.items()},
        "compute_kind": kinds,
        "activations": {str(n): asdict(a) for n, a in activations.items()},
        "by_threads": {},
    }
    for t in threads:
        seconds = 0.15 if quick else 0.8
        int8 = floor.matmul_throughput(t, True, seconds_per_shape=seconds)
        fp32 = floor.matmul_throughput(t, False, seconds_per_shape=seconds)
        peak = {"int8": int8["peak_gops"], "fp32": fp32["peak_gops"]}
        stream = streams[t]
        measured = time_lengths(model_path, {n: ids_at(inputs, n) for n in lengths if n <= max(LENGTHS)},
                                features, t, 0.1 if quick else 0.5)
        result["by_threads"][str(t)] = {
            "throughput": int8, "throughput_fp32": fp32, "bandwidth": stream.as_dict(),
            "by_tokens": {n: sig(f["flops"] / (peak["int8"] * 1e9) * 1000) for n, f in flops.items()},
            "by_tokens_fp32": {n: sig(f["flops"] / (peak["fp32"] * 1e9) * 1000) for n, f in flops.items()},
            "roofline": {variant: {str(n): asdict(roofline(variant, n, kinds[variant], flops[str(n)]["flops"],
                                                           view.bytes_at(n), peak[kinds[variant]], stream.best_gbs))
                                   for n in lengths} for variant, view in views.items()},
            "shipped_p50_ms": {str(n): ms for n, ms in measured.items()},
        }
        log(f"roofline, {t} thread(s): bandwidth {stream.best_gbs} GB/s (copy {stream.copy_gbs}, triad {stream.triad_gbs_actual} "
            f"actual), int8 {peak['int8']} GOPS, fp32 {peak['fp32']} GFLOPS; as loaded "
            + ", ".join(f"{n} tok {result['by_threads'][str(t)]['roofline']['as_loaded'][str(n)]['floor_ms']} ms"
                        for n in lengths if n in measured))
    board_lengths = [n for n in lengths if n <= max(LENGTHS)]
    needs_dot = any(n.op_type == "MatMulNBits" for n in loaded.graph.node)  # MatMulInteger runs int8 everywhere
    result["boards"] = boards.estimates({n: flops[str(n)]["flops"] for n in board_lengths},
                                        {k: {n: v.bytes_at(n) for n in board_lengths} for k, v in views.items()}, kinds,
                                        needs_dot)
    return result


def headline(result: dict[str, Any], threads: int, tokens: int, shipped_p50_ms: float | None) -> dict[str, Any]:
    """summary.json's floor keys at ``tokens``: the roofline floor of the graph as loaded is the
    floor; the old compute-only figures are kept under compute_floor_*."""
    entry = result.get("by_threads", {}).get(str(threads), {})
    key = str(tokens)
    roof = entry.get("roofline", {})
    floor_ms = roof.get("as_loaded", {}).get(key, {}).get("floor_ms")
    int8_ms = entry.get("by_tokens", {}).get(key)
    fp32_ms = entry.get("by_tokens_fp32", {}).get(key)

    def fraction(ms: float | None) -> float | None:
        return sig(ms / shipped_p50_ms) if ms is not None and shipped_p50_ms else None

    stream = entry.get("bandwidth", {})
    loaded_bytes = result.get("bytes_by_tokens", {}).get("as_loaded", {}).get(key, 0)
    in_llc = bool(stream.get("llc_mib")) and stream["llc_mib"] * (1 << 20) >= loaded_bytes
    note = None
    if floor_ms and shipped_p50_ms and shipped_p50_ms < floor_ms:
        # Not a broken floor: the memory term assumes DRAM, and a hot loop here is served from cache.
        note = (f"measured p50 {shipped_p50_ms} ms is below the {floor_ms} ms floor: the graph's {loaded_bytes / 2**20:.1f} MiB "
                + (f"fit in this machine's {stream['llc_mib']} MiB last-level cache, so a hot loop reads them from cache, "
                   "not DRAM" if in_llc else "do not fit in the last-level cache; the bandwidth figure is likely low (load?)"))
    return {
        "floor_ms": floor_ms, "fraction_of_floor": fraction(floor_ms),
        "floor_bound": roof.get("as_loaded", {}).get(key, {}).get("bound"), "floor_note": note,
        "floor_ms_int8_stored": roof.get("int8_stored", {}).get(key, {}).get("floor_ms"),
        "floor_ms_fp32_graph": roof.get("fp32", {}).get(key, {}).get("floor_ms"),
        "compute_floor_ms_int8": int8_ms, "fraction_of_compute_floor_int8": fraction(int8_ms),
        "compute_floor_ms_fp32": fp32_ms, "fraction_of_compute_floor_fp32": fraction(fp32_ms),
        "memory_bandwidth_gbs": stream.get("best_gbs"), "memory_bandwidth": stream,
        "int8_peak_gops": entry.get("throughput", {}).get("peak_gops"),
        "fp32_peak_gflops": entry.get("throughput_fp32", {}).get("peak_gops"),
        "floor_bytes_per_inference": {k: v.get(key) for k, v in result.get("bytes_by_tokens", {}).items()},
        "weights_fit_in_llc": {k: (stream.get("llc_mib") or 0) * (1 << 20) >= v.get(key, 0)
                               for k, v in result.get("bytes_by_tokens", {}).items()} if stream.get("llc_mib") else None,
        "board_estimates": result.get("boards", {}),
    }
