"""``edge-triage audit-export``: the audit log as CSV, read-only, while the service keeps running
(WAL lets a reader and the writer work side by side). For the device's administrator; the HTTP
route ``GET /v1/audit/export.csv`` does the same with the admin token."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (for audit_db)")
    parser.add_argument("--db", help="audit database (default: audit_db from the configuration)")
    parser.add_argument("--since", type=float, default=0.0, help="only decisions at or after this Unix time")
    parser.add_argument("--output", help="CSV file (default: stdout)")


def run(args: argparse.Namespace) -> int:
    from edge.service.audit import EXPORT_QUERY, write_csv
    from edge.service.config import load_config
    from edge.errors import EdgeError

    try:
        db = Path(args.db or load_config(args.config).audit_db)
    except EdgeError as error:
        print(f"edge-triage audit-export: {error.code}: {error.message}", file=sys.stderr)
        return 2
    if not db.is_file():
        print(f"edge-triage audit-export: audit_missing: {db} does not exist; pass --db or --config.", file=sys.stderr)
        return 2
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute(EXPORT_QUERY, (args.since,)).fetchall()
    except sqlite3.Error as error:
        print(f"edge-triage audit-export: audit_unreadable: {db}: {error}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as handle:
            write_csv(rows, handle)
    else:
        write_csv(rows, sys.stdout)
    print(f"edge-triage audit-export: {len(rows)} decisions", file=sys.stderr)
    return 0
