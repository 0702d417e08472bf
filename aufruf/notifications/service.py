"""Queueing messages in the outbox, in the transaction of the change that causes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.notifications.model import OutboxMessage


def queue_message(
    session: AsyncSession,
    kind: str,
    appointment_id: int,
    language: str,
    now: datetime,
    details: dict[str, str] | None = None,
) -> OutboxMessage:
    """Add a message to the outbox; what to send is decided, and rendered, at send time."""
    message = OutboxMessage(
        kind=kind,
        appointment_id=appointment_id,
        language=language,
        details=details or {},
        status="queued",
        created_at=now,
        due_at=now,
        attempts=0,
    )
    session.add(message)
    return message
