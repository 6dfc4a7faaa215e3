"""Only the energy phase of the bench: ``python -m bench.energy_only``.

The same fixed triage loop as ``python -m bench`` (the shipped bundle, 1 thread, the median KTAS
complaint) measured by bench/energy.py on this machine, on the board tree under
``--monitor-root``, or on a fake board (``--fake-board orin-nano|pi5``: the fake sensor's rail
follows this process's CPU use at the board's per-core watts, so the measured path runs end to
end where no board is at hand). Prints the energy section as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bench import energy

REPO = Path(__file__).resolve().parents[1]


def _bundle(path: Path, scratch: Path) -> tuple[Path, str]:
    if (path / "manifest.json").is_file():
        return path, "the shipped bundle"
    from tests.kit.tiny_bundle import build_tiny_bundle

    return build_tiny_bundle(scratch / "tiny-bundle"), f"TINY TEST BUNDLE ({path} is missing)"


@contextlib.contextmanager
def _board(kind: str | None, monitor_root: str, scratch: Path) -> Iterator[str]:
    if kind is None:
        yield monitor_root
        return
    from tests.kit import fake_boards as fb, fake_power as fp

    if kind == "orin-nano":
        board = fb.jetson_orin(scratch / "orin", nano=True)
        with fp.follow_cpu_load(board, "VDD_IN", energy.POWER_PER_BUSY_CORE_W["jetson-orin-nano"][0]):
            yield str(board.root)
        return
    board = fb.raspberry_pi_5(scratch / "pi5")
    with _pmic_follows_load(board):
        yield str(board.root)


def _pmic_follows_load(board: Any) -> contextlib.AbstractContextManager[None]:
    """The Pi 5 fake: VDD_CORE's current follows this process's CPU use (≈1.6 W per busy core)."""
    from tests.kit import fake_power as fp

    return fp.pmic_follows_cpu_load(board, energy.POWER_PER_BUSY_CORE_W["raspberry-pi-5"][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.energy_only", description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "triage-minilm-int8")
    parser.add_argument("--monitor-root", default="/", help="board tree to read power from (default /)")
    parser.add_argument("--fake-board", choices=("orin-nano", "pi5"), help="measure on a fake board instead")
    parser.add_argument("--runs", type=int, default=300, help="inferences in the loaded phase")
    parser.add_argument("--idle-s", type=float, default=2.0, help="seconds of idle power before the load")
    args = parser.parse_args(argv)

    from edge.inference.bundle import verify
    from edge.inference.session import RuntimeOptions, TriageModel

    from bench.inputs import build_inputs

    with tempfile.TemporaryDirectory(prefix="bench-energy-") as tmp:
        scratch = Path(tmp)
        bundle_dir, note = _bundle(args.model, scratch)
        bundle = verify(bundle_dir)
        inputs = build_inputs(bundle.tokenizer_file, int(bundle.manifest["max_seq_len"]))
        model = TriageModel.load(bundle_dir, RuntimeOptions(intra_op_threads=1))
        ids = next(i for i in inputs.real_ids if i.shape[1] == inputs.median_length)

        def loop() -> int:
            for _ in range(args.runs):
                model.run_arrays(ids, np.ones_like(ids), inputs.features)
            return args.runs

        loop()  # warm: the first runs allocate, which is not what an inference costs
        with _board(args.fake_board, args.monitor_root, scratch) as root:
            result = energy.measure(loop, root=root, idle_s=args.idle_s)
        result = {"measured_on": args.fake_board and f"FAKE {args.fake_board} (sensor follows this process's CPU use)"
                  or args.monitor_root, "bundle": note, "median_tokens": inputs.median_length, **result}
    print(json.dumps({"energy": result}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
