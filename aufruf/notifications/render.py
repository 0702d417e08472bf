"""E-mails rendered at send time from the outbox row and the appointment as it is now: the
manage link is derived then (never stored), texts come in the booking's language.

Templates: `templates/notifications/mail.txt` and `mail.html` (one per format; the kind
picks the paragraphs). Strings are translated through the catalogs in aufruf/web/locale,
which have the e-mail strings in German, English, Turkish, Russian, Ukrainian and Arabic.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from zoneinfo import ZoneInfo

import qrcode
from babel.dates import format_date, format_time
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.booking import service as booking
from aufruf.booking.service import PENDING_HOLD_MINUTES, appointment_token, services_of
from aufruf.db import pick_text
from aufruf.notifications.calendar import CalendarEntry, appointment_uid, calendar_file
from aufruf.notifications.model import OutboxMessage
from aufruf.offices import service as offices
from aufruf.web.i18n import gettext, install_i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"
RTL = frozenset({"ar"})
QR_CID = "qr-code"

# which kinds carry a calendar file, and with which METHOD
CALENDAR_METHOD = {
    "booking_confirmed": "REQUEST",
    "booking_rescheduled": "REQUEST",
    "booking_cancelled": "CANCEL",
    "cancelled_by_office": "CANCEL",
}
# kinds that no longer apply once the appointment is over or cancelled
STALE_WHEN = {
    "booking_pending": lambda a: a.status != "pending",
    "booking_confirmed": lambda a: a.status in ("cancelled", "expired"),
    "booking_rescheduled": lambda a: a.status in ("cancelled", "expired"),
    "booking_reminder": lambda a: a.status != "confirmed",
}


@dataclass(frozen=True)
class MailConfig:
    mail_from: str
    public_url: str
    secret: str

    @property
    def domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "aufruf"


@dataclass
class Email:
    to: str | None
    to_name: str
    subject: str
    text: str
    html: str
    language: str
    qr_png: bytes | None = None
    calendar: bytes | None = None
    calendar_method: str | None = None
    code: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class NotApplicable(Exception):
    """The message has nothing to say any more (the appointment is gone or changed state)."""


def _environment(text: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False if text else select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    install_i18n(env)
    return env


_TEXT = _environment(text=True)
_HTML = _environment(text=False)


def _subject(kind: str, lang: str, date: str, time: str) -> str:
    def _(message: str) -> str:
        return gettext(lang, message)

    subjects = {
        "booking_confirmed": _("Your appointment on %(date)s at %(time)s"),
        "booking_pending": _("Please confirm your appointment"),
        "booking_cancelled": _("Your appointment has been cancelled"),
        "cancelled_by_office": _("The office has cancelled your appointment"),
        "booking_rescheduled": _("Your appointment has been moved to %(date)s at %(time)s"),
        "booking_reminder": _("Reminder: your appointment on %(date)s at %(time)s"),
    }
    return subjects[kind] % {"date": date, "time": time}


async def render_message(
    session: AsyncSession, message: OutboxMessage, config: MailConfig, now: datetime
) -> Email:
    """The e-mail of an outbox row as of now. Raises NotApplicable when there is nothing to
    send any more."""
    if message.appointment_id is None:
        raise NotApplicable("the appointment no longer exists")
    appointment = await booking.get_appointment(session, message.appointment_id)
    if appointment is None:
        raise NotApplicable("the appointment no longer exists")
    stale = STALE_WHEN.get(message.kind)
    if stale is not None and stale(appointment):
        raise NotApplicable(f"no longer applies: the appointment is {appointment.status}")
    if message.kind not in (*CALENDAR_METHOD, "booking_pending", "booking_reminder"):
        raise NotApplicable(f"unknown kind of message {message.kind!r}")
    contact = await booking.contact_of(session, appointment.id)
    location = await offices.get_location(session, appointment.location_id)
    lang = message.language or appointment.language or "de"
    zone = ZoneInfo(location.timezone if location else "Europe/Berlin")
    start = appointment.start_at.astimezone(zone)
    end = appointment.end_at.astimezone(zone)
    info = {s.id: s for s in await offices.list_services(session, lang)}
    need = await services_of(session, appointment.id)
    services = [
        ((f"{q}× " if q > 1 else "") + (info[s].name if s in info else s))
        for s, q in sorted(need.items())
    ]
    bring = [info[s].bring for s in sorted(need) if s in info and info[s].bring]
    token = appointment_token(config.secret, appointment)
    public = config.public_url.rstrip("/")
    place_name = pick_text(location.name, lang) if location else ""
    address = location.address if location else ""
    date_text = format_date(start.date(), format="full", locale=lang)
    time_text = format_time(start.time(), format="short", locale=lang)
    context = {
        "lang": lang,
        "dir": "rtl" if lang in RTL else "ltr",
        "kind": message.kind,
        "name": contact.name if contact else "",
        "code": appointment.code,
        "date": date_text,
        "time": time_text,
        "end_time": format_time(end.time(), format="short", locale=lang),
        "place": place_name,
        "address": address,
        "services": services,
        "bring": bring,
        "manage_url": f"{public}/a/{token}",
        "confirm_url": f"{public}/a/{token}/confirm",
        "book_url": f"{public}/",
        "reason": (message.details or {}).get("reason") or appointment.cancel_reason or "",
        "hold_minutes": PENDING_HOLD_MINUTES,
        "qr_cid": QR_CID,
        "with_qr": message.kind in ("booking_confirmed", "booking_rescheduled", "booking_reminder"),
    }
    email = Email(
        to=contact.email if contact else None,
        to_name=contact.name if contact else "",
        subject=_subject(message.kind, lang, date_text, time_text),
        text=_TEXT.get_template("notifications/mail.txt").render(context),
        html=_HTML.get_template("notifications/mail.html").render(context),
        language=lang,
        code=appointment.code,
    )
    if context["with_qr"]:
        email.qr_png = qr_png(appointment.code)
    method = CALENDAR_METHOD.get(message.kind)
    if method is not None:
        entry = CalendarEntry(
            uid=appointment_uid(appointment.id, config.domain),
            sequence=appointment.sequence,
            start=appointment.start_at,
            end=appointment.end_at,
            timezone=str(zone),
            summary=f"{place_name}: {', '.join(services)}",
            location=f"{place_name}, {address}" if address else place_name,
            description=f"{gettext(lang, 'Booking code')}: {appointment.code}",
            stamp=now,
            cancelled=method == "CANCEL",
            organizer=config.mail_from,
            attendee=email.to,
            attendee_name=email.to_name or None,
        )
        email.calendar = calendar_file(entry, method)
        email.calendar_method = method
    return email


def mime_message(email: Email, mail_from: str, message_id: str, now: datetime) -> EmailMessage:
    """multipart/mixed: [alternative: text, related: (html, QR png)], the .ics with its METHOD."""
    if email.to is None:
        raise ValueError("an e-mail without an address cannot be sent")
    mime = EmailMessage()
    mime["Subject"] = email.subject
    mime["From"] = mail_from
    mime["To"] = formataddr((email.to_name, email.to)) if email.to_name else email.to
    mime["Message-ID"] = message_id
    mime["Date"] = format_datetime(now)
    mime["Content-Language"] = email.language
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(email.text)
    mime.add_alternative(email.html, subtype="html")
    if email.qr_png is not None:
        html_part = mime.get_payload()[1]
        html_part.add_related(
            email.qr_png,
            maintype="image",
            subtype="png",
            cid=f"<{QR_CID}>",
            filename=f"{email.code}.png",
            disposition="inline",
        )
    if email.calendar is not None:
        mime.add_attachment(
            email.calendar,
            maintype="text",
            subtype="calendar",
            params={"method": email.calendar_method, "charset": "utf-8"},
            filename=f"termin-{email.code}.ics",
        )
    return mime


def qr_png(text: str, scale: int = 6, border: int = 4) -> bytes:
    """A QR code of `text` as a black-and-white PNG (8-bit grey), without an imaging library."""
    qr = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    size = len(matrix) * scale
    raw = bytearray()
    for row in matrix:
        line = b"\x00" + b"".join((b"\x00" if dark else b"\xff") * scale for dark in row)
        raw.extend(line * scale)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )
