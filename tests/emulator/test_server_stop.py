"""Stopping the emulator leaves no request thread behind to find its store closed.

A client that gave up on a slow page (a read timeout) leaves the emulator's handler asleep in the
fault's delay; before, it woke after the server had stopped and its state dir was gone, failed
with "unable to open database file" and logged a traceback from a stray thread in the middle of
some later test.
"""
import logging
import threading
import time

import requests

from emulator.testing import EmulatorServer

PAGED = "SELECT Id FROM Lead"


def _kept_alive_session(emu):
    s = emu.http_session()
    s.headers.update({"Authorization": "Bearer " + emu.token_for()["access_token"],
                      "Sforce-Query-Options": "batchSize=200"})
    return s


def test_stop_cuts_a_fault_delay_short_and_waits_for_the_request(caplog):
    emu = EmulatorServer().start()
    for i in range(300):
        emu.create("Lead", {"LastName": f"Stop{i:03d}", "Company": "Acme"})
    emu.admin.add_fault(type="page_timeout", page=2, seconds=30)
    s = _kept_alive_session(emu)
    first = s.get(emu.url + "/services/data/v62.0/query", params={"q": PAGED}, timeout=5).json()
    answers: list = []

    def ask_slow_page():
        try:
            answers.append(s.get(emu.url + first["nextRecordsUrl"], timeout=60).status_code)
        except requests.RequestException as exc:  # the connection may be closed instead
            answers.append(type(exc).__name__)

    asker = threading.Thread(target=ask_slow_page)
    asker.start()
    time.sleep(0.5)  # the handler is now asleep in the fault's 30 s delay
    server = emu._server
    assert server.in_flight.count == 1
    caplog.set_level(logging.ERROR, logger="emulator")
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 10  # not the fault's 30 s
    asker.join(timeout=10)
    assert not asker.is_alive()
    assert answers == [503]  # Server Unavailable, answered without touching the closing store
    assert server.in_flight.count == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_kept_alive_connection_gets_503_once_stopping():
    emu = EmulatorServer().start()
    try:
        s = _kept_alive_session(emu)
        assert s.get(emu.url + "/services/data/v62.0/limits", timeout=5).status_code == 200
        emu.state.stopping.set()  # as stop() does first
        refused = s.get(emu.url + "/services/data/v62.0/limits", timeout=5)
        assert refused.status_code == 503
        assert refused.json() == [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server Unavailable"}]
    finally:
        emu.stop()
