"""ARM verification under user-mode emulation: the aarch64 bundle's wheels on a Debian arm64
Python sysroot, run by ``qemu-aarch64-static`` as a Raspberry Pi 4 (``-cpu cortex-a72``) and a
Pi 5 (``-cpu cortex-a76``), must give the same answers as x86 on every evaluation case.

    python deploy/verify_arm.py --bundle dist/edge-triage-0.1.0-aarch64-py3.11.tar.gz \
        --data ../shared/data/ktas-moon2019/data.csv

Per CPU model it runs ``edge-triage check``, ``edge-triage predict`` in each scale (KTAS and ESI; one JSON line per case,
compared case by case to the x86 run: same level and model level, probabilities within 0.02 —
int8 kernels differ by ISA, see PROB_TOLERANCE) and
``edge-triage eval --format ktas`` (metrics compared to x86). Never ``-cpu max``: it enables
SVE/SME kernels that gave wrong int8 results under Debian 12's QEMU. onnxruntime crashes on
import when QEMU passes the host's x86 /proc/cpuinfo through, so each run gets the target's
cpuinfo: QEMU's ``-L`` prefix maps a guest open of /proc/cpuinfo to <sysroot>/proc/cpuinfo when
that file exists (other /proc paths, absent from the sysroot, stay the real ones).

Emulated wall times are printed only to show progress: they say nothing about board speed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "deploy"))
from arm_sysroot import build_sysroot  # noqa: E402
from build_bundle import isolated_pip_env  # noqa: E402
from arm_cpuinfo import CPU_MODELS, cpuinfo_text  # noqa: E402

# Same level and model level on every case is the gate. Probabilities may differ a little: the
# int8 products are exact integers on every ISA (MatMulInteger, export.row_int8), but the fp32 parts
# (layer norm, attention, GELU) use each ISA's own vector code, and a last-bit difference there can
# move an activation across a rounding step of the next per-row quantization. The MatMulNBits bundle
# before this one differed by up to 0.011 (A72) and 0.007 (A76); past 0.02 means something other
# than rounding.
PROB_TOLERANCE = 0.02


@dataclass
class Runner:
    """Runs ``python -m edge.cli`` natively (x86 reference) or under QEMU as one CPU model."""

    python: list[str]
    env: dict[str, str]
    label: str

    def edge(self, *args: str, stdout=None, timeout: float = 7200) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.python, "-m", "edge.cli", *args], env=self.env, text=True,
                              stdout=stdout if stdout is not None else subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)


def unpack_bundle(bundle: Path, work: Path) -> Path:
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()[:12]
    root = work / f"bundle-{digest}"
    if not (root / "BUNDLE.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        with tarfile.open(bundle) as tar:
            tar.extractall(root, filter="data")
    (inner,) = [p for p in root.iterdir() if p.is_dir()]
    return inner


def install_site(bundle_root: Path, work: Path) -> Path:
    """The bundle's aarch64 wheels, installed with the host's pip for the target platform."""
    meta = json.loads((bundle_root / "BUNDLE.json").read_text())
    if meta["target"] != "aarch64":
        raise SystemExit(f"verify-arm needs an aarch64 bundle, got {meta['target']}")
    site = work / f"site-{bundle_root.parent.name}"
    if not (site / "edge").is_dir():
        shutil.rmtree(site, ignore_errors=True)
        platforms = [arg for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014")
                     for arg in ("--platform", f"{tag}_aarch64")]
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links",
                        str(bundle_root / "wheels"), "-c", str(bundle_root / "constraints.txt"),
                        "--target", str(site), "--only-binary=:all:", "--implementation", "cp",
                        "--python-version", meta["python"], *platforms,
                        str(bundle_root / "wheels" / meta["project_wheel"]),
                        # pip evaluates `platform_machine == 'aarch64'` markers against this x86 host
                        # even with --platform: name the aarch64-only runtime dependency outright.
                        "onnx"], check=True,
                       env=isolated_pip_env())
    return site


def write_cases(data: Path, out: Path) -> int:
    from edge.clinical.datasets import ktas

    dataset = ktas.load(data)
    with out.open("w") as handle:
        for labelled in dataset.cases:
            handle.write(json.dumps(labelled.case.to_dict()) + "\n")
    return len(dataset.cases)


def read_results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare(reference: list[dict], candidate: list[dict]) -> dict:
    """Per-case parity. Case indexes, levels and probabilities only: never the case's text."""
    if len(reference) != len(candidate):
        return {"ok": False, "why": f"{len(candidate)} answers vs {len(reference)} on x86"}
    pairs = list(zip(reference, candidate))
    errors = [i for i, (_, b) in enumerate(pairs) if "level" not in b]
    level_diff = [i for i, (a, b) in enumerate(pairs) if a.get("level") != b.get("level")]
    model_diff = [i for i, (a, b) in enumerate(pairs) if a.get("model_level") != b.get("model_level")]
    prob_diff = [max((abs(p - q) for p, q in zip(a.get("probabilities", []), b.get("probabilities", []))), default=0.0)
                 for a, b in pairs]
    max_dp = max(prob_diff, default=float("nan"))
    ok = not level_diff and not model_diff and not errors and max_dp <= PROB_TOLERANCE
    return {
        "ok": ok, "cases": len(pairs), "level_mismatches": len(level_diff),
        "arm_more_urgent": sum(1 for i in level_diff if candidate[i]["level"] < reference[i]["level"]),
        "arm_less_urgent": sum(1 for i in level_diff if candidate[i]["level"] > reference[i]["level"]),
        "model_level_mismatches": len(model_diff), "error_lines": len(errors),
        "max_abs_prob_diff": round(max_dp, 6), f"cases_prob_diff_over_{PROB_TOLERANCE:g}":
            sum(1 for d in prob_diff if d > PROB_TOLERANCE),
        "mismatches": [{"case_index": i, "x86_level": reference[i].get("level"), "arm_level": candidate[i].get("level"),
                        "x86_model_level": reference[i].get("model_level"),
                        "arm_model_level": candidate[i].get("model_level"),
                        "x86_probabilities": [round(p, 4) for p in reference[i].get("probabilities", [])],
                        "arm_probabilities": [round(p, 4) for p in candidate[i].get("probabilities", [])]}
                       for i in sorted(set(level_diff) | set(model_diff))[:10]],
    }


