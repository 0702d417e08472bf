"""Sending e-mail over SMTP with aiosmtplib, and telling a temporary failure (try again later)
from a permanent one (the server said no with a 5xx answer).

AUFRUF_SMTP_URL: `smtp://[user:password@]host[:port]` (port 25 by default; STARTTLS when the
server offers it) or `smtps://…` (implicit TLS, port 465 by default). Login when a user is given.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

SMTP_TIMEOUT_SECONDS = 30.0


class TemporaryFailure(Exception):
    """The message may go through later: no connection, a timeout, a 4xx answer."""


class PermanentFailure(Exception):
    """The server refused the message for good (a 5xx answer); the text says why."""


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Hand the message to the mail system, or raise TemporaryFailure/PermanentFailure."""
        ...


@dataclass(frozen=True)
class SMTPServer:
    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None
    timeout: float = SMTP_TIMEOUT_SECONDS

    @classmethod
    def from_url(cls, url: str, timeout: float = SMTP_TIMEOUT_SECONDS) -> SMTPServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("AUFRUF_SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("AUFRUF_SMTP_URL needs a host, e.g. smtp://mail.example.org:587")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )


class SMTPMailer:
    def __init__(self, server: SMTPServer, tls_context: ssl.SSLContext | None = None) -> None:
        self.server = server
        self.tls_context = tls_context

    async def send(self, message: EmailMessage) -> None:
        server = self.server
        try:
            await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                # None: STARTTLS when the server offers it; never on top of implicit TLS
                start_tls=False if server.implicit_tls else None,
                tls_context=self.tls_context,
                timeout=server.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _by_code(min(r.code for r in exc.recipients), _reason(exc.recipients[0])) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # the configuration's fault, not the message's: keep it until someone fixes it
            raise TemporaryFailure(f"login refused: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, _reason(exc)) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


def _reason(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


def _by_code(code: int, reason: str) -> Exception:
    return PermanentFailure(reason) if 500 <= code < 600 else TemporaryFailure(reason)
