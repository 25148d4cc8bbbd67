"""Browser tests: Playwright (pytest-playwright's ``page``) driving Debian's chromium.

``live_server`` serves the ``app`` fixture's application on a free local port from a thread;
its ``url`` is the base address. Every test in this folder is marked ``browser`` (and ``db``,
through the ``app`` fixture). Chromium missing fails the test: .ci/run installs it.

``trusting_browser(server)`` launches a chromium that trusts exactly the CA of ``server`` (an
``EmulatorServer``, or a CA PEM path) and nothing else extra: a throwaway HOME holding an NSS
database with that CA (``certutil``, Debian's libnss3-tools; .ci/run installs it). Tests that
visit the emulator's login and consent pages use it instead of ignoring certificate errors.
"""
import os
import shutil
import subprocess
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


@pytest.fixture
def trusting_browser(playwright, browser_type_launch_args, tmp_path):
    """``launch(server_or_ca_file) -> Browser``: chromium trusting that CA through NSS; closed after the test."""
    certutil = shutil.which("certutil")
    if not certutil:
        pytest.fail("certutil is not installed (apt-get install -y libnss3-tools; .ci/run does it)", pytrace=False)
    launched = []

    def launch(server_or_ca):
        ca_file = str(getattr(server_or_ca, "ca_file", server_or_ca))
        home = tmp_path / f"browser-home-{len(launched)}"
        nssdb = home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        for args in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "terapage-emulator", "-i", ca_file]):
            subprocess.run([certutil, "-d", f"sql:{nssdb}", *args], check=True, capture_output=True)
        browser = playwright.chromium.launch(**browser_type_launch_args, env={**os.environ, "HOME": str(home)})
        launched.append(browser)
        return browser

    yield launch
    for browser in launched:
        browser.close()


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
