"""``edge-triage check``: is this device ready to serve? Configuration, model bundle (sha256 and a
real warm-up inference), token file, audit log, sensors (thermal, power), cgroup memory limits and PSI. Prints one
line per check; exits 1 when any check fails (warnings alone exit 0)."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from edge.errors import EdgeError

Check = tuple[str, str, str]  # (name, "ok" / "warn" / "fail", message)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument("--model", dest="model_dir", help="model bundle directory")
    parser.add_argument("--monitor-root", help="root for /sys and /proc (fake board trees in tests)")
    parser.add_argument("--json", action="store_true", help="print the checks as one JSON object")


def _bundle(config) -> list[Check]:
    from edge.inference.session import TriageModel

    try:
        model = TriageModel.load(config.model_dir, config.runtime_options(), warm=True)
    except EdgeError as error:
        return [("model bundle", "fail", f"{error.code}: {error.message}")]
    identity = model.bundle.identity()
    checks: list[Check] = [("model bundle", "ok", f"{identity['name']} {identity['version']} sha256 {identity['sha256'][:12]}…, "
                            f"every file verified, warm-up inference ran (target {model.bundle.manifest.get('target')})"),
                           ("int8 arithmetic", "ok", model.arithmetic)]
    scale = config.scale or model.default_scale
    if scale in model.scales:
        checks.append(("triage scale", "ok", f"answers in {scale} (the bundle has {', '.join(model.scales)})"))
    else:
        checks.append(("triage scale", "fail", f"configured scale {scale} is not in the bundle "
                                               f"({', '.join(model.scales)}); set scale to one of them"))
    return checks


def _security(config) -> list[Check]:
    from edge.service.access import AccessPolicy

    try:
        access = AccessPolicy.from_config(config.token_file, config.host)
    except EdgeError as error:
        return [("access", "fail", f"{error.code}: {error.message}")]
    if access.has_token:
        return [("access", "ok", f"bound to {config.host}; bearer token file is private")]
    return [("access", "ok", f"loopback only ({config.host}); no token file, so admin actions "
             "(bundle reload, audit export) are disabled")]


def _audit(config) -> list[Check]:
    db = Path(config.audit_db)
    directory = db.parent if db.parent != Path("") else Path(".")
    if db.exists():
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.Error as error:
            return [("audit log", "fail", f"{db} cannot be opened: {error}")]
        if result != "ok":
            return [("audit log", "fail", f"{db} failed its integrity check; move it aside and keep it for review")]
        loose = [str(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(config.audit_key_file))
                 if p.exists() and p.stat().st_mode & 0o077]
        if loose:  # the service tightens its own files at start; say so before it does
            return [("audit log", "warn", f"readable by other accounts: {', '.join(loose)}; the service makes "
                     "them 0600 at start, or run `chmod 600` on them now")]
        return [("audit log", "ok", f"{db} passes its integrity check; database and key files are 0600")]
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return [("audit log", "fail", f"cannot create {db}: {probe} is not writable by this user")]
    return [("audit log", "ok", f"{db} will be created on first start")]


def _sensors(config) -> list[Check]:
    from edge.board import memory, power, thermal

    command = config.monitor.get("throttle_command", thermal.DEFAULT_THROTTLE_COMMAND)
    pmic = config.monitor.get("pmic_command", power.DEFAULT_PMIC_COMMAND)
    return [*thermal.describe(config.monitor_root, tuple(command) if command else None),
            *memory.describe(config.monitor_root),
            *power.describe(config.monitor_root, tuple(pmic) if pmic else None)]


def run(args: argparse.Namespace) -> int:
    from edge.service.config import load_config

    checks: list[Check] = []
    try:
        config = load_config(args.config, overrides={"model_dir": args.model_dir, "monitor_root": args.monitor_root})
        checks.append(("configuration", "ok", f"{args.config or 'defaults'} + environment"))
    except EdgeError as error:
        checks.append(("configuration", "fail", f"{error.code}: {error.message}"))
        config = None
    if config is not None:
        for part in (_bundle, _security, _audit, _sensors):
            try:
                checks.extend(part(config))
            except Exception as error:  # a checker bug is a failed check, not a traceback
                checks.append((part.__name__.strip("_"), "fail", f"check crashed: {type(error).__name__}"))
    failed = any(status == "fail" for _, status, _ in checks)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [{"name": n, "status": s, "message": m} for n, s, m in checks]}))
    else:
        for name, status, message in checks:
            print(f"[{status:>4}] {name}: {message}")
        print("edge-triage check: " + ("problems found" if failed else "ready to serve"))
    return 1 if failed else 0
