"""``edge-triage eval``: score a bundle on a labelled file through the service's own path.

Every usable case goes through :class:`edge.triage.Triager` (bundle → calibrated probabilities →
decision rule → raise-only safety rules), in batches of similar complaint length so padding stays
short. One JSON object goes to stdout; progress (only on a terminal) and errors go to stderr.
Nothing patient-level is printed: only counts and metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from edge import metrics
from edge.config import DEFAULT_MODEL_DIR
from edge.datasets import Dataset, LabelledCase
from edge.errors import EdgeError

FORMATS: dict[str, tuple[str, str]] = {
    # name -> (module, what PATH is)
    "ktas": ("edge.datasets.ktas", "a KTAS data.csv (';'-separated, Latin-1)"),
    "mimic-ed": ("edge.datasets.mimic", "a MIMIC-IV-ED folder holding ed/triage.csv.gz and ed/edstays.csv.gz"),
}
EXIT_USAGE = 2  # bad path, format or model: nothing was evaluated
EXIT_NO_CASES = 1  # the file was read but no row was usable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the labelled data: " + "; ".join(f"{k}: {v[1]}" for k, v in FORMATS.items()))
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="file format of PATH")
    parser.add_argument("--model", default=None,
                        help=f"model bundle directory (default: $EDGE_TRIAGE_MODEL, else {DEFAULT_MODEL_DIR} "
                             "in the current directory or next to the installed package)")
    parser.add_argument("--batch-size", type=int, default=32, help="cases per inference batch (default 32)")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime intra-op threads (default: all CPU cores; evaluation is throughput work)")


def default_model_candidates(env: dict[str, str] | None = None) -> list[Path]:
    env = dict(os.environ) if env is None else env
    if env.get("EDGE_TRIAGE_MODEL"):
        return [Path(env["EDGE_TRIAGE_MODEL"])]
    package_root = Path(__file__).resolve().parents[2]  # the repo (editable install) or site-packages
    candidates = [Path.cwd() / DEFAULT_MODEL_DIR, package_root / DEFAULT_MODEL_DIR]
    return list(dict.fromkeys(candidates))


def resolve_model(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    candidates = default_model_candidates()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise EdgeError("bundle_not_found", f"No model bundle found (looked in {tried}); pass --model DIR or set "
                                        "EDGE_TRIAGE_MODEL to a bundle directory.")


def load_dataset(fmt: str, path: str | Path) -> Dataset:
    import importlib

    module = importlib.import_module(FORMATS[fmt][0])
    return module.load(path)


def _progress(total: int) -> Callable[[int], None]:
    if not sys.stderr.isatty():
        return lambda done: None

    def report(done: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\reval: {done}/{total} cases", end=end, file=sys.stderr, flush=True)

    return report


def predict(triager: Any, cases: Sequence[LabelledCase], batch_size: int,
            progress: Callable[[int], None] = lambda done: None) -> tuple[list[int], list[int]]:
    """(final levels, model-only levels) in the order of ``cases``. Batches group complaints of
    similar length: results do not depend on batch company (padding is masked), speed does."""
    order = sorted(range(len(cases)), key=lambda i: len(cases[i].case.complaint))
    final, model_only = [0] * len(cases), [0] * len(cases)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        results = triager.triage_batch([cases[i].case for i in chunk])
        for i, result in zip(chunk, results):
            final[i] = result.level
            model_only[i] = result.model_level if result.model_level is not None else result.level
        progress(min(start + batch_size, len(order)))
    return final, model_only


def _metrics(truth: Sequence[int], pred: Sequence[int]) -> dict[str, Any]:
    out = metrics.compute(truth, pred)
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def report(dataset: Dataset, fmt: str, final: Sequence[int], model_only: Sequence[int],
           identity: dict[str, Any], decision: dict[str, Any], elapsed_s: float) -> dict[str, Any]:
    truth = [c.truth for c in dataset.cases]
    out: dict[str, Any] = {"format": fmt, "dataset": dataset.name, **_metrics(truth, final)}
    nursed = [i for i, c in enumerate(dataset.cases) if c.nurse is not None]
    if nursed:
        nurse = _metrics([truth[i] for i in nursed], [dataset.cases[i].nurse for i in nursed])
        if len(nursed) < len(truth):  # DESIGN: the model beside the nurse on the same rows
            nurse["model_on_same_rows"] = _metrics([truth[i] for i in nursed], [final[i] for i in nursed])
        out["nurse"] = nurse
    else:
        out["nurse"] = None
    out["model_only"] = _metrics(truth, model_only)
    out["rules_raised"] = sum(1 for f, m in zip(final, model_only) if f < m)
    out["unusable"] = dataset.unusable_summary()
    out["fields_set_missing"] = dataset.fields_missing_summary()
    out["rows"] = len(dataset.cases) + len(dataset.unusable)
    out["model"] = identity
    out["decision"] = {k: decision[k] for k in ("rule", "under_weight") if k in decision}
    out["elapsed_s"] = round(elapsed_s, 3)
    return out


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"edge-triage eval: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        return _fail("--batch-size must be 1 or more.")
    try:
        model_path = resolve_model(args.model)
        dataset = load_dataset(args.format, args.path)
    except EdgeError as error:
        return _fail(f"{error.message} [{error.code}]")
    # Imported here: loading ONNX Runtime is the slow part, and bad arguments should fail fast.
    from edge.model import RuntimeOptions, TriageModel
    from edge.triage import Triager

    threads = args.threads if args.threads and args.threads > 0 else (os.cpu_count() or 1)
    try:
        model = TriageModel.load(model_path, RuntimeOptions(intra_op_threads=threads))
    except EdgeError as error:
        return _fail(f"cannot use the model bundle at {model_path}: {error.message} [{error.code}]")
    triager = Triager(model)
    started = time.perf_counter()
    final, model_only = predict(triager, dataset.cases, args.batch_size, _progress(len(dataset.cases)))
    identity = {**model.bundle.identity(), "path": str(model.bundle.path)}
    result = report(dataset, args.format, final, model_only, identity, triager.decision,
                    time.perf_counter() - started)
    print(json.dumps(result))
    if not dataset.cases:
        return _fail(f"no usable rows in {args.path} ({result['unusable']['count']} unusable, see 'unusable'); "
                     f"is it really {FORMATS[args.format][1]}?", EXIT_NO_CASES)
    return 0
