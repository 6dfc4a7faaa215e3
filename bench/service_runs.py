"""The service phases in order: normal board at rising concurrency; the monitors' fake Pi 4 tree
made hot (policy 'hot': fewer threads, token cap, half admission) and then critical (policy
'critical': rules-only degraded answers, never a low acuity); then extra cold starts.
Every phase is its own real ``edge-triage serve`` process; failures are recorded, not fatal.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Callable

from bench import server, service_level
from bench.hot_board import CRITICAL_C, make_hot_root, wait_for_state


def _policy_lines(handle: server.ServerHandle) -> list[str]:
    status, body = handle.get("/metrics")
    if status != 200:
        return []
    return [line for line in body.decode(errors="replace").splitlines()
            if not line.startswith("#") and ("policy" in line or "degraded" in line or "rejections" in line)][:40]


def run(bundle_dir: Path, payloads: list[bytes], config: service_level.LoadConfig, deadline_ms: float,
        cold_starts: int, scratch: Path, log: Callable[[str], None], errors: dict[str, str]) -> tuple[dict[str, Any], list[float]]:
    service: dict[str, Any] = {}
    cold: list[float] = []

    def measure(concurrency: Any, label: str, **notes: Any) -> dict[str, Any]:
        """One load run against the server in hand, with the policy's own view of it."""
        run = service_level.run(handle, payloads, concurrency, config, deadline_ms, label, log)
        return {**run, **notes, "policy_metrics": _policy_lines(handle)}

    try:
        handle = server.start(bundle_dir)
        cold.append(handle.cold_start_s)
        try:
            service["normal"] = measure(config.concurrency, "normal")
        finally:
            handle.stop()
    except Exception as error:
        errors["service_normal"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()

    try:
        board, how = make_hot_root(scratch / "hot-board")
        # Sensors sampled often and a 1 s entry delay (default 5 s) so the load starts in the
        # state under test; the policy table itself is the service's own.
        handle = server.start(bundle_dir, monitor_root=str(board.root), extra={"monitor_interval_s": 0.25},
                              tables={"policy": {"thermal_enter_after_s": 1.0}})
        cold.append(handle.cold_start_s)
        try:
            if not wait_for_state(handle.get, "hot"):
                raise RuntimeError("the service never reported the 'hot' thermal state from the fake board")
            service["hot"] = measure(config.hot_concurrency, "hot", fake_board=how)
            board.set_all_temps(CRITICAL_C)
            if not wait_for_state(handle.get, "critical"):
                raise RuntimeError("the service never reported the 'critical' thermal state from the fake board")
            service["critical"] = measure(config.critical_concurrency, "critical",
                                          fake_board=f"same board heated to {CRITICAL_C:.0f} °C (policy state 'critical')")
        finally:
            handle.stop()
    except Exception as error:
        errors["service_hot"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()

    for _ in range(cold_starts):
        try:
            handle = server.start(bundle_dir)
            cold.append(handle.cold_start_s)
            handle.stop()
        except Exception as error:
            errors["cold_start"] = f"{type(error).__name__}: {error}"
            break
    if cold:
        log(f"cold start to /readyz 200: {', '.join(f'{c:.2f}' for c in cold)} s")
    return service, cold
