"""``edge-triage``: serve, check, predict and eval. Each subcommand lives in its own module and
is imported only when used, so ``edge-triage eval`` never starts a web server and vice versa."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

DEFAULT_MODEL_HINT = "models/triage-minilm-int8 (or EDGE_TRIAGE_MODEL)"

# subcommand -> (module, help); each module exposes add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("edge.cli.serve", "run the triage service (HTTP API, kiosk, staff board, status)"),
    "check": ("edge.cli.check", "check configuration, bundle, sensors, cgroup and PSI; non-zero on problems"),
    "predict": ("edge.cli.predict", "triage JSON lines from stdin (or --input) to JSON lines on stdout"),
    "eval": ("edge.cli.evaluate", "evaluate a bundle on a labelled file (KTAS or MIMIC-IV-ED format)"),
    "audit-export": ("edge.cli.audit_export", "write the audit log as CSV (read-only; the service may keep running)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``command``'s module is imported (all of them when it is None,
    e.g. for ``--help``), so a broken ``serve`` can never take ``eval`` down with it."""
    parser = argparse.ArgumentParser(prog="edge-triage", description="Offline ED triage appliance.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command is not None and name != command:
            continue
        module = importlib.import_module(module_name)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(command).parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args._run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
