"""Who may do what, and the other decisions of signing in: pure functions, no I/O, no clock.

Every caller is an `Actor`: a signed-in staff user (kind "user") or a device/API token
(kind "token"). A route names the action it performs and the location (and, where it has
one, the counter, kiosk or printer) it acts on; `Actor.require` answers 403 otherwise.

| action            | admin | supervisor | clerk | kiosk | display | printer |
|-------------------|:-----:|:----------:|:-----:|:-----:|:-------:|:-------:|
| `counter`         |   ✓   |     ✓      |   ✓   |       |         |         |
| `queue.read`      |   ✓   |     ✓      |   ✓   |       |         |         |
| `booking.staff`   |   ✓   |     ✓      |   ✓   |       |         |         |
| `ticket.draw`     |   ✓   |     ✓      |   ✓   |   ✓   |         |         |
| `ticket.manage`   |   ✓   |     ✓      |  ✓ ¹  |       |         |         |
| `display.read`    |   ✓   |     ✓      |   ✓   |       |    ✓    |         |
| `printer.connect` |   ✓   |     ✓      |       |       |         |    ✓    |
| `location.manage` |   ✓   |     ✓      |       |       |         |         |
| `admin`           |   ✓   |            |       |       |         |         |

- `counter`: call-next, recall, start, done, no-show, transfer, pause, resume, open, close,
  sit, leave; the counter's websocket `/ws/counters/{C}`
- `queue.read`: a location's queue, counters and events
- `booking.staff`: book for a citizen (also without an e-mail address)
- `ticket.draw`: draw a ticket, check in with a booking code (kiosk)
- `ticket.manage`: a ticket's priority, cancel, reactivate, reprint
- `display.read`: the read-only live views of a location (wall display, counter views)
- `printer.connect`: the printer websocket `/ws/printer`, for the token's own printer
- `location.manage`: devices, outbox and settings of a location (`/admin`)
- `admin`: staff accounts, tokens, the office directory

Every action is bounded by the actor's locations: a supervisor, clerk or device acts only at
the locations it is bound to; an admin without locations acts everywhere. A token bound to a
counter, kiosk or printer acts only for that one.

¹ CONTRACT.md lists priority/reactivate/cancel as "supervisor or clerk"; the issue names them
among the supervisor's rights. A clerk may, as the contract says; remove "ticket.manage" from
the clerk's set below to reserve them for supervisors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from aufruf.errors import Forbidden

ACTIONS = {
    "counter": "act at a counter",
    "queue.read": "read the queue",
    "booking.staff": "book appointments for citizens",
    "ticket.draw": "draw tickets or check in",
    "ticket.manage": "change a ticket's priority, cancel or reactivate it",
    "display.read": "watch the live views",
    "printer.connect": "connect as a printer",
    "location.manage": "manage a location",
    "admin": "administer aufruf",
}

_STAFF = frozenset(
    {"counter", "queue.read", "booking.staff", "ticket.draw", "ticket.manage", "display.read"}
)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(ACTIONS),
    "supervisor": frozenset(ACTIONS) - {"admin"},
    "clerk": _STAFF,
    "kiosk": frozenset({"ticket.draw"}),
    "display": frozenset({"display.read"}),
    "printer": frozenset({"printer.connect"}),
}

PASSWORD_MIN_LENGTH = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Actor:
    """Who is calling. `locations` None means every location (an unbound admin)."""

    kind: Literal["user", "token"]
    id: int
    name: str
    role: str
    locations: frozenset[str] | None
    counter: str | None = None
    kiosk: str | None = None
    printer: str | None = None
    csrf_ok: bool = True  # a session request carried its CSRF token (always True for tokens)

    def may(self, action: str) -> bool:
        return action in ROLE_ACTIONS.get(self.role, frozenset())

    def at(self, location: str) -> bool:
        return self.locations is None or location in self.locations

    def denial(
        self,
        action: str,
        *,
        location: str | None = None,
        counter: str | None = None,
        kiosk: str | None = None,
        printer: str | None = None,
    ) -> str | None:
        """Why this actor may not do `action` there, as a sentence; None when it may."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if not self.may(action):
            return f"The role {self.role} may not {ACTIONS[action]}."
        if location is not None and not self.at(location):
            return f"This {_what(self)} is not allowed at location {location}."
        for bound, asked, noun in (
            (self.counter, counter, "counter"),
            (self.kiosk, kiosk, "kiosk"),
            (self.printer, printer, "printer"),
        ):
            if bound is not None and asked is not None and bound != asked:
                return f"This {_what(self)} belongs to {noun} {bound}, not to {asked}."
        return None

    def require(
        self,
        action: str,
        *,
        location: str | None = None,
        counter: str | None = None,
        kiosk: str | None = None,
        printer: str | None = None,
    ) -> None:
        """Raise Forbidden (403) unless this actor may do `action` at `location` (and, when
        given, for that counter, kiosk or printer)."""
        problem = self.denial(
            action, location=location, counter=counter, kiosk=kiosk, printer=printer
        )
        if problem:
            raise Forbidden(problem, reason="forbidden")

    def require_role(self, *roles: str, location: str | None = None) -> None:
        """Raise Forbidden unless the actor has one of `roles` (and may act at `location`)."""
        if self.role not in roles:
            raise Forbidden(
                f"This needs the role {' or '.join(roles)}; yours is {self.role}.",
                reason="forbidden",
            )
        if location is not None and not self.at(location):
            raise Forbidden(
                f"This {_what(self)} is not allowed at location {location}.", reason="forbidden"
            )


