"""Domain errors. Domain code raises these; `aufruf.app` alone turns them into HTTP answers
of the shape {"status_code", "detail", "reason"?, "extra"?} (CONTRACT.md)."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 409
    reason: str | None = None

    def __init__(
        self, detail: str, *, reason: str | None = None, extra: list[dict] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason is not None:
            self.reason = reason
        self.extra = extra


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    """A request that is well-formed but not possible now (409 with a stable reason)."""

    status_code = 409


class InvalidInput(DomainError):
    """Bad input: 400 naming each offending field in `extra[].key`."""

    status_code = 400

    def __init__(self, detail: str, *, field: str, reason: str | None = None) -> None:
        super().__init__(detail, reason=reason, extra=[{"key": field, "message": detail}])


class RateLimited(DomainError):
    status_code = 429
    reason = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unauthorized(DomainError):
    """No credentials, or ones that are unknown, revoked or expired (401)."""

    status_code = 401
    reason = "unauthorized"


class Forbidden(DomainError):
    """Valid credentials without the right role, location or CSRF token (403)."""

    status_code = 403
    reason = "forbidden"
