"""Per-stage wall-clock timing for the build report, with progress on stderr."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


class Stages:
    def __init__(self, quiet: bool = False) -> None:
        self.seconds: dict[str, float] = {}
        self.quiet = quiet
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if not self.quiet:
            print(f"[edge-export] {name} …", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 2)
            if not self.quiet:
                print(f"[edge-export] {name}: {self.seconds[name]:.1f} s", file=sys.stderr, flush=True)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._started, 1)
