"""Proof of work against bots (ALTCHA), asked of public bookings when AUFRUF_POW_DIFFICULTY
is above 0. No third party and no cookie: the challenge is signed with a key derived from
AUFRUF_SECRET_KEY and carries its own expiry; the browser's widget (static/altcha.min.js)
solves it while the citizen fills in the form.

A proof is accepted once: its challenge's signature is remembered in the database until the
challenge expires. A booking without a valid proof is still taken, as `pending`, and
confirmed through the e-mail link (CONTRACT.md), so the site works without JavaScript.

AUFRUF_POW_DIFFICULTY is the most hashes a browser computes: the challenge asks for one
counter drawn at random up to it (headless desktop Chromium solves 200 000 in about a second).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import altcha
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aufruf.booking.model import UsedProof
from aufruf.db import Database

ALGORITHM = "SHA-256"
LIFETIME = timedelta(minutes=30)  # time to fill in the form
PROOF_MAX = 4000


@dataclass(frozen=True)
class ProofOfWork:
    difficulty: int
    key: bytes  # signs the challenges

    @classmethod
    def from_settings(cls, settings) -> ProofOfWork:
        key = hmac.new(settings.secret_key.encode(), b"aufruf proof of work", hashlib.sha256)
        return cls(settings.pow_difficulty, key.digest())

    @property
    def asked(self) -> bool:
        return self.difficulty > 0

    def challenge(self, now: datetime) -> dict:
        """A fresh signed challenge, valid for LIFETIME from now (the app's clock)."""
        issued = altcha.create_challenge(
            ALGORITHM,
            1,
            counter=secrets.randbelow(self.difficulty) + 1,
            data={"expires": int((now + LIFETIME).timestamp())},
            hmac_secret=self.key,
        )
        return issued.to_dict()

    def challenge_json(self, now: datetime) -> str:
        return json.dumps(self.challenge(now), separators=(",", ":"))

    def solved(self, proof: str, now: datetime) -> tuple[str, datetime] | None:
        """(the challenge's signature, its expiry) when `proof` solves a challenge of ours
        that has not expired; None for anything else, however malformed."""
        try:
            if not altcha.verify_solution(proof, self.key).verified:
                return None
            challenge = altcha.Payload.from_base64(proof).challenge
            expires = (challenge.parameters.data or {}).get("expires")
        except Exception:  # a forged or damaged proof is simply not a proof
            return None
        if not isinstance(expires, int) or expires <= now.timestamp():
            return None
        return challenge.signature, datetime.fromtimestamp(expires, now.tzinfo)


async def accept_proof(db: Database, pow: ProofOfWork, proof: str | None, now: datetime) -> bool:
    """Whether `proof` is a valid proof of work never accepted before; it is then
    remembered until its challenge expires."""
    if not pow.asked or not proof or len(proof) > PROOF_MAX:
        return False
    solved = pow.solved(proof, now)
    if solved is None:
        return False
    key, expires_at = solved
    async with db.write() as session:
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(UsedProof).values(key=key[:64], expires_at=expires_at)
        stmt = stmt.on_conflict_do_nothing(index_elements=[UsedProof.key])
        fresh = (await session.execute(stmt.returning(UsedProof.key))).first() is not None
        await session.execute(delete(UsedProof).where(UsedProof.expires_at <= now))
    return fresh
