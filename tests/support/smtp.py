"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the notification tests."""

from __future__ import annotations

import email
import time

from aiosmtpd.controller import Controller

from tests.support.postgres import free_port


class Inbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[email.message.Message]:
        return [m for m in self.messages if m["To"] == address]

    def wait(self, n: int, timeout: float = 60) -> list[email.message.Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.messages


class SMTPServer:
    """`with SMTPServer() as smtp: ... smtp.port, smtp.inbox`"""

    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
