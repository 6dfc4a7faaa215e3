"""TEST HOOK for the systemd boot test (deploy/boot_test.sh) — off unless
``EDGE_TRIAGE_TEST_HOOKS=1`` is in the service's environment, which no shipped file sets.

With it on, SIGUSR2 makes the inference worker hang on its next job, as a hung native call in
onnxruntime would. The service's own health check then sees a worker busy far past its deadline,
withholds the watchdog pings, and systemd kills and restarts the service: the boot test shows
that chain end to end on a real systemd. Requests meanwhile still get degraded answers at their
deadline (the scheduler never waits on a stuck worker).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

ENV = "EDGE_TRIAGE_TEST_HOOKS"
log = logging.getLogger(__name__)


class _StallingTriager:
    """Delegates everything to the real triager, except that an inference worker calling
    ``triage_batch`` blocks forever."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def triage_batch(self, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("inference-"):
            log.warning("test hook: inference worker stalled on purpose")
            threading.Event().wait()
        return self._real.triage_batch(*args, **kwargs)


def install(state: Any) -> bool:
    """Install the SIGUSR2 stall hook on a ServiceState's scheduler if the env var asks for it."""
    if os.environ.get(ENV) != "1":
        return False
    scheduler = state.scheduler
    log.warning("%s=1: test hooks on (SIGUSR2 stalls the inference worker); never set this on a board", ENV)

    def _stall(_signum: int, _frame: Any) -> None:
        source = scheduler._triager_source
        scheduler._triager_source = lambda: _StallingTriager(source())

    signal.signal(signal.SIGUSR2, _stall)
    return True
