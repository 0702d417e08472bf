"""`aufruf user create` and `aufruf token create|list|revoke` (wired in aufruf.cli)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import datetime
from typing import TextIO

from aufruf.auth import service
from aufruf.auth.model import TOKEN_ROLES, USER_ROLES
from aufruf.clock import SystemClock
from aufruf.db import Database
from aufruf.errors import DomainError
from aufruf.settings import Settings


def add_commands(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="staff accounts")
    user_sub = user.add_subparsers(dest="action", required=True)
    create = user_sub.add_parser(
        "create", help="create a staff account; the password is read from standard input"
    )
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=USER_ROLES)
    create.add_argument(
        "--location",
        action="append",
        default=[],
        metavar="L",
        help="a location id the user works at (repeat for more; an admin without one: all)",
    )

    token = sub.add_parser("token", help="bearer tokens for devices and integrations")
    token_sub = token.add_subparsers(dest="action", required=True)
    make = token_sub.add_parser("create", help="create a token; printed as the last line")
    make.add_argument("--role", required=True, choices=TOKEN_ROLES)
    make.add_argument("--location", metavar="L")
    make.add_argument("--counter", metavar="C")
    make.add_argument("--kiosk", metavar="K", help="default: the location's first active kiosk")
    make.add_argument("--printer", metavar="P", help="default: the location's first printer")
    make.add_argument("--name", metavar="N", help="how lists show it, e.g. 'Kiosk entrance'")
    token_sub.add_parser("list", help="every token, with its prefix, never the token itself")
    revoke = token_sub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", type=int)


def run(args: argparse.Namespace, settings: Settings) -> None:
    try:
        match args.command, args.action:
            case "user", "create":
                password = read_password(sys.stdin)
                asyncio.run(_create_user(settings, args.username, password, args))
            case "token", "create":
                asyncio.run(_create_token(settings, args))
            case "token", "list":
                asyncio.run(_list_tokens(settings))
            case "token", "revoke":
                asyncio.run(_revoke_token(settings, args.id))
    except DomainError as exc:
        raise SystemExit(f"aufruf: {exc.detail} Nothing was changed.") from None


def read_password(stdin: TextIO) -> str:
    """The password: asked twice without echo on a terminal, else the first line of input."""
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise SystemExit("aufruf: the two passwords differ. Nothing was changed.")
        return first
    return stdin.readline().removesuffix("\n").removesuffix("\r")


async def _create_user(
    settings: Settings, username: str, password: str, args: argparse.Namespace
) -> None:
    db = Database(settings.database_url)
    try:
        async with db.write() as session:
            user = await service.create_user(
                session, SystemClock().now(), username, password, args.role, args.location
            )
        where = ", ".join(args.location) or "all locations"
        print(f"created user {user.username} ({user.role}; {where})")
    finally:
        await db.dispose()


async def _create_token(settings: Settings, args: argparse.Namespace) -> None:
    db = Database(settings.database_url)
    try:
        async with db.write() as session:
            new = await service.create_token(
                session,
                SystemClock().now(),
                role=args.role,
                location=args.location,
                counter=args.counter,
                kiosk=args.kiosk,
                printer=args.printer,
                name=args.name,
            )
    finally:
        await db.dispose()
    row = new.row
    print(f"created token {row.id}: {row.role}, {_binding(row)}, named {row.name!r}")
    print("It is shown only now; aufruf keeps only its hash. Devices send it as")
    print("'Authorization: Bearer <token>' (device pages take ?token=<token> once).")
    print(new.token)


def _binding(row) -> str:
    parts = [f"location {row.location_id}" if row.location_id else "all locations"]
    for noun, value in (
        ("counter", row.counter_id),
        ("kiosk", row.kiosk_id),
        ("printer", row.printer_id),
    ):
        if value:
            parts.append(f"{noun} {value}")
    return ", ".join(parts)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


async def _list_tokens(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            rows = await service.list_tokens(session)
    finally:
        await db.dispose()
    header = ("id", "prefix", "role", "location", "name", "created", "last used", "revoked")
    lines = [header] + [
        (
            str(r.id),
            r.prefix + "…",
            r.role,
            r.location_id or "(all)",
            r.name,
            _when(r.created_at),
            _when(r.last_used_at),
            _when(r.revoked_at),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    if not rows:
        print("(no tokens yet: aufruf token create --role ... --location ...)")


async def _revoke_token(settings: Settings, token_id: int) -> None:
    db = Database(settings.database_url)
    try:
        async with db.write() as session:
            row = await service.revoke_token(session, token_id, SystemClock().now())
        print(f"token {row.id} ({row.role}, {row.name!r}) is revoked")
    finally:
        await db.dispose()
