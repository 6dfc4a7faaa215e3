"""The CLI imports only the subcommand it runs: ``eval`` on a device must not need the web stack."""

import subprocess
import sys

PROBE = """
import sys, edge.cli as cli
try:
    cli.main(["eval", "--help"])
except SystemExit:
    pass
print("serve" if "edge.cli.serve" in sys.modules else "-", "flask" if "flask" in sys.modules else "-")
"""


def test_eval_does_not_import_the_service() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split()[-2:] == ["-", "-"]


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--help"], capture_output=True, text=True, timeout=60)
    for name in ("serve", "check", "predict", "eval", "audit-export"):
        assert name in out.stdout
