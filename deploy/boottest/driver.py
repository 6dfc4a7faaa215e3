"""Runs INSIDE the booted test container (edge-triage-boottest.service), never on a board.

Shows, in order: the service reached READY (Type=notify: 'active' only after READY=1), one triage
is written to the audit database, the test hook stalls the inference worker so the service's own
health check stops the watchdog pings, systemd kills and restarts it, the restarted service is
READY again and the audit record written before the restart is still there. Writes PASS/FAIL to
/root/boottest.result and powers the container off.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.request

UNIT = "edge-triage.service"
BASE = "http://127.0.0.1:8080"
AUDIT_DB = "/var/lib/edge-triage/audit.sqlite3"
RESULT = "/root/boottest.result"


def log(message: str) -> None:
    print(f"BOOTTEST: {message}", flush=True)


def show() -> dict[str, str]:
    out = subprocess.run(["systemctl", "show", UNIT, "-p", "ActiveState,SubState,MainPID,NRestarts,StatusText,Result"],
                         capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_for(predicate, timeout_s: float, what: str) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        state = show()
        summary = f"{state.get('ActiveState')}/{state.get('SubState')} pid={state.get('MainPID')} restarts={state.get('NRestarts')}"
        if summary != last:
            log(f"  {UNIT}: {summary} status={state.get('StatusText')!r}")
            last = summary
        if predicate(state):
            return state
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def http(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def audit_request_ids() -> set[str]:
    with sqlite3.connect(f"file:{AUDIT_DB}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT request_id FROM decisions")}


def scenario() -> None:
    ready = wait_for(lambda s: s.get("ActiveState") == "active", 300, "READY=1")
    log(f"READY: {UNIT} active (Type=notify), MainPID={ready['MainPID']}, StatusText={ready.get('StatusText')!r}")
    status, body = http("GET", "/readyz")
    log(f"GET /readyz -> {status} {json.dumps(body)[:200]}")
    assert status == 200, "service active but /readyz is not 200"

    status, result = http("POST", "/v1/triage", {"complaint": "chest pain radiating to left arm", "age": 64, "sex": "M"})
    assert status == 200, f"triage failed: {status} {result}"
    request_id = result["request_id"]
    log(f"POST /v1/triage -> {status} level={result['level']} degraded={result['degraded']} request_id={request_id}")
    before = audit_request_ids()
    assert request_id in before, "the decision is not in the audit database"
    log(f"audit db {AUDIT_DB}: {len(before)} decision(s), includes {request_id}")

    first_pid, restarts = ready["MainPID"], int(ready["NRestarts"])
    log("TEST HOOK: SIGUSR2 -> inference worker stalls; health fails; watchdog pings stop")
    subprocess.run(["systemctl", "kill", "--kill-who=main", "-s", "SIGUSR2", UNIT], check=True)
    try:  # a job for the stalled worker; answered degraded at its deadline, or cut off by the kill
        http("POST", "/v1/triage", {"complaint": "headache"})
    except OSError:
        pass
    again = wait_for(lambda s: int(s.get("NRestarts", 0)) > restarts and s.get("ActiveState") == "active", 240,
                     "a watchdog-triggered restart back to READY")
    assert again["MainPID"] != first_pid
    journal = subprocess.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"], capture_output=True, text=True).stdout
    assert "Watchdog timeout" in journal, "the restart was not triggered by the watchdog"
    log(f"RESTARTED: NRestarts {restarts} -> {again['NRestarts']}, MainPID {first_pid} -> {again['MainPID']}, READY again")

    after = audit_request_ids()
    assert before <= after, "audit records were lost across the restart"
    status, _ = http("POST", "/v1/triage", {"complaint": "ankle sprain", "age": 30})
    assert status == 200
    log(f"STATE KEPT: audit db has {len(after)} decision(s) after restart, {request_id} still present; "
        f"new triage after restart -> {status}, now {len(audit_request_ids())}")


def main() -> int:
    try:
        scenario()
        verdict = "PASS"
    except Exception as error:  # report any failure, then power off either way
        verdict = f"FAIL: {type(error).__name__}: {error}"
    log(verdict)
    journal = subprocess.run(["journalctl", "-u", UNIT, "-o", "short-monotonic", "--no-pager"],
                             capture_output=True, text=True).stdout
    for line in journal.splitlines()[-60:]:
        log(f"journal| {line}")
    with open(RESULT, "w") as handle:
        handle.write(verdict + "\n")
    subprocess.run(["systemctl", "--no-block", "poweroff"])
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
