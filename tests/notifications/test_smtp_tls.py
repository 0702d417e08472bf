"""E-mail over an encrypted connection to a real SMTP server (aiosmtpd with a certificate from a
test authority): STARTTLS on smtp://, implicit TLS on smtps://, login only inside TLS; a server
whose certificate is not trusted, or that refuses the login, gets nothing and the message waits."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from aufruf.db import Database
from aufruf.notifications.mail import SMTPMailer, SMTPServer
from aufruf.notifications.model import OutboxMessage
from aufruf.notifications.outbox import Delivery
from tests.notifications.conftest import CONFIG, a_booking, free_port

USER, PASSWORD = "termine", "geheim-und-lang"

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class TLSInbox:
    """Keeps each message with whether it came over TLS and who logged in."""

    def __init__(self) -> None:
        self.received: list[tuple[EmailMessage, bool, str | None]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        login = session.auth_data.decode() if session.authenticated else None
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.received.append((message, encrypted, login))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def trusting(authority: trustme.CA) -> ssl.SSLContext:
    """What a machine that trusts the mail server's authority uses to check it."""
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


def _serve(inbox: TLSInbox, port: int, **options) -> Controller:
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_required=True,
        **options,
    )
    controller.start()
    return controller


@pytest.fixture
def starttls_server(server_context) -> Iterator[tuple[TLSInbox, int]]:
    inbox, port = TLSInbox(), free_port()
    controller = _serve(
        inbox, port, tls_context=server_context, require_starttls=True, auth_require_tls=True
    )
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def implicit_tls_server(server_context) -> Iterator[tuple[TLSInbox, int]]:
    inbox, port = TLSInbox(), free_port()
    # the whole connection is TLS here; aiosmtpd counts only STARTTLS for auth_require_tls
    # (and warns about it at every connection: see pytestmark)
    controller = _serve(inbox, port, ssl_context=server_context, auth_require_tls=False)
    try:
        yield inbox, port
    finally:
        controller.stop()


def _delivery(db: Database, url: str, context: ssl.SSLContext | None) -> Delivery:
    return Delivery(db, CONFIG, SMTPMailer(SMTPServer.from_url(url, timeout=5), context), None)


async def _statuses(db: Database) -> list[tuple[str, int]]:
    async with db.read() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(row.status, row.attempts) for row in rows]


async def test_smtp_url_sends_over_starttls_with_login(
    db, clock, location, starttls_server, trusting
):
    inbox, port = starttls_server
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")

    url = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}"
    outcome = await _delivery(db, url, trusting).run(clock.now())

    assert outcome.sent == 1
    [(mail, encrypted, login)] = inbox.received
    assert encrypted is True
    assert login == USER
    assert booked.appointment.code in mail.get_body(("plain",)).get_content()
    assert await _statuses(db) == [("sent", 1)]


async def test_smtps_url_sends_over_implicit_tls_with_login(
    db, clock, location, implicit_tls_server, trusting
):
    inbox, port = implicit_tls_server
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00")

    url = f"smtps://{USER}:{PASSWORD}@127.0.0.1:{port}"
    outcome = await _delivery(db, url, trusting).run(clock.now())

    assert outcome.sent == 1
    [(_, encrypted, login)] = inbox.received
    assert (encrypted, login) == (True, USER)


async def test_an_untrusted_certificate_sends_nothing_and_the_message_waits(
    db, clock, location, implicit_tls_server
):
    inbox, port = implicit_tls_server
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00")

    url = f"smtps://{USER}:{PASSWORD}@127.0.0.1:{port}"
    outcome = await _delivery(db, url, ssl.create_default_context()).run(clock.now())

    assert (outcome.sent, outcome.failed) == (0, 0)
    assert inbox.received == []
    [(status, attempts)] = await _statuses(db)
    assert status != "failed"
    assert attempts == 1


async def test_a_refused_login_sends_nothing_and_the_message_waits(
    db, clock, location, starttls_server, trusting
):
    inbox, port = starttls_server
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00")

    url = f"smtp://{USER}:falsch@127.0.0.1:{port}"
    outcome = await _delivery(db, url, trusting).run(clock.now())

    assert (outcome.sent, outcome.failed) == (0, 0)
    assert inbox.received == []
    [(status, _)] = await _statuses(db)
    assert status != "failed"
