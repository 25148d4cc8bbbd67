"""Browser tests: Playwright (pytest-playwright's ``page``) driving Debian's chromium.

``live_server`` serves the ``app`` fixture's application on a free local port from a thread;
its ``url`` is the base address. Every test in this folder is marked ``browser`` (and ``db``,
through the ``app`` fixture). Chromium missing fails the test: .ci/run installs it.
"""
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = shutil.which("chromium")
    if not executable:
        pytest.fail("chromium is not installed (apt-get install -y chromium; .ci/run does it)", pytrace=False)
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_ARGS,
            "headless": True}


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-server", daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app):
    server = LiveServer(app).start()
    yield server
    server.stop()
