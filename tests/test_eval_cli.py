"""``edge-triage eval`` end to end: the installed console script in a real subprocess, a real tiny
ONNX bundle, fixture files in both formats. The figures must equal what the service's own
path (Triager) gives for the same cases, so eval measures what is served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.clinical import evaluation_metrics as metrics
from edge.clinical.datasets import ktas, mimic
from edge.inference.session import TriageModel
from edge.inference.triager import Triager
from tests import test_datasets_ktas as ktas_fixture
from tests import test_datasets_mimic as mimic_fixture

METRIC_KEYS = {"n", "accuracy", "macro_f1", "qwk", "under_triage", "over_triage", "critical_recall", "confusion"}


def edge_triage() -> str:
    script = Path(sys.executable).parent / "edge-triage"
    if not script.is_file():
        pytest.fail(f"{script} is missing: install the project first (.venv/bin/pip install -e '.[export,test]')")
    return str(script)


def run_eval(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "EDGE_TRIAGE_MODEL"}
    full_env.update(env or {})
    return subprocess.run([edge_triage(), "eval", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=120)


def expected(dataset: Any, bundle: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Final and model-only metrics computed in-process through Triager, one case at a time."""
    triager = Triager(TriageModel.load(bundle))
    results = [triager.triage(c.case) for c in dataset.cases]
    truth = [c.truth for c in dataset.cases]
    return (metrics.compute(truth, [r.level for r in results]),
            metrics.compute(truth, [r.model_level for r in results]))


