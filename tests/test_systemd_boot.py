"""Real boot test (slow, root): a debootstrapped Debian bookworm booted with systemd-nspawn runs the
installed unit; the driver inside shows READY, a watchdog-triggered restart through the service's
test hook, and the audit database kept across it. See deploy/boot_test.sh; `make boot-test`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "deploy"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_boot_ready_watchdog_restart_and_state_kept(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("systemd-nspawn needs root")
    missing = [t for t in ("systemd-nspawn", "debootstrap", "script") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {missing}: apt-get install systemd-container debootstrap")
    import platform

    import build_bundle
    from tests.kit.tiny_bundle import build_tiny_bundle

    model = REPO / "models" / "triage-minilm-int8"
    if not (model / "manifest.json").exists():
        model = tmp_path / "models" / "triage-minilm-int8"
        build_tiny_bundle(model)
    tarball = build_bundle.build(build_bundle.BundleSpec(platform.machine(), "3.11", model, tmp_path / "dist"))
    log = tmp_path / "boot.log"
    result = subprocess.run([str(REPO / "deploy" / "boot_test.sh"), str(tarball), str(log)],
                            capture_output=True, text=True, timeout=1400)
    text = log.read_text() if log.exists() else ""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:] + text[-4000:]
    assert "BOOTTEST: READY" in text and "BOOTTEST: RESTARTED" in text and "BOOTTEST: STATE KEPT" in text
    assert "Watchdog timeout" in text