def _what(actor: Actor) -> str:
    return "account" if actor.kind == "user" else "token"


# --- passwords and names ---------------------------------------------------------------------


def password_problem(password: str) -> str | None:
    """Why `password` cannot be used, or None."""
    if not password:
        return "The password is empty."
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"The password must have at least {PASSWORD_MIN_LENGTH} characters."
    if len(password) > 1000:
        return "The password is longer than 1000 characters."
    return None


def normal_username(username: str) -> str:
    return username.strip().lower()


def username_problem(username: str) -> str | None:
    if not USERNAME.match(username):
        return (
            "A user name has 1 to 64 characters: lower-case letters, digits and . _ @ -, "
            "starting with a letter or digit."
        )
    return None


# --- secrets ---------------------------------------------------------------------------------


def digest(secret: str) -> str:
    """The SHA-256 (hex) under which a random token or session cookie is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret_key: str, bound_to: str) -> str:
    """The CSRF token of a browser: an HMAC of its session cookie (or its login cookie) under
    the secret key, so it needs no storage and changes with every new session."""
    mac = hmac.new(secret_key.encode(), b"csrf:" + bound_to.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_matches(secret_key: str, bound_to: str, given: str | None) -> bool:
    if not given or not bound_to:
        return False
    return hmac.compare_digest(csrf_token(secret_key, bound_to), given)


def safe_next(target: str | None, default: str) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\r\n\\") or ":" in target.split("?", 1)[0]:
        return default
    return target


# --- throttling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Failures allowed within `window` before sign-in is refused until the window ends.

    `pair`: one account from one address. `address`: one address across accounts.
    `account`: one account from addresses where it has never signed in successfully, so a
    stranger hammering an account from many places cannot lock its owner out of their desk.
    """

    pair: int = 5
    address: int = 20
    account: int = 50
    window: timedelta = timedelta(minutes=15)


LIMITS = Limits()


@dataclass(frozen=True)
class Window:
    start: datetime
    failures: int


def throttle_wait(
    *,
    pair: Window | None,
    address: Window | None,
    account: Window | None,
    known_address: bool,
    now: datetime,
    limits: Limits = LIMITS,
) -> int:
    """Seconds before this account may try to sign in from this address again; 0 = now."""
    checks = [(pair, limits.pair), (address, limits.address)]
    if not known_address:
        checks.append((account, limits.account))
    wait = 0.0
    for window, limit in checks:
        if window is not None and window.failures >= limit:
            wait = max(wait, (window.start + limits.window - now).total_seconds())
    return max(0, math.ceil(wait))
