"""Estimated floors on the boards the appliance targets, from published-class figures.

Nothing here is measured: each board's clock, per-core peak and memory bandwidth are figures of
the kind found in its product brief or the core's documentation, or plain assumptions, each
marked. The estimate is the same roofline as for this machine (max of compute time and memory
time) with the same FLOP and byte counts, so it is a floor: real latency is higher (element-wise
work, kernel overheads and cache misses are not in it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    value: float
    source: str          # where the number comes from (a spec class, not a page read here)
    assumed: bool        # True: an assumption, not a published figure


@dataclass(frozen=True)
class Board:
    key: str
    name: str
    cores: int
    ghz: Figure
    fp32_flops_per_cycle: Figure     # per core
    int8_ops_per_cycle: Figure       # per core (a multiply-accumulate is 2 ops)
    stream_gbs: Figure               # whole chip, STREAM-like (sustained, not theoretical)
    llc_mib: Figure                  # last-level cache: whether the weights could stay in cache
    # ARMv8.2 dot product (asimddp): ONNX Runtime's int8 MatMulNBits kernel needs it; without it
    # the runtime gives a MatMulNBits graph fp32 weights made at load (edge.inference.int8_fallback).
    # MatMulInteger (export.row_int8) has a widening-multiply kernel there: int8_ops_per_cycle.
    int8_dot: bool = True

    def peak_gops(self, kind: str, threads: int) -> float:
        per_cycle = self.fp32_flops_per_cycle if kind == "fp32" else self.int8_ops_per_cycle
        return per_cycle.value * self.ghz.value * min(threads, self.cores)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


BOARDS: tuple[Board, ...] = (
    Board(
        "raspberry-pi-4", "Raspberry Pi 4 Model B (BCM2711, 4x Cortex-A72)", 4,
        Figure(1.5, "Pi 4 product brief: 1.5 GHz (later board revisions run 1.8 GHz; 1.5 is the slower case)", False),
        # Cortex-A72: 128-bit NEON, one 4-lane fp32 FMA issued per cycle taken as the sustained rate.
        Figure(8, "128-bit NEON: 4 fp32 lanes x FMA (2 ops) x 1 per cycle (sustained issue rate)", True),
        # No sdot/udot on ARMv8.0-A: int8 goes through widening multiplies (8 x int16 lanes).
        Figure(16, "no int8 dot product (ARMv8.0-A): widening multiply-accumulate, 8 MACs per cycle", True),
        Figure(5.0, "LPDDR4-3200, 32-bit bus (12.8 GB/s theoretical); 4-6 GB/s STREAM in public reports (per the "
                    "issue, not re-read here), mid value", True),
        Figure(1.0, "Cortex-A72 cluster: 1 MB shared L2 (BCM2711), no L3", False), int8_dot=False),
    Board(
        "raspberry-pi-5", "Raspberry Pi 5 (BCM2712, 4x Cortex-A76)", 4,
        Figure(2.4, "Pi 5 product brief: 2.4 GHz", False),
        # Cortex-A76: two 128-bit NEON/FP pipes, both FMA-capable.
        Figure(16, "2 x 128-bit NEON pipes x 4 fp32 lanes x FMA (2 ops); core documentation class", False),
        # ARMv8.2 dot product: sdot/udot does 16 int8 MACs per 128-bit instruction, two pipes.
        Figure(64, "sdot/udot: 16 int8 MACs (32 ops) per 128-bit instruction x 2 pipes, full issue", True),
        Figure(8.0, "LPDDR4X-4267, 32-bit bus (17 GB/s theoretical); 8-10 GB/s STREAM-like (per the issue, not "
                    "re-read here), low end", True),
        Figure(2.0, "BCM2712: 2 MB shared L3 (plus 512 KB L2 per core)", False)),
    Board(
        "jetson-orin-nano-8gb", "Jetson Orin Nano 8GB (6x Cortex-A78AE)", 6,
        Figure(1.5, "Orin Nano 8GB module data sheet class: CPU up to 1.5 GHz (Orin NX: 8 cores, 2.0 GHz)", False),
        Figure(16, "Cortex-A78AE: 2 x 128-bit NEON pipes x 4 fp32 lanes x FMA (2 ops); core documentation class", False),
        Figure(64, "sdot/udot: 16 int8 MACs (32 ops) per 128-bit instruction x 2 pipes, full issue", True),
        Figure(25.0, "LPDDR5 128-bit, 68 GB/s theoretical (Orin Nano 4GB: 64-bit, 34 GB/s); the CPU cluster "
                     "sustaining ~37 % of it is an assumption (conservative, no STREAM figure read)", True),
        Figure(4.0, "Orin Nano CPU: 4 MB L3 (plus 256 KB L2 per core)", False)),
)

ESTIMATE_ASSUMPTIONS = (
    "an estimate, not a measurement: no code ran on these boards",
    "FLOPs and bytes per inference are this graph's, counted here; only the board figures change",
    "floor = max(FLOPs / (per-core peak x threads), bytes / STREAM-like bandwidth); a lower bound, real latency is higher",
    "one thread is the service's setting (RuntimeOptions.intra_op_threads = 1); a lone core is assumed to reach "
    "the whole chip's STREAM bandwidth, which makes the memory time optimistic",
    "as_loaded is the graph as the board's runtime loads it: int8 weights and int8 arithmetic (MatMulInteger: on "
    "every core, widening multiplies where there is no dot product; MatMulNBits: where the core has the dot-product "
    "instructions, else (Pi 4) fp32 weights made at load, edge.inference.int8_fallback); int8_stored assumes int8 "
    "weights in memory and int8 compute; fp32 is an fp32 graph",
    "weights do not fit in any of these boards' last-level caches, so every inference streams them from DRAM",
)


def estimate(board: Board, flops: dict[int, int], bytes_by_variant: dict[str, dict[int, int]],
             compute_kind: dict[str, str], threads: int = 1, int8_needs_dot: bool = True) -> dict[str, Any]:
    """Roofline floor per variant and length on ``board``; always labelled ``estimate: True``.
    ``int8_needs_dot``: the graph's int8 products are MatMulNBits (no kernel without asimddp)."""
    by_variant: dict[str, Any] = {}
    for variant, by_tokens in bytes_by_variant.items():
        kind = compute_kind[variant]
        if variant == "as_loaded" and kind == "int8" and int8_needs_dot and not board.int8_dot and "fp32" in bytes_by_variant:
            kind, by_tokens = "fp32", bytes_by_variant["fp32"]  # what edge.inference.int8_fallback loads there
        peak = board.peak_gops(kind, threads) * 1e9
        rows = {}
        for tokens, nbytes in sorted(by_tokens.items()):
            compute_ms = flops[tokens] / peak * 1000
            memory_ms = nbytes / (board.stream_gbs.value * 1e9) * 1000
            rows[str(tokens)] = {"floor_ms": float(f"{max(compute_ms, memory_ms):.4g}"),
                                 "compute_ms": float(f"{compute_ms:.4g}"), "memory_ms": float(f"{memory_ms:.4g}"),
                                 "bound": "memory" if memory_ms >= compute_ms else "compute"}
        by_variant[variant] = {"compute": kind, "peak_gops": round(board.peak_gops(kind, threads), 1), "by_tokens": rows}
    return {"estimate": True, "board": board.name, "threads": threads, "spec": board.as_dict(),
            "assumptions": list(ESTIMATE_ASSUMPTIONS), "by_variant": by_variant}


def estimates(flops: dict[int, int], bytes_by_variant: dict[str, dict[int, int]],
              compute_kind: dict[str, str], int8_needs_dot: bool = True) -> dict[str, Any]:
    """Every board at 1 thread (the service's setting; key ``<board>``) and on all its cores
    (key ``<board>@<n>t``: where compute, not memory, would otherwise set the floor)."""
    out = {}
    for board in BOARDS:
        out[board.key] = estimate(board, flops, bytes_by_variant, compute_kind, 1, int8_needs_dot)
        out[f"{board.key}@{board.cores}t"] = estimate(board, flops, bytes_by_variant, compute_kind, board.cores,
                                                      int8_needs_dot)
    return out
