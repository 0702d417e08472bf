"""Types of the objects every handler may ask for by name (provided in aufruf.app).

They are the app's own objects, so Litestar is told not to validate them."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency
from litestar.params import SkipValidation

from aufruf.auth.logic import Actor
from aufruf.booking.service import AvailabilityCache
from aufruf.clock import Clock
from aufruf.db import Database
from aufruf.queue.events import EventHub
from aufruf.queue.line import LineCache
from aufruf.ratelimit import RateLimiter
from aufruf.settings import Settings

DatabaseDep: TypeAlias = NamedDependency[SkipValidation[Database]]
ClockDep: TypeAlias = NamedDependency[SkipValidation[Clock]]
SettingsDep: TypeAlias = NamedDependency[SkipValidation[Settings]]
CacheDep: TypeAlias = NamedDependency[SkipValidation[AvailabilityCache]]
LimiterDep: TypeAlias = NamedDependency[SkipValidation[RateLimiter]]

ActorDep: TypeAlias = NamedDependency[SkipValidation[Actor]]
EventsDep: TypeAlias = NamedDependency[SkipValidation[EventHub]]
LinesDep: TypeAlias = NamedDependency[SkipValidation[LineCache]]
