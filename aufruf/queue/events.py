"""Queue events as messages, and their publication on the location's channel after commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from litestar.channels import ChannelsPlugin

from aufruf.queue.model import QueueEvent


def location_channel(location_id: str) -> str:
    return f"location:{location_id}"


def event_message(
    event: QueueEvent, counter_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The event as clients see it: ticket by id and number, never by token."""
    counter = None
    if event.counter_id is not None:
        counter = (event.data or {}).get("counter") or (counter_names or {}).get(
            event.counter_id, event.counter_id
        )
    return {
        "type": event.kind,
        "seq": event.seq,
        "at": event.at.isoformat(),
        "ticket": event.ticket_id,
        "number": event.number,
        "services": list(event.services or []),
        "counter": counter,
        "data": {k: v for k, v in (event.data or {}).items() if k != "counter"},
    }


class EventHub:
    """Publishes committed events on their location's channel (in memory until the live-view
    work adds Redis and PostgreSQL backends)."""

    def __init__(self, channels: ChannelsPlugin | None) -> None:
        self.channels = channels

    async def publish(self, events: Iterable[QueueEvent]) -> None:
        if self.channels is None:
            return
        for event in events:
            self.channels.publish(
                event_message(event), channels=[location_channel(event.location_id)]
            )
