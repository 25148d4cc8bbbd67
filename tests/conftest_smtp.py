"""A real SMTP server for tests: aiosmtpd on a free local port, capturing what it receives.

``smtp_server`` gives an object with ``host``, ``port``, ``messages`` (parsed
``email.message.Message`` objects, newest last) and ``envelopes`` (aiosmtpd envelopes).
``smtp_server_factory(**controller_kwargs)`` starts more (e.g. with STARTTLS or AUTH).
"""
from __future__ import annotations

import email
import email.policy
import socket
from dataclasses import dataclass, field

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Capture:
    def __init__(self, server: "CapturingSMTPServer"):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.server.reject_recipients:
            return "550 5.1.1 no such user"
        if address in self.server.defer_recipients:
            return "450 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.server.envelopes.append(envelope)
        self.server.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@dataclass
class CapturingSMTPServer:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list = field(default_factory=list)
    envelopes: list = field(default_factory=list)
    reject_recipients: set = field(default_factory=set)  # refused for good (550)
    defer_recipients: set = field(default_factory=set)   # refused for now (450)
    controller: object = None

    def start(self, **controller_kwargs) -> "CapturingSMTPServer":
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.controller = Controller(_Capture(self), hostname=self.host, port=self.port, **controller_kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server_factory():
    started = []

    def start(**controller_kwargs) -> CapturingSMTPServer:
        server = CapturingSMTPServer().start(**controller_kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory) -> CapturingSMTPServer:
    return smtp_server_factory()
