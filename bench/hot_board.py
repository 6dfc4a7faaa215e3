"""A hot board for the service run: a sensor tree under a temporary root that the service's
``monitor_root`` points at. Uses the monitors' own fake boards (``edge.testing.fake_boards``)
when they exist, so the bench fakes heat exactly as the service tests do; otherwise lays out a
Raspberry Pi 4 thermal zone (real sysfs names, millidegrees) at a throttling temperature.
"""

from __future__ import annotations

from pathlib import Path

HOT_MILLI_C = 86_000  # above the Pi 4 firmware's 85 °C soft limit / 80 °C throttle start


def make_hot_root(root: Path) -> tuple[Path, str]:
    """Build the tree; returns (root, how it was made)."""
    try:
        from edge.testing import fake_boards  # the monitors helper's faithful layouts
    except ImportError:
        fake_boards = None
    if fake_boards is not None:
        for name in ("make_hot_board", "hot_board", "build_hot_board"):
            factory = getattr(fake_boards, name, None)
            if callable(factory):
                made = factory(root)
                return Path(made) if made else root, f"edge.testing.fake_boards.{name}"
        for name in ("make_pi4", "pi4", "raspberry_pi_4", "build_pi4"):
            factory = getattr(fake_boards, name, None)
            if callable(factory):
                try:
                    made = factory(root, temp_c=HOT_MILLI_C / 1000)
                    return Path(made) if made else root, f"edge.testing.fake_boards.{name}(temp_c={HOT_MILLI_C / 1000})"
                except TypeError:
                    pass
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text(f"{HOT_MILLI_C}\n")
    (zone / "trip_point_0_type").write_text("critical\n")
    (zone / "trip_point_0_temp").write_text("110000\n")
    return root, f"bench Pi 4 thermal zone at {HOT_MILLI_C / 1000:.0f} °C"
