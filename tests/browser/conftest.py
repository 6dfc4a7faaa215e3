"""Browser tests: the real service (waitress on an ephemeral loopback port, tiny real ONNX
bundle, real SQLite audit log, the board monitor on a fake Raspberry Pi 4 sysfs tree) driven by
Debian's headless Chromium through Playwright's Python package. No browser is ever downloaded:
``make browsers`` installs /usr/bin/chromium from Debian when it is missing."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "tests" / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SIZES = {"800x480": {"width": 800, "height": 480}, "1280x800": {"width": 1280, "height": 800}}


@dataclass
class LiveService:
    url: str
    app: Any
    config: Any
    board: Any
    server: Any
    thread: threading.Thread

    @property
    def state(self) -> Any:
        return self.app.extensions["edge"]

    def audit_rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the audit database the way an auditor would: a separate SQLite connection."""
        with sqlite3.connect(self.config.audit_db) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        # EdgeServer.stop closes the sockets; the service parts (scheduler, monitor thread,
        # audit log) stop separately, as edge.service.server.serve does after serve_forever returns.
        self.server.stop()
        self.thread.join(10)
        self.state.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}: run `make browsers` "
                    "(apt-get install -y chromium); browser tests need it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (test extra) is missing")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def start_service(tmp_path: Path, tiny_bundle: Path) -> Iterator[Callable[..., LiveService]]:
    from edge.service.app import create_app
    from edge.service.config import ServiceConfig
    from edge.service.server import EdgeServer
    from tests.kit.fake_boards import raspberry_pi_4

    started: list[LiveService] = []

    def start(web: dict[str, Any] | None = None, temp_c: float = 48.0, policy: dict[str, Any] | None = None,
              bundle: Path | None = None, make_board: Callable[..., Any] = raspberry_pi_4) -> LiveService:
        root = tmp_path / f"board{len(started)}"
        board = make_board(root, temp_c=temp_c)
        config = ServiceConfig(
            host="127.0.0.1", port=0, model_dir=str(bundle or tiny_bundle),
            audit_db=str(tmp_path / f"audit{len(started)}.sqlite3"), audit_key_file=str(tmp_path / "audit.key"),
            monitor_root=str(root), monitor_interval_s=0.2, deadline_ms=5000.0,
            monitor={"throttle_command": list(board.throttle_command or ()), "interval_s": 0.2},
            policy={"thermal_enter_after_s": 0.0, **(policy or {})},
            # Short refresh periods keep the tests quick; the defaults suit a ward.
            web={"staff_refresh_s": 0.5, "status_refresh_s": 0.5, "history_interval_s": 0.2, **(web or {})},
        ).validate()
        app = create_app(config)
        server = EdgeServer(app, config)
        thread = threading.Thread(target=server.serve_forever, name="edge-test-server", daemon=True)
        thread.start()
        live = LiveService(f"http://127.0.0.1:{server.port}", app, config, board, server, thread)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
def page_factory(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def new_page(size: str = "1280x800") -> Any:
        context = browser.new_context(viewport=SIZES[size])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.js_errors = errors  # checked by the tests: a CSP violation or script error fails them
        return page

    yield new_page
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> list[Path]:
    """Save the page at both target screen sizes: <name>-800x480.png and <name>-1280x800.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths = []
    for label, size in SIZES.items():
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=False)
        paths.append(path)
    page.set_viewport_size(original)
    return paths
