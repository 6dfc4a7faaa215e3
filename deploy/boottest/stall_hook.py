"""TEST HOOK for the systemd boot test (deploy/boot_test.sh) only; never part of the wheel.

boot_test.sh copies this file into the container's service venv (site-packages) together with a
``edge_boottest_stall.pth`` line that imports it, so it loads at interpreter start; the service
itself never imports it. It acts only when ``EDGE_TRIAGE_TEST_HOOKS=1`` is in the environment,
which only the boot test's drop-in (test-hooks.conf) sets.

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
log = logging.getLogger("edge_boottest_stall")


def _stall(_signum: int, _frame: Any) -> None:
    # Patched on the class at signal time, so nothing needs a handle on the running service.
    from edge.inference.triager import Triager

    real = Triager.triage_batch

    def stalling(self: Triager, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("inference-"):
            log.warning("test hook: inference worker stalled on purpose")
            threading.Event().wait()
        return real(self, *args, **kwargs)

    Triager.triage_batch = stalling  # type: ignore[method-assign]


def install() -> bool:
    if os.environ.get(ENV) != "1":
        return False
    log.warning("%s=1: test hooks on (SIGUSR2 stalls the inference worker); never set this on a board", ENV)
    signal.signal(signal.SIGUSR2, _stall)
    return True


install()
