"""`aufruf user create` and `aufruf token create|list|revoke`, run as a person runs them: the
installed command in a process of its own, on a SQLite file migrated by `aufruf db upgrade`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from aufruf.auth.model import ApiToken, StaffUser, StaffUserLocation
from aufruf.db import Database
from tests.auth.conftest import a_directory
from tests.conftest import SECRET

COMMAND = Path(sys.executable).with_name("aufruf")


def aufruf(db_file: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AUFRUF_DATABASE_URL": f"sqlite:///{db_file}",
        "AUFRUF_SECRET_KEY": SECRET,
    }
    command = [str(COMMAND)] if COMMAND.exists() else [sys.executable, "-m", "aufruf.cli"]
    return subprocess.run(
        [*command, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60
    )


async def _prepare(db_file: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{db_file}")
    try:
        await a_directory(db)
    finally:
        await db.dispose()


async def _rows(db_file: Path, model: type) -> list:
    db = Database(f"sqlite+aiosqlite:///{db_file}")
    try:
        async with db.read() as session:
            return list(await session.scalars(select(model)))
    finally:
        await db.dispose()


def rows(db_file: Path, model: type) -> list:
    return asyncio.run(_rows(db_file, model))


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "aufruf.db"
    upgraded = aufruf(path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    asyncio.run(_prepare(path))
    return path


def test_token_create_prints_the_new_token_as_its_last_line(db_file):
    made = aufruf(db_file, "token", "create", "--role", "kiosk", "--location", "amt")

    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert len(token) >= 43
    (row,) = rows(db_file, ApiToken)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (row.role, row.location_id, row.kiosk_id) == ("kiosk", "amt", "amt-kiosk")


def test_tokens_are_listed_by_prefix_and_revoked_by_id(db_file):
    made = aufruf(
        db_file, "token", "create", "--role", "display", "--location", "amt", "--name", "Wartesaal"
    )
    token = made.stdout.strip().splitlines()[-1]

    listed = aufruf(db_file, "token", "list")
    revoked = aufruf(db_file, "token", "revoke", "1")
    listed_after = aufruf(db_file, "token", "list")

    assert token[:6] in listed.stdout and "Wartesaal" in listed.stdout
    assert token not in listed.stdout
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert rows(db_file, ApiToken)[0].revoked_at is not None
    assert listed_after.stdout.splitlines()[1].rstrip().endswith("UTC")  # the revoked column


def test_revoking_an_unknown_token_says_so(db_file):
    revoked = aufruf(db_file, "token", "revoke", "99")

    assert revoked.returncode != 0
    assert "There is no token with the id 99." in revoked.stderr


def test_token_create_refuses_an_unknown_location(db_file):
    made = aufruf(db_file, "token", "create", "--role", "kiosk", "--location", "nowhere")

    assert made.returncode != 0
    assert "There is no location with the id 'nowhere'." in made.stderr
    assert rows(db_file, ApiToken) == []


def test_user_create_reads_the_password_from_stdin(db_file):
    made = aufruf(
        db_file,
        "user",
        "create",
        "Anna",
        "--role",
        "supervisor",
        "--location",
        "amt",
        "--location",
        "other",
        stdin="a long enough password\n",
    )

    assert made.returncode == 0, made.stderr
    (user,) = rows(db_file, StaffUser)
    assert (user.username, user.role) == ("anna", "supervisor")
    assert PasswordHasher().verify(user.password_hash, "a long enough password")
    assert sorted(r.location_id for r in rows(db_file, StaffUserLocation)) == ["amt", "other"]


@pytest.mark.parametrize(
    ("stdin", "args", "message"),
    [
        ("short\n", ["--location", "amt"], "at least 10 characters"),
        ("\n", ["--location", "amt"], "The password is empty."),
        ("", ["--location", "amt"], "The password is empty."),
        ("a long enough password\n", ["--location", "nowhere"], "no location with the id"),
        ("a long enough password\n", [], "A clerk needs at least one --location."),
    ],
    ids=["short", "empty line", "no input", "unknown location", "no location"],
)
def test_user_create_refuses_what_cannot_work(db_file, stdin, args, message):
    made = aufruf(db_file, "user", "create", "bert", "--role", "clerk", *args, stdin=stdin)

    assert made.returncode != 0
    assert message in made.stderr
    assert rows(db_file, StaffUser) == []