def eval_summary(text: str) -> dict:
    report = json.loads(text)
    keep = {}
    for key, value in report.items():
        if isinstance(value, (int, float, str)) or key in ("metrics", "model_only", "nurse"):
            keep[key] = value
    return keep


def eval_equal(a: dict, b: dict, path: str = "") -> list[str]:
    """Differences between two eval reports, ignoring timings; floats within 1e-6."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        if any(word in key for word in ("seconds", "time", "elapsed", "per_s", "ms", "threads", "model_dir", "created")):
            continue
        x, y = a.get(key), b.get(key)
        where = f"{path}.{key}" if path else key
        if isinstance(x, dict) and isinstance(y, dict):
            diffs += eval_equal(x, y, where)
        elif isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-6:
                diffs.append(f"{where}: {x} vs {y}")
        elif x != y:
            diffs.append(f"{where}: {x!r} vs {y!r}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ARM (QEMU) vs x86 answer parity on the shipped bundle")
    parser.add_argument("--bundle", type=Path, required=True, help="aarch64 offline bundle tarball (make bundle)")
    parser.add_argument("--data", type=Path, required=True, help="KTAS data.csv")
    parser.add_argument("--cpu", action="append", choices=sorted(CPU_MODELS), help="repeatable; default both Pi models")
    parser.add_argument("--limit", type=int, default=0, help="first N cases only (0: all)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/edge-triage-arm"))
    parser.add_argument("--report", type=Path, default=REPO / "dist" / "verify-arm.json")
    parser.add_argument("--skip-eval", action="store_true", help="only check + per-case predict")
    parser.add_argument("--scale", action="append", choices=("ktas", "esi"),
                        help="repeatable; per-case predict in each scale the bundle answers in (default: both)")
    args = parser.parse_args(argv)
    scales = args.scale or ["ktas", "esi"]
    cpus = args.cpu or ["cortex-a72", "cortex-a76"]
    if shutil.which("qemu-aarch64-static") is None:
        print("verify-arm: qemu-aarch64-static missing (apt-get install qemu-user-static)", file=sys.stderr)
        return 2
    if not args.data.is_file():
        print(f"verify-arm: no data at {args.data} (../shared/data/ktas-moon2019/data.csv)", file=sys.stderr)
        return 2
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sysroot = build_sysroot(work)
    bundle_root = unpack_bundle(args.bundle.resolve(), work)
    site = install_site(bundle_root, work)
    meta = json.loads((bundle_root / "BUNDLE.json").read_text())
    model = bundle_root / "models" / meta["model"]

    cases = work / "cases.jsonl"
    count = write_cases(args.data, cases)
    if args.limit:
        lines = cases.read_text().splitlines()[: args.limit]
        cases.write_text("\n".join(lines) + "\n")
        count = len(lines)
    print(f"verify-arm: {count} cases from {args.data.name}; bundle {meta['name']}; model {meta['model']}")

    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1",
                "HOME": str(work), "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"}
    runners = [Runner([sys.executable], {**base_env, "PYTHONPATH": str(REPO)}, "x86_64")]
    qemu_python = str(sysroot / "usr/bin/python3.11")
    for cpu in cpus:
        runners.append(Runner(["qemu-aarch64-static", "-cpu", cpu, "-L", str(sysroot), qemu_python],
                              {**base_env, "PYTHONPATH": str(site)}, cpu))

    report: dict = {"bundle": meta["name"], "model": meta["model"], "cases": count, "runs": {}}
    reference: list[dict] | None = None
    reference_eval: dict | None = None
    ok = True
    for runner in runners:
        if runner.label in CPU_MODELS:
            cpuinfo = sysroot / "proc" / "cpuinfo"
            cpuinfo.parent.mkdir(exist_ok=True)
            cpuinfo.write_text(cpuinfo_text(runner.label))
        run: dict = {}
        started = time.monotonic()
        version = runner.edge("--help")  # argparse import smoke
        probe = subprocess.run([*runner.python, "-c", "import onnxruntime, numpy, platform; "
                                "print(platform.machine(), onnxruntime.__version__, numpy.__version__)"],
                               env=runner.env, capture_output=True, text=True)
        run["platform"] = probe.stdout.strip() or probe.stderr.strip()[-300:]
        check = runner.edge("check", "--model", str(model))
        run["check_exit"] = check.returncode
        run["check"] = check.stdout.strip().splitlines()
        # One predict per scale: the shared int8 encoder and each scale's head and decision rule.
        results, exits = [], []
        for scale in scales:
            out = work / f"predict-{runner.label}-{scale}.jsonl"
            with out.open("w") as sink:
                predict = runner.edge("predict", "--model", str(model), "--scale", scale, "--input", str(cases), stdout=sink)
            exits.append(predict.returncode)
            results += read_results(out)
        run["predict_exit"] = max(exits)
        run["scales"] = scales
        if not args.skip_eval:
            evaluation = runner.edge("eval", "--format", "ktas", "--model", str(model), "--threads", "1",
                                     str(args.data))
            run["eval_exit"] = evaluation.returncode
            run["eval"] = eval_summary(evaluation.stdout) if evaluation.returncode == 0 else evaluation.stderr[-500:]
        if reference is None:
            reference, reference_eval = results, run.get("eval")
        else:
            run["parity"] = compare(reference, results)
            if not args.skip_eval:
                diffs = eval_equal(reference_eval or {}, run["eval"]) if isinstance(run["eval"], dict) else ["eval failed"]
                run["eval_differences"] = diffs[:20]
            ok &= run["parity"]["ok"] and not run.get("eval_differences") and run["predict_exit"] == 0
        ok &= version.returncode == 0 and check.returncode == 0 and run["predict_exit"] == 0
        run["emulated_wall_s_not_a_speed"] = round(time.monotonic() - started, 1)
        report["runs"][runner.label] = run
        summary = {k: v for k, v in run.items() if k not in ("check", "eval")}
        print(f"verify-arm [{runner.label}] {json.dumps(summary)}")
        for line in run["check"]:
            print(f"    check| {line}")
    report["ok"] = ok
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"verify-arm: {'PASS' if ok else 'FAIL'} (report {args.report})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
