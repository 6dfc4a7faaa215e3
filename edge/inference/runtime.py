"""The serving model and its atomic replacement.

A new bundle is loaded, sha256-verified and warmed *completely* before one reference assignment
makes it current, so a request sees either the old triager or the new one, never a half-loaded
model; a bundle that fails at any step raises and leaves the old one serving. Changing the ONNX
Runtime thread count (the thermal policy does) is the same swap: sessions cannot change threads
after creation.
"""

from __future__ import annotations

from dataclasses import replace

import logging
import threading
from pathlib import Path

from edge.errors import BundleError
from edge.inference.session import RuntimeOptions, TriageModel
from edge.inference.triager import Triager

log = logging.getLogger(__name__)


class ModelRuntime:
    """Holds the current :class:`Triager`; ``None`` model means rules-only (no bundle)."""

    def __init__(self, triager: Triager, *, options: RuntimeOptions | None = None, warmed: bool = True) -> None:
        self._triager = triager
        self.scale = triager.scale  # the device's configured scale survives bundle swaps
        self.options = options or RuntimeOptions()
        self.warmed = warmed and triager.model is not None
        self._swap_lock = threading.Lock()  # one load at a time; serving never takes it
        self.swaps = 0

    @classmethod
    def load(cls, path: str | Path, options: RuntimeOptions | None = None, scale: str | None = None) -> "ModelRuntime":
        options = options or RuntimeOptions()
        model = TriageModel.load(path, options, warm=True)
        return cls(Triager(model, scale), options=options, warmed=True)

    @property
    def triager(self) -> Triager:
        return self._triager

    @property
    def bundle_path(self) -> Path | None:
        model = self._triager.model
        return model.bundle.path if model is not None else None

    def identity(self) -> dict[str, str] | None:
        model = self._triager.model
        return model.bundle.identity() if model is not None else None

    def reload(self, path: str | Path | None = None, options: RuntimeOptions | None = None) -> dict[str, str]:
        """Load, verify and warm ``path`` (default: the current bundle), then swap it in.

        Raises :class:`BundleError` (the old bundle keeps serving) when the new one is bad.
        """
        with self._swap_lock:
            target = Path(path) if path is not None else self.bundle_path
            if target is None:
                raise BundleError("bundle_not_found", "No bundle path given and none is loaded; pass a bundle directory.",
                                  http_status=400)
            options = options or self.options
            try:
                model = TriageModel.load(target, options, warm=True)
            except BundleError:
                raise
            except Exception as error:  # anything else from a bad bundle must not take serving down
                raise BundleError("bundle_unloadable", f"The new bundle failed to load or warm up: {type(error).__name__}.") from error
            new = Triager(model, self.scale if self.scale in model.scales else None)
            self._triager = new  # the swap: one reference assignment, atomic under the GIL
            self.options = options
            self.warmed = True
            self.swaps += 1
            log.info("bundle swapped in: %s %s", model.bundle.name, model.bundle.version)
            return model.bundle.identity()

    def set_threads(self, threads: int) -> None:
        """Rebuild the session with a new intra-op thread count (policy change); keep the old on failure."""
        if threads == self.options.intra_op_threads or self._triager.model is None:
            return
        options = replace(self.options, intra_op_threads=threads)
        try:
            self.reload(None, options)
        except BundleError as error:
            log.warning("could not apply %d inference threads: %s", threads, error.code)
