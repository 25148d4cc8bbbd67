"""Emulator suite: the emulator runs in a thread; clients are the real simple-salesforce, authlib and
requests. One server per module keeps the suite fast; tests that change faults or limits undo them."""
import pytest

from emulator.testing import EmulatorServer

@pytest.fixture(scope="module")
def emu():
    with EmulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_faults(request):
    yield
    if "emu" in request.fixturenames:
        server = request.getfixturevalue("emu")
        server.admin.clear_faults()
        server.admin.set_clock(None)
