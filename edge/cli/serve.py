"""``edge-triage serve``: load and warm the bundle, then serve the API on waitress."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading
from typing import TYPE_CHECKING

from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.inference.runtime import ModelRuntime
    from edge.service.config import ServiceConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (keys: see edge/service/config.py)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; others need token_file)")
    parser.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument("--model", dest="model_dir", help="model bundle directory (default models/triage-minilm-int8 "
                        "or $EDGE_TRIAGE_MODEL)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--token-file", help="0600 file holding the bearer token")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def overrides_from(args: argparse.Namespace) -> dict:
    keys = ("host", "port", "model_dir", "threads", "token_file")
    return {key: getattr(args, key, None) for key in keys}


class BackgroundLoad:
    """Load, verify and warm the bundle on its own thread while the main thread imports the web
    stack (Flask, Werkzeug, Jinja2, the metrics client: ~0.1-0.15 s of imports on the build VM).
    ONNX Runtime builds its session and runs the warm-up without the GIL, so the two overlap and
    the service is ready sooner; ``result()`` hands back the runtime or re-raises the load's error
    on the caller's thread."""

    def __init__(self, config: ServiceConfig) -> None:
        self._config = config
        self._runtime: ModelRuntime | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, name="bundle-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        from edge.inference.runtime import ModelRuntime  # imported by the caller already: see run()

        try:
            self._runtime = ModelRuntime.load(self._config.model_dir, self._config.runtime_options(), self._config.scale)
        except BaseException as error:  # handed to the main thread, which decides what it means
            self._error = error

    def result(self) -> ModelRuntime:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._runtime is not None
        return self._runtime


def _refused(error: EdgeError) -> int:
    print(f"edge-triage serve: {error.code}: {error.message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    # Start-up makes ~50,000 long-lived objects (modules, the app, tables) and no garbage worth a
    # collection: the cyclic collector stays off until serving begins (serve() freezes what start-up
    # made, then collects only what requests make).
    gc.disable()
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    from edge.service.config import load_config

    try:
        config = load_config(args.config, overrides=overrides_from(args))
    except EdgeError as error:
        return _refused(error)
    logging.getLogger("edge.serve").info("loading and warming model bundle %s", config.model_dir)
    # The model's own modules (numpy, onnxruntime, tokenizers) first, on this thread: imported from
    # both threads at once they wait on each other's import locks and the GIL, and nothing overlaps.
    import edge.inference.runtime  # noqa: F401

    loading = BackgroundLoad(config)
    from edge.service.app import create_app  # imported while the bundle loads
    from edge.service.server import serve

    try:
        app = create_app(config, runtime=loading.result())
    except EdgeError as error:
        return _refused(error)
    gc.enable()
    return serve(app, config)
