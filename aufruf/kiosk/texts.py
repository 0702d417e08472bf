"""What the kiosk says to visitors, in their language: when tickets are given out again, why
a check-in did not work, how long the wait is."""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_date, format_time

from aufruf.errors import Conflict, NotFound
from aufruf.web.i18n import gettext, ngettext


def opens_sentence(lang: str, opens: datetime | None, now: datetime) -> str:
    if opens is None:
        return gettext(lang, "No tickets are given out at the moment.")
    values = {"time": format_time(opens, format="short", locale=lang)}
    if opens.date() == now.astimezone(opens.tzinfo).date():
        return gettext(lang, "Tickets are given out again today from %(time)s.") % values
    values["day"] = format_date(opens.date(), format="full", locale=lang)
    return gettext(lang, "Tickets are given out again on %(day)s from %(time)s.") % values


def check_in_problem(lang: str, exc: NotFound | Conflict, early_minutes: int) -> tuple[str, str]:
    """The heading and the sentence a visitor reads when check-in fails."""
    if isinstance(exc, NotFound):
        return gettext(lang, "Code not found"), gettext(
            lang,
            "We cannot find an appointment with this code. Please check the code in your "
            "confirmation and try again.",
        )
    sentences = {
        "too_early": (
            gettext(lang, "You are early"),
            ngettext(
                lang,
                "You can check in from %(num)s minute before your appointment. "
                "Please come back a little later.",
                "You can check in from %(num)s minutes before your appointment. "
                "Please come back a little later.",
                early_minutes,
            )
            % {"num": early_minutes},
        ),
        "too_late": (
            gettext(lang, "Your appointment time has passed"),
            gettext(
                lang,
                "We are sorry: you can no longer check in for this appointment. "
                "You can draw a ticket instead and wait for your turn.",
            ),
        ),
        "wrong_day": (
            gettext(lang, "Your appointment is on another day"),
            gettext(lang, "Please look at the date in your confirmation."),
        ),
        "wrong_location": (
            gettext(lang, "Your appointment is at another office"),
            gettext(lang, "Please go to the office named in your confirmation."),
        ),
        "cancelled": (
            gettext(lang, "This appointment was cancelled"),
            gettext(lang, "You can draw a ticket or book a new appointment."),
        ),
        "already_checked_in": (
            gettext(lang, "You have already checked in"),
            gettext(
                lang,
                "Your number has been given out already. Please wait until it is called.",
            ),
        ),
    }
    fallback = (gettext(lang, "Check-in is not possible"), gettext(lang, "Please ask the staff."))
    return sentences.get(exc.reason or "", fallback)


def wait_sentences(lang: str, ahead: int | None, minutes: int | None) -> list[str]:
    said = []
    if ahead == 0:
        said.append(gettext(lang, "Nobody is ahead of you."))
    elif ahead is not None:
        said.append(
            ngettext(
                lang, "%(num)s person is ahead of you.", "%(num)s people are ahead of you.", ahead
            )
            % {"num": ahead}
        )
    if minutes is not None and ahead:
        said.append(
            ngettext(
                lang,
                "About %(num)s minute of waiting.",
                "About %(num)s minutes of waiting.",
                minutes,
            )
            % {"num": minutes}
        )
    elif ahead:
        said.append(gettext(lang, "The waiting time cannot be estimated yet."))
    return said
