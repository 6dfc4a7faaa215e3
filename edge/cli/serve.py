"""``edge-triage serve``: load and warm the bundle, then serve the API on waitress."""

from __future__ import annotations

import argparse
import logging
import sys

from edge.errors import EdgeError

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


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    from edge.service.app import create_app
    from edge.service.config import load_config
    from edge.service.server import serve

    try:
        config = load_config(args.config, overrides=overrides_from(args))
        logging.getLogger("edge.serve").info("loading and warming model bundle %s", config.model_dir)
        app = create_app(config)
    except EdgeError as error:
        print(f"edge-triage serve: {error.code}: {error.message}", file=sys.stderr)
        return 2
    return serve(app, config)
