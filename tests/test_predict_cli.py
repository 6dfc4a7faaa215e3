"""``edge-triage predict``: JSON lines in, JSON lines out through the same Triager as the service;
bad lines become JSON error lines with a code and the line number, and the run goes on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge.clinical.case import parse_case
from edge.inference.session import TriageModel
from edge.inference.triager import Triager

REPO = Path(__file__).resolve().parents[1]
LINES = [
    json.dumps({"complaint": "chest pain", "age": 66, "hr": 104}),
    "not json at all",
    json.dumps({"complaint": "ankle sprain", "age": 22}),
    "",
    json.dumps({"complaint": "cough", "spo2": 140}),
    json.dumps(["a list"]),
    json.dumps({"complaint": "seizure at home", "mental": "V"}),
]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "predict", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_predict_answers_good_lines_and_reports_bad_ones(tiny_bundle: Path) -> None:
    done = _run("--model", str(tiny_bundle), stdin="\n".join(LINES) + "\n")
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == 6  # the blank line is skipped
    assert out[1]["error"]["code"] == "invalid_json" and out[1]["line"] == 2
    assert out[3]["error"] == {"code": "out_of_range", "message": out[3]["error"]["message"], "field": "spo2"}
    assert out[3]["line"] == 5
    assert out[4]["error"]["code"] == "not_an_object"
    assert "3 answered, 3 rejected" in done.stderr
    # The same path as the service: identical levels and probabilities from the Triager.
    triager = Triager(TriageModel.load(tiny_bundle))
    for index, out_index in {0: 0, 2: 2, 6: 5}.items():  # input line -> output line (blank skipped)
        expected = triager.triage(parse_case(json.loads(LINES[index])))
        got = out[out_index]
        assert got["level"] == expected.level and got["probabilities"] == expected.probabilities
        assert got["rules_fired"] == expected.rules_fired


def test_predict_files_and_explain(tiny_bundle: Path, tmp_path: Path) -> None:
    source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(LINES[2] + "\n")
    done = _run("--model", str(tiny_bundle), "--input", str(source), "--output", str(sink), "--explain")
    assert done.returncode == 0, done.stderr
    (result,) = [json.loads(line) for line in sink.read_text().splitlines()]
    assert result["explanation"] and result["level"] in range(1, 6)


def test_predict_with_a_bad_bundle_exits_with_a_message(tmp_path: Path) -> None:
    done = _run("--model", str(tmp_path / "missing"), stdin=LINES[0])
    assert done.returncode == 2 and "bundle_not_found" in done.stderr and done.stdout == ""
