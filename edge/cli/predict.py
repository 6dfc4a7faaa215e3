"""``edge-triage predict``: JSON lines in, JSON lines out, through the same Triager the service
uses. A bad line yields a JSON error line with its code and line number; it never stops the run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from edge.clinical.case import parse_case
from edge.errors import EdgeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", dest="model_dir", help="model bundle directory (default models/triage-minilm-int8 "
                        "or $EDGE_TRIAGE_MODEL)")
    parser.add_argument("--input", help="JSON lines file (default: stdin)")
    parser.add_argument("--output", help="JSON lines file (default: stdout)")
    parser.add_argument("--explain", action="store_true", help="add the phrases and fields that drove each answer")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--scale", choices=("ktas", "esi"), default=None,
                        help="triage scale to answer in (default: the configured scale, else the bundle's default); "
                             "a line's own 'scale' field wins")


def _error_line(line_number: int, error: EdgeError) -> str:
    body = error.to_dict()
    body["line"] = line_number
    return json.dumps(body)


def predict_stream(triager, source: IO[str], sink: IO[str], *, explain: bool = False) -> tuple[int, int]:
    """Triage each line of ``source``; returns (answered, errors)."""
    answered = errors = 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            try:
                payload = json.loads(line)
            except ValueError:
                raise EdgeError("invalid_json", "The line is not valid JSON.") from None
            result = triager.triage(parse_case(payload), explain=explain)
            sink.write(json.dumps(result.to_dict()) + "\n")
            answered += 1
        except EdgeError as error:
            sink.write(_error_line(number, error) + "\n")
            errors += 1
        sink.flush()
    return answered, errors


def run(args: argparse.Namespace) -> int:
    from edge.service.config import load_config
    from dataclasses import replace

    from edge.inference.session import TriageModel
    from edge.inference.triager import Triager

    try:
        config = load_config(None, overrides={"model_dir": args.model_dir})
        model = TriageModel.load(config.model_dir, replace(config.runtime_options(), intra_op_threads=max(1, args.threads)))
        triager = Triager(model, args.scale or config.scale)
    except EdgeError as error:
        print(f"edge-triage predict: {error.code}: {error.message}", file=sys.stderr)
        return 2
    source = open(args.input, encoding="utf-8") if args.input else sys.stdin
    sink = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        answered, errors = predict_stream(triager, source, sink, explain=args.explain)
    finally:
        if args.input:
            source.close()
        if args.output:
            sink.close()
    print(f"edge-triage predict: {answered} answered, {errors} rejected", file=sys.stderr)
    return 0
