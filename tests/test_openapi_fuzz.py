"""Property-based tests generated from /openapi.json by schemathesis, against a real server on an
ephemeral loopback port: valid requests (positive) and requests that break the schema (negative)
for every documented operation. No answer may be a 5xx, and every answer must match its
documented status, content type and schema. Bounded examples keep it well under a minute."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance)

from tests.servicekit import make_config, serving  # noqa: E402

TOKEN = "f" * 40
EXAMPLES = 40  # per operation and mode; operations without inputs stop early (about 400 requests)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _fuzz(operation: "schemathesis.APIOperation", mode: GenerationMode, base: str, statuses: dict[int, int]) -> int:
    """Run ``EXAMPLES`` generated cases of one operation in one mode; returns how many were sent."""
    sent = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        # The token lets the admin operations run for real instead of stopping at 401.
        response = case.call(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
        sent[0] += 1
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    try:
        call()
    except Exception as error:
        # schemathesis says this when it cannot build a negative case for an operation with
        # nothing to break (no parameters, no body): there is nothing to test there.
        if mode is not GenerationMode.NEGATIVE or type(error).__name__ != "Unsatisfiable":
            raise
    return sent[0]


def test_generated_requests_get_documented_answers_and_never_a_5xx(tiny_bundle: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 record_property) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    os.chmod(token, 0o600)
    config = make_config(tmp_path, tiny_bundle, token_file=str(token), batch_max=4)
    with serving(config) as (client, _):
        paths = client.get("/openapi.json").json["paths"]
        schema = schemathesis.openapi.from_url(client.base + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        counts: dict[str, int] = {}
        statuses: dict[int, int] = {}
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                key = f"{operation.method.upper()} {operation.path} {mode.value}"
                counts[key] = _fuzz(operation, mode, client.base, statuses)
    total = sum(counts.values())
    record_property("schemathesis_requests", total)
    with capsys.disabled():
        print(f"\nschemathesis: {total} generated requests over {len(operations)} operations; "
              f"statuses {dict(sorted(statuses.items()))}")
    documented = {f"{method.upper()} {path}" for path, ops in paths.items()
                  for method in ops}
    # schemathesis leaves out the operation that serves the schema itself.
    assert {op.label for op in operations} == documented - {"GET /openapi.json"}
    assert total >= 200, counts  # the run really ran
    assert any(400 <= s < 500 for s in statuses) and 200 in statuses
    assert not any(s >= 500 for s in statuses)
