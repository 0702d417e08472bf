"""Every table, imported once so the metadata is complete (Alembic, tests)."""

from aufruf.auth import model as auth_model
from aufruf.booking import model as booking_model
from aufruf.db import Base
from aufruf.notifications import model as notifications_model
from aufruf.offices import model as offices_model
from aufruf.printer import model as printer_model
from aufruf.queue import model as queue_model

__all__ = [
    "Base",
    "auth_model",
    "booking_model",
    "notifications_model",
    "offices_model",
    "printer_model",
    "queue_model",
]
