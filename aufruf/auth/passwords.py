"""argon2id password hashes. Hashing takes tens of milliseconds on purpose, so it runs in a
thread and never blocks the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

hasher = PasswordHasher()  # argon2-cffi's RFC 9106 low-memory profile; tests swap in a cheap one

# verified against when the account does not exist, so both cases take the same time
_DUMMY_HASH = hasher.hash("no account has this password")


def hash_password(password: str) -> str:
    return hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash (unknown account) always False, as slowly."""
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return hasher.check_needs_rehash(password_hash)
