"""Secret links: tokens derived from a row's id and a random nonce under the secret key.

The database alone never reveals a token (ARCHITECTURE.md rule 3), and an e-mail rendered
at send time can still carry it. A token is 32 bytes, base64url: the row id (8 bytes) and
192 bits of HMAC-SHA256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

_ID_BYTES = 8
_MAC_BYTES = 24


def new_nonce() -> str:
    return secrets.token_hex(16)


def _mac(secret: str, kind: str, row_id: int, nonce: str) -> bytes:
    message = f"{kind}:{row_id}:{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()[:_MAC_BYTES]


def derive_token(secret: str, kind: str, row_id: int, nonce: str) -> str:
    """The token of row `row_id` of `kind` ("appointment", "ticket")."""
    raw = row_id.to_bytes(_ID_BYTES, "big") + _mac(secret, kind, row_id, nonce)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_row_id(token: str) -> int | None:
    """The row id a well-formed token names, or None; check it with `token_matches`."""
    if len(token) != 43:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _ID_BYTES + _MAC_BYTES:
        return None
    return int.from_bytes(raw[:_ID_BYTES], "big")


def token_matches(secret: str, kind: str, row_id: int, nonce: str, token: str) -> bool:
    return hmac.compare_digest(derive_token(secret, kind, row_id, nonce), token)
