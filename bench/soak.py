"""Memory soak: the real service under mixed-length load for minutes, its RSS sampled throughout.

ONNX Runtime's CPU arena grows with every new input shape and never gives memory back; the
service runs with the arena off (``edge.inference.session``). This run shows whether that holds:
closed-loop clients send complaints of every length the kiosk sees (1-32 tokens) in turn, and
the server's RSS is sampled every second. Reported: RSS after warm-up, at the end and at most,
and the least-squares slope over the run after warm-up (MB per minute) — growth is the slope
times the run, not one noisy sample.

    python -m bench.soak --minutes 10            # writes bench/results/soak.json and soak.png
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import server
from bench.service_level import LoadConfig, RssSampler, _client

REPO = Path(__file__).resolve().parents[1]
WARMUP_S = 30.0
WORDS = ("chest pain radiating to the left arm with sweating and shortness of breath since this morning "
         "after climbing stairs nausea dizziness history of hypertension diabetes smoker on aspirin").split()


def mixed_payloads(count: int = 200, seed: int = 0) -> list[bytes]:
    """Complaints of 1..32 words in a shuffled order, with vitals present or absent."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = int(rng.integers(1, 33))
        case: dict[str, Any] = {"complaint": " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n)),
                                "age": int(rng.integers(1, 95))}
        if rng.random() < 0.7:
            case.update(hr=int(rng.integers(50, 150)), sbp=int(rng.integers(80, 190)), rr=int(rng.integers(10, 30)))
        out.append(json.dumps(case).encode())
    return out


def slope_mb_per_min(samples: list[dict[str, Any]], after_s: float) -> float | None:
    points = [(s["t_s"], s["rss_mb"]) for s in samples if s["t_s"] >= after_s]
    if len(points) < 10:
        return None
    t, rss = np.array(points).T
    return float(np.polyfit(t / 60.0, rss, 1)[0])


def run(model: Path, minutes: float, clients: int) -> dict[str, Any]:
    handle = server.start(model)
    payloads = mixed_payloads()
    records: list[tuple] = []
    lock = threading.Lock()
    budget = [10**9]
    stop_at = time.perf_counter() + minutes * 60.0
    try:
        with RssSampler(handle.pid, interval=1.0) as sampler:
            threads = [threading.Thread(target=_client, args=(handle.port, payloads, stop_at, budget, lock, records,
                                                               LoadConfig().request_timeout_s, k * 37), daemon=True)
                       for k in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=minutes * 60.0 + 30.0)
    finally:
        handle.stop()
    samples = sampler.samples
    after = [s["rss_mb"] for s in samples if s["t_s"] >= WARMUP_S]
    slope = slope_mb_per_min(samples, WARMUP_S)
    statuses: dict[str, int] = {}
    for record in records:
        statuses[str(record[2])] = statuses.get(str(record[2]), 0) + 1
    return {
        "minutes": minutes, "clients": clients, "requests": len(records), "status_counts": statuses,
        "cold_start_s": round(handle.cold_start_s, 3),
        "rss_mb_after_warmup": after[0] if after else None, "rss_mb_end": after[-1] if after else None,
        "rss_mb_max": max(after) if after else None,
        "slope_mb_per_min": round(slope, 3) if slope is not None else None,
        "growth_mb_over_run": round(slope * (minutes - WARMUP_S / 60.0), 2) if slope is not None else None,
        # Python's allocator and the bounded history buffers fill in the first minutes; what
        # matters is whether it keeps growing once they are full.
        "growth_mb_second_half": round(after[-1] - after[len(after) // 2], 2) if len(after) > 1 else None,
        "samples": samples,
        "method": "closed-loop clients, complaints of 1-32 words in turn, RSS every 1 s (psutil); slope: least "
                  f"squares after {WARMUP_S:.0f} s of warm-up",
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot([s["t_s"] / 60 for s in result["samples"]], [s["rss_mb"] for s in result["samples"]])
    ax.set_xlabel("minutes of mixed-length load")
    ax.set_ylabel("service RSS (MB)")
    ax.set_title(f"RSS under load: slope {result['slope_mb_per_min']} MB/min")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="service RSS over a long mixed-length run")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "triage-minilm-int8")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    result = run(args.model, args.minutes, args.clients)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    try:
        plot(result, args.out / "soak.png")
    except ImportError:
        pass  # matplotlib is a bench extra; the JSON has every sample
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
