"""Demo staff accounts and device tokens, made once when `aufruf demo` loads the demo offices.

Tokens and passwords are stored only as hashes, so the demo keeps what it printed in a file
beside the database (readable by its owner only) and prints it again at every start."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path

from aufruf.auth.service import create_token, create_user
from aufruf.db import Database

LOCATION = "buergeramt-mitte"


def credentials_file(database_file: Path) -> Path:
    return database_file.with_name(database_file.name + ".demo-logins")


async def make_demo_logins(db: Database, now: datetime) -> list[str]:
    """Create a clerk, a supervisor and an admin, and the devices of the central office."""
    lines = []
    async with db.write() as session:
        for username, role in (
            ("clerk", "clerk"),
            ("supervisor", "supervisor"),
            ("admin", "admin"),
        ):
            password = secrets.token_urlsafe(9)
            locations = [] if role == "admin" else [LOCATION]
            await create_user(session, now, username, password, role, locations)
            lines.append(f"staff login  {username:<10} password {password}  ({role})")
        for role in ("kiosk", "display", "printer"):
            new = await create_token(
                session, now, role=role, location=LOCATION, name=f"demo {role}"
            )
            lines.append(f"{role} token  {LOCATION}: {new.token}")
    return lines


def keep_demo_logins(target: Path, lines: list[str]) -> None:
    target.touch(mode=0o600)
    target.write_text("\n".join(lines) + "\n")


def demo_logins(target: Path) -> list[str]:
    return target.read_text().splitlines() if target.exists() else []