def assert_same_metrics(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["confusion"] == want["confusion"] and got["n"] == want["n"]
    for key in METRIC_KEYS - {"confusion", "n"}:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


def test_ktas_file(tmp_path: Path, tiny_bundle: Path) -> None:
    path = ktas_fixture.write(tmp_path, ktas_fixture.ROWS)
    proc = run_eval("--format", "ktas", str(path), "--model", str(tiny_bundle), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # progress only on a terminal
    out = json.loads(proc.stdout)  # exactly one JSON object
    assert proc.stdout.count("\n") == 1

    final, model_only = expected(ktas.load(path), tiny_bundle)
    assert METRIC_KEYS <= set(out)
    assert_same_metrics(out, final)
    assert_same_metrics(out["model_only"], model_only)
    assert out["n"] == 5 and sum(map(sum, out["confusion"])) == 5 and out["rows"] == 7
    assert out["unusable"] == {"count": 2, "by_reason": {"empty_complaint:complaint": 1,
                                                         "missing_label:KTAS_expert": 1}}
    assert out["fields_set_missing"]["count"] == 2
    # The nurse on the same rows: truths 4,5,2,3,1 against KTAS_RN 2,4,2,3,1.
    assert out["nurse"]["n"] == 5 and out["nurse"]["accuracy"] == pytest.approx(0.6)
    assert out["nurse"]["over_triage"] == pytest.approx(0.4) and out["nurse"]["under_triage"] == 0
    assert out["model"]["name"] == "tiny-test" and len(out["model"]["sha256"]) == 64
    # Rules only raise: the final answer is never less urgent than the model's.
    assert out["under_triage"] <= out["model_only"]["under_triage"]
    assert "ocular" not in proc.stdout and "forearm" not in proc.stdout  # no complaint text (PHI) in output


def test_mimic_folder_and_model_from_environment(tmp_path: Path, tiny_bundle: Path) -> None:
    root = mimic_fixture.write_mimic(tmp_path / "mimic")
    # MIMIC-IV-ED levels are ESI; the tiny bundle answers in KTAS only, so the default is refused
    # with a message that says how to fix it, and --scale ktas evaluates it anyway.
    refused = run_eval("--format", "mimic-ed", str(root), cwd=tmp_path, env={"EDGE_TRIAGE_MODEL": str(tiny_bundle)})
    assert refused.returncode == 2 and "--scale ktas" in refused.stderr
    proc = run_eval("--format", "mimic-ed", str(root), "--batch-size", "3", "--scale", "ktas", cwd=tmp_path,
                    env={"EDGE_TRIAGE_MODEL": str(tiny_bundle)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    final, model_only = expected(mimic.load(root), tiny_bundle)
    assert_same_metrics(out, final)
    assert_same_metrics(out["model_only"], model_only)
    assert out["n"] == 8 and out["rows"] == 10 and out["nurse"] is None
    assert out["unusable"]["by_reason"] == {"empty_complaint:complaint": 1, "missing_label:acuity": 1}
    assert out["fields_set_missing"]["by_reason"]["out_of_range:temp_c"] == 1
    assert out["model"]["path"] == str(tiny_bundle.resolve())


def test_bad_inputs_fail_with_a_clear_message(tmp_path: Path, tiny_bundle: Path) -> None:
    ktas_path = ktas_fixture.write(tmp_path, ktas_fixture.ROWS)
    cases = [
        (["--format", "ktas", str(tmp_path / "absent.csv"), "--model", str(tiny_bundle)], "file_missing"),
        (["--format", "mimic-ed", str(tmp_path / "nowhere"), "--model", str(tiny_bundle)], "ed/triage.csv.gz"),
        (["--format", "mimic-ed", str(tmp_path), "--model", str(tiny_bundle)], "lacks ed/triage.csv.gz"),
        # A KTAS file read as MIMIC and vice versa: wrong format is named, not mis-scored.
        (["--format", "ktas", str(mimic_fixture.write_mimic(tmp_path / "m") / "ed" / "triage.csv.gz"),
          "--model", str(tiny_bundle)], "not a KTAS file"),
        (["--format", "ktas", str(ktas_path), "--model", str(tmp_path / "no-bundle")], "--model"),
        (["--format", "ktas", str(ktas_path)], "EDGE_TRIAGE_MODEL"),
        (["--format", "csv", str(ktas_path)], "invalid choice"),
    ]
    for args, message in cases:
        env = {"EDGE_TRIAGE_MODEL": str(tmp_path / "also-absent")} if "--model" not in args else {}
        proc = run_eval(*args, cwd=tmp_path, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (message, proc.stderr)
        assert proc.stdout == ""


def test_corrupt_bundle_is_refused(tmp_path: Path, tiny_bundle: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    with (broken / "tokenizer.json").open("a", encoding="utf-8") as handle:
        handle.write(" ")
    proc = run_eval("--format", "ktas", str(ktas_fixture.write(tmp_path, ktas_fixture.ROWS)),
                    "--model", str(broken), cwd=tmp_path)
    assert proc.returncode == 2 and "hash_mismatch" in proc.stderr and proc.stdout == ""


def test_no_usable_rows_still_reports_why(tmp_path: Path, tiny_bundle: Path) -> None:
    rows = [r for r in ktas_fixture.ROWS if ";;0;60;2,00;0" in r or ";   ;" in r]  # the two unusable rows
    proc = run_eval("--format", "ktas", str(ktas_fixture.write(tmp_path, rows)), "--model", str(tiny_bundle),
                    cwd=tmp_path)
    assert proc.returncode == 1 and "no usable rows" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["n"] == 0 and out["unusable"]["count"] == 2 and out["accuracy"] is None


def test_real_ktas_file_nurse_figures(tmp_path: Path, tiny_bundle: Path, ktas_csv: Path) -> None:
    proc = run_eval("--format", "ktas", str(ktas_csv), "--model", str(tiny_bundle), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n"] == 1014 and out["unusable"]["count"] == 0
    # PROVENANCE.md: nurse vs expert on these rows 0.860 accuracy, 10.0 % under-triage, QWK 0.879.
    assert out["nurse"]["accuracy"] == pytest.approx(0.860, abs=5e-4)
    assert out["nurse"]["under_triage"] == pytest.approx(0.100, abs=5e-4)
    assert out["nurse"]["qwk"] == pytest.approx(0.879, abs=5e-4)


def test_shipped_bundle_is_the_default(tmp_path: Path) -> None:
    """Without --model or EDGE_TRIAGE_MODEL, eval finds models/triage-minilm-int8 next to the package."""
    from tests.conftest import SHIPPED_BUNDLE

    if not (SHIPPED_BUNDLE / "manifest.json").is_file():
        pytest.skip(f"no shipped bundle at {SHIPPED_BUNDLE} yet (built by `edge-export build`)")
    proc = run_eval("--format", "ktas", str(ktas_fixture.write(tmp_path, ktas_fixture.ROWS)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    manifest = json.loads((SHIPPED_BUNDLE / "manifest.json").read_text())
    assert out["model"]["name"] == manifest["name"] and out["model"]["path"] == str(SHIPPED_BUNDLE.resolve())
    assert out["n"] == 5


def test_critical_outcome_is_reported_beside_the_nurse() -> None:
    from edge.cli.evaluate import admitted, critical_outcome, subgroups
    from edge.clinical.datasets import nhamcs

    labels = {"10501": "Chest pain", "10100": "Fever"}
    rows = [{"IMMEDR": level, "RFV1": 10501, "AGE": 70, "SEX": 2, "ADMIT": 1 if crit else -7,
             "ADMITHOS": 1 if adm else 0, "DIEDED": 0} for level, crit, adm in
            [(2, True, True), (3, True, True), (3, False, True), (4, False, False), (1, False, False)]]
    ds = nhamcs.load_rows(rows, labels, "t")
    model = [1, 2, 3, 2, 1]  # catches both critical visits, calls 4 of 5 visits level 1-2
    co = critical_outcome(ds, model)
    assert co["critical_visits"] == 2
    assert co["model"] == {"recall_level_1_2": 1.0, "share_level_1_2": 0.8}
    assert co["nurse"] == {"recall_level_1_2": 0.5, "share_level_1_2": 0.4}
    assert admitted(ds, model)["n"] == 3
    groups = subgroups(ds, model, min_n=1)
    assert {g["group"] for g in groups} == {"sex", "age_band", "arrival", "race_ethnicity"}


def test_nhamcs_files_evaluate_through_the_cli(tmp_path: Path, tiny_bundle: Path) -> None:
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "nhamcs-ed-2016-2020" / "ed2020_sas.zip"
    labels = SHARED_DATA / "nhamcs-ed-2016-2020" / "rfv_labels.json"
    if not path.is_file():
        pytest.skip(f"NHAMCS data not found at {path}")
    proc = run_eval("--format", "nhamcs", str(path), "--model", str(tiny_bundle), "--scale", "ktas", cwd=tmp_path,
                    env={"EDGE_TRIAGE_RFV_LABELS": str(labels)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["scale"] == "ktas" and out["n"] > 9000
    co = out["critical_outcome"]
    assert co["critical_visits"] > 200 and 0.55 < co["nurse"]["recall_level_1_2"] < 0.7
    assert 0 <= co["model"]["share_level_1_2"] <= 1 and out["admitted"]["n"] > 1000
    assert "Chest pain" not in proc.stdout  # no complaint text in the output
