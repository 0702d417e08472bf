"""A real SMTP server (aiosmtpd) on a free loopback port, which a test can stop and start
again on the same port; and a booking helper."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from aufruf.booking.service import Booked, BookingRequest, book
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.notifications.mail import SMTPMailer, SMTPServer
from aufruf.notifications.outbox import Delivery
from aufruf.notifications.render import MailConfig
from tests.builders import a_location
from tests.conftest import SECRET

MAIL_FROM = "termine@stadt.example"
PUBLIC = "https://termine.stadt.example"


def free_port() -> int:
    # aiosmtpd's Controller cannot take port 0 (its self-check connects to the given port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What the server received; `refuse` makes it answer DATA with that line instead."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: str | None = None

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse is not None:
            return self.refuse
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class SMTPTestServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages


@pytest.fixture
def smtp() -> Iterator[SMTPTestServer]:
    server = SMTPTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


CONFIG = MailConfig(mail_from=MAIL_FROM, public_url=PUBLIC, secret=SECRET)


def delivery_to(db: Database, smtp: SMTPTestServer | None, reminder=None) -> Delivery:
    mailer = None
    if smtp is not None:
        mailer = SMTPMailer(SMTPServer("127.0.0.1", smtp.port, implicit_tls=False, timeout=5))
    return Delivery(db, CONFIG, mailer, reminder)


async def a_booking(
    db: Database,
    clock: FixedClock,
    start: str,
    *,
    location: str = "amt",
    email: str | None = "ada@example.org",
    language: str = "de",
    by_staff: bool = False,
) -> Booked:
    async with db.write() as session:
        return await book(
            session,
            SECRET,
            clock.now(),
            BookingRequest(
                location=location,
                services=["pass"],
                start=datetime.fromisoformat(start),
                name="Ada Lovelace",
                email=email,
                language=language,
                by_staff=by_staff,
            ),
        )


@pytest.fixture
async def location(db: Database) -> str:
    return await a_location(db, services={"pass": 20})
