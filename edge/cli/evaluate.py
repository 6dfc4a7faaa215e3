"""``edge-triage eval``: score a bundle on a labelled file through the service's own path.

Every usable case goes through :class:`edge.inference.triager.Triager` (bundle → calibrated probabilities →
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

from edge.clinical import evaluation_metrics as metrics
from edge.service.config import DEFAULT_MODEL_DIR
from edge.clinical.datasets import Dataset, LabelledCase
from edge.errors import EdgeError

FORMATS: dict[str, tuple[str, str]] = {
    # name -> (module, what PATH is)
    "ktas": ("edge.clinical.datasets.ktas", "a KTAS data.csv (';'-separated, Latin-1)"),
    "mimic-ed": ("edge.clinical.datasets.mimic", "a MIMIC-IV-ED folder holding ed/triage.csv.gz and ed/edstays.csv.gz"),
    "nhamcs": ("edge.clinical.datasets.nhamcs", "one or more NHAMCS ED public-use files (edYYYY_sas.zip or .sas7bdat)"),
}
# The scale each format's levels are in, unless --scale says otherwise.
DEFAULT_SCALE = {"ktas": "ktas", "mimic-ed": "esi", "nhamcs": "esi"}
EXIT_USAGE = 2  # bad path, format or model: nothing was evaluated
EXIT_NO_CASES = 1  # the file was read but no row was usable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="+", help="the labelled data: " + "; ".join(f"{k}: {v[1]}" for k, v in FORMATS.items()))
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="file format of PATH")
    parser.add_argument("--scale", choices=("ktas", "esi"), default=None,
                        help="triage scale to answer in (default: ktas for --format ktas, esi for mimic-ed and nhamcs)")
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


def load_dataset(fmt: str, paths: str | Path | Sequence[str | Path], model_path: Path | None = None) -> Dataset:
    import importlib

    module = importlib.import_module(FORMATS[fmt][0])
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if fmt == "nhamcs":
        labels = None
        if model_path is not None and (Path(model_path) / "rfv_labels.json").is_file():
            labels = {str(k): str(v) for k, v in json.loads((Path(model_path) / "rfv_labels.json").read_text(encoding="utf-8")).items()}
        return module.load(list(paths), labels)
    if len(paths) != 1:
        raise EdgeError("usage", f"--format {fmt} reads one PATH; only nhamcs takes several files.")
    return module.load(paths[0])


def critical_outcome(dataset: Dataset, final: Sequence[int]) -> dict[str, Any] | None:
    """``evaluation_metrics.critical_outcome`` for the model and for the nurse on the same visits."""
    known = [i for i, c in enumerate(dataset.cases) if c.critical_outcome is not None]
    if not known:
        return None
    outcome = [bool(dataset.cases[i].critical_outcome) for i in known]
    nurse = [dataset.cases[i].nurse if dataset.cases[i].nurse is not None else 6 for i in known]
    model = metrics.critical_outcome([final[i] for i in known], outcome)
    return {"visits": model["visits"], "critical_visits": model["critical_visits"],
            **{who: {k: m[k] for k in ("recall_level_1_2", "share_level_1_2")}
               for who, m in (("model", model), ("nurse", metrics.critical_outcome(nurse, outcome)))}}


def admitted(dataset: Dataset, final: Sequence[int]) -> dict[str, Any] | None:
    """The admitted visits as a high-acuity population (admission only selects them)."""
    rows = [i for i, c in enumerate(dataset.cases) if c.admitted]
    if not rows:
        return None
    return {"n": len(rows), **_metrics([dataset.cases[i].truth for i in rows], [final[i] for i in rows])}


def subgroups(dataset: Dataset, final: Sequence[int], min_n: int = 30) -> list[dict[str, Any]]:
    """Under-triage and level 1-2 recall per subgroup; gaps over 3 points from all rows flagged."""
    truth = [c.truth for c in dataset.cases]
    overall = metrics.compute(truth, final)
    out = []
    keys = sorted({k for c in dataset.cases for k in c.groups})
    for key in keys:
        for value in sorted({c.groups.get(key, "unknown") for c in dataset.cases}):
            rows = [i for i, c in enumerate(dataset.cases) if c.groups.get(key, "unknown") == value]
            if len(rows) < min_n:
                continue
            m = metrics.compute([truth[i] for i in rows], [final[i] for i in rows])
            flag = (m["under_triage"] - overall["under_triage"] > 0.03
                    or (m["critical_recall"] is not None and overall["critical_recall"] is not None
                        and overall["critical_recall"] - m["critical_recall"] > 0.03))
            out.append({"group": key, "value": value, "n": len(rows), "under_triage": round(m["under_triage"], 4),
                        "critical_recall": None if m["critical_recall"] is None else round(m["critical_recall"], 4),
                        "flag": "gap > 3 points" if flag else ""})
    return out


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
    out["critical_outcome"] = critical_outcome(dataset, final)
    out["admitted"] = admitted(dataset, final)
    out["subgroups"] = subgroups(dataset, final) if any(c.groups for c in dataset.cases) else []
    out["model"] = identity
    out["decision"] = {k: decision[k] for k in ("rule", "under_weight", "critical_threshold", "outcome_threshold")
                       if k in decision}
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
        dataset = load_dataset(args.format, args.path, model_path)
    except EdgeError as error:
        return _fail(f"{error.message} [{error.code}]")
    # Imported here: loading ONNX Runtime is the slow part, and bad arguments should fail fast.
    from edge.inference.session import RuntimeOptions, TriageModel
    from edge.inference.triager import Triager

    threads = args.threads if args.threads and args.threads > 0 else (os.cpu_count() or 1)
    try:
        model = TriageModel.load(model_path, RuntimeOptions(intra_op_threads=threads))
    except EdgeError as error:
        return _fail(f"cannot use the model bundle at {model_path}: {error.message} [{error.code}]")
    scale = args.scale or DEFAULT_SCALE[args.format]
    if scale not in model.scales:
        return _fail(f"the bundle at {model_path} answers in {', '.join(model.scales)}, not {scale}; "
                     f"pass --scale {next(iter(model.scales))} or use a bundle with the {scale} scale.")
    triager = Triager(model, scale)
    started = time.perf_counter()
    final, model_only = predict(triager, dataset.cases, args.batch_size, _progress(len(dataset.cases)))
    identity = {**model.bundle.identity(), "path": str(model.bundle.path)}
    result = report(dataset, args.format, final, model_only, identity, triager.decision,
                    time.perf_counter() - started)
    result["scale"] = scale
    print(json.dumps(result))
    if not dataset.cases:
        return _fail(f"no usable rows in {' '.join(args.path)} ({result['unusable']['count']} unusable, see 'unusable'); "
                     f"is it really {FORMATS[args.format][1]}?", EXIT_NO_CASES)
    return 0
