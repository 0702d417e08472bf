"""Staff accounts, their locations and sessions; device and API tokens; login throttling.

Secrets are never stored: a session row is keyed by the SHA-256 of its cookie, a token row
keeps the SHA-256 of the token and a short prefix for recognition, a password its argon2 hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aufruf.db import Base, UTCDateTime

USER_ROLES = ("clerk", "supervisor", "admin")
TOKEN_ROLES = ("kiosk", "display", "printer", "clerk", "admin")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class StaffUser(Base):
    """A person who signs in on the login page. Without location rows an admin may act at
    every location; clerks and supervisors always have at least one."""

    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint(_one_of("role", USER_ROLES), name="role_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StaffUserLocation(Base):
    __tablename__ = "staff_user_location"

    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), primary_key=True)


class StaffSession(Base):
    """A signed-in browser. Valid while `expires_at` lies ahead; each use moves it on
    (idle timeout), but never past `created_at` plus the absolute lifetime."""

    __tablename__ = "staff_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiToken(Base):
    """A bearer token for a device (kiosk, display, printer) or an integration."""

    __tablename__ = "api_token"
    __table_args__ = (CheckConstraint(_one_of("role", TOKEN_ROLES), name="role_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    prefix: Mapped[str] = mapped_column(String(8))  # the token's first characters, for lists
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    location_id: Mapped[str | None] = mapped_column(
        ForeignKey("location.id"), nullable=True, index=True
    )
    counter_id: Mapped[str | None] = mapped_column(ForeignKey("counter.id"), nullable=True)
    kiosk_id: Mapped[str | None] = mapped_column(ForeignKey("kiosk.id"), nullable=True)
    printer_id: Mapped[str | None] = mapped_column(ForeignKey("printer.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginFailures(Base):
    """Failed sign-ins counted per key ("pair:<user>|<address>", "address:<a>", "account:<u>")
    in a window that starts with the first failure."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    failures: Mapped[int] = mapped_column(Integer)


class KnownAddress(Base):
    """An address from which an account last signed in successfully: it keeps working while
    strangers elsewhere fail against the same account."""

    __tablename__ = "staff_known_address"

    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_success_at: Mapped[datetime] = mapped_column(UTCDateTime)
