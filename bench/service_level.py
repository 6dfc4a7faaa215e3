"""Service-level load: a closed-loop generator (each client sends its next request when the
previous answer arrives) at rising concurrency, against a real server on 127.0.0.1 only.
Every level is bounded in both request count and seconds, so the run always stops by itself.
The server's RSS and CPU time are sampled with psutil on its pid throughout.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import psutil

from bench.server import HOST, ServerHandle
from bench.stats import summarize_ms


@dataclass(frozen=True)
class LoadConfig:
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16)
    seconds_per_level: float = 8.0
    max_requests_per_level: int = 6000
    hot_concurrency: tuple[int, ...] = (1, 4)
    critical_concurrency: tuple[int, ...] = (4,)
    request_timeout_s: float = 10.0


class RssSampler:
    """Samples the server's RSS and CPU seconds every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.phase = "idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._t0 = time.perf_counter()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.process.memory_info().rss
            except psutil.Error:
                return
            self.samples.append({"t_s": round(time.perf_counter() - self._t0, 3), "rss_mb": round(rss / 2**20, 2),
                                 "phase": self.phase})
            self._stop.wait(self.interval)

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _client(port: int, payloads: list[bytes], stop_at: float, budget: list[int], lock: threading.Lock,
            records: list[tuple], timeout: float, offset: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    i = offset
    try:
        while time.perf_counter() < stop_at:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            body = payloads[i % len(payloads)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/triage", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
                records.append((started, time.perf_counter(), 0, None, None))
                continue
            degraded = level = None
            if status == 200:
                try:
                    answer = json.loads(data)
                    degraded, level = answer.get("degraded"), answer.get("level")
                except ValueError:
                    status = -1  # a 200 that is not JSON is a failure, counted as such
            records.append((started, time.perf_counter(), status, degraded, level))
    finally:
        conn.close()


def run_level(server: ServerHandle, payloads: list[bytes], concurrency: int, config: LoadConfig,
              deadline_ms: float) -> dict[str, Any]:
    records: list[tuple] = []
    lock = threading.Lock()
    budget = [config.max_requests_per_level]
    started = time.perf_counter()
    stop_at = started + config.seconds_per_level
    threads = [threading.Thread(target=_client, args=(server.port, payloads, stop_at, budget, lock, records,
                                                       config.request_timeout_s, k * 97), daemon=True)
               for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=config.seconds_per_level + config.request_timeout_s + 5)
    elapsed = max(1e-9, max((r[1] for r in records), default=time.perf_counter()) - started)
    latencies = [(end - start) * 1000.0 for start, end, *_ in records]
    statuses: dict[str, int] = {}
    for _, _, status, _, _ in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    degraded: dict[str, int] = {}
    degraded_low_acuity = 0  # a degraded answer must say "clinician review now" (level 1-2), never lower
    for _, _, status, reason, level in records:
        if status == 200 and reason:
            degraded[str(reason)] = degraded.get(str(reason), 0) + 1
            degraded_low_acuity += int(not isinstance(level, int) or level > 2)
    ok = statuses.get("200", 0)
    n_degraded = sum(degraded.values())
    stats = summarize_ms(latencies)
    return {
        "concurrency": concurrency, "requests": len(records), "seconds": round(elapsed, 3),
        "throughput_rps": round(len(records) / elapsed, 2), "model_answers_rps": round((ok - n_degraded) / elapsed, 2),
        **stats, "deadline_ms": deadline_ms,
        "deadline_misses": int(sum(1 for v in latencies if v > deadline_ms)),
        "degraded": n_degraded, "degraded_by_reason": degraded, "degraded_low_acuity": degraded_low_acuity,
        "status_counts": statuses,
        "errors_5xx": int(sum(c for s, c in statuses.items() if s.startswith("5"))),
    }


def run(server: ServerHandle, payloads: list[bytes], levels: tuple[int, ...], config: LoadConfig,
        deadline_ms: float, label: str, log: Callable[[str], None]) -> dict[str, Any]:
    results = []
    with RssSampler(server.pid) as sampler:
        cpu_before = sampler.cpu_seconds()
        time.sleep(0.3)  # an idle sample before load
        for concurrency in levels:
            sampler.phase = f"c{concurrency}"
            row = run_level(server, payloads, concurrency, config, deadline_ms)
            results.append(row)
            log(f"  {label:<6} c={concurrency:<3} {row['throughput_rps']:8.1f} req/s  p50 {row['p50_ms']:7.2f} ms  "
                f"p99 {row['p99_ms']:7.2f} ms  misses {row['deadline_misses']}  degraded {row['degraded']}  5xx {row['errors_5xx']}")
        sampler.phase = "after"
        time.sleep(0.3)
        cpu_used = sampler.cpu_seconds() - cpu_before
    total = sum(r["requests"] for r in results)
    rss = [s["rss_mb"] for s in sampler.samples]
    return {"label": label, "levels": results, "rss_samples": sampler.samples,
            "rss_mb_max": max(rss) if rss else None, "rss_mb_first": rss[0] if rss else None,
            "server_cpu_seconds_per_request": round(cpu_used / max(1, total), 6)}


def max_sustained_rps(levels: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Highest model-answer rate at a level whose p99 stays under the deadline with no 5xx."""
    ok = [r for r in levels if r["p99_ms"] <= r["deadline_ms"] and r["errors_5xx"] == 0 and r["requests"]]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["model_answers_rps"])
    return {"rps": best["model_answers_rps"], "concurrency": best["concurrency"], "p99_ms": best["p99_ms"]}


def payloads_from(cases: list[Any], limit: int = 500) -> list[bytes]:
    rng = np.random.default_rng(0)
    chosen = [cases[i] for i in rng.permutation(len(cases))[:limit]]
    return [json.dumps(c.to_dict()).encode() for c in chosen]
