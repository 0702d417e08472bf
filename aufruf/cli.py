"""The `aufruf` command (CONTRACT.md): serve, demo, db, seed, offices, worker, purge,
printer-agent."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aufruf.settings import Settings, SettingsError

log = logging.getLogger("aufruf")


def _settings() -> Settings:
    return Settings.from_env(create_secret=True)


async def _upgrade(settings: Settings) -> None:
    from aufruf import migrate
    from aufruf.db import Database

    db = Database(settings.database_url)
    try:
        before = await migrate.current_revision(db.engine)
        await migrate.upgrade(db.engine)
        after = await migrate.current_revision(db.engine)
    finally:
        await db.dispose()
    if before == after:
        print(f"database is up to date (revision {after})")
    else:
        print(f"database migrated from {before or 'empty'} to revision {after}")


async def _directory_is_empty(settings: Settings) -> bool:
    from sqlalchemy import func, select

    from aufruf.db import Database
    from aufruf.offices.model import Location

    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            return not await session.scalar(select(func.count()).select_from(Location))
    finally:
        await db.dispose()


async def _import(settings: Settings, path: Path) -> None:
    from aufruf.clock import SystemClock
    from aufruf.db import Database
    from aufruf.offices.importer import import_file

    db = Database(settings.database_url)
    try:
        report = await import_file(db, path, SystemClock().now())
    finally:
        await db.dispose()
    print(report)


async def _seed_demo(settings: Settings, *, only_if_empty: bool) -> bool:
    from aufruf.offices.config import DEMO_FILE

    if not await _directory_is_empty(settings):
        if only_if_empty:
            return False
        raise SystemExit(
            "aufruf: the database already has offices; "
            "`aufruf seed demo` loads only into an empty database"
        )
    await _import(settings, DEMO_FILE)
    return True


async def _export(settings: Settings) -> None:
    from aufruf.db import Database
    from aufruf.offices.importer import export_text

    db = Database(settings.database_url)
    try:
        sys.stdout.write(await export_text(db))
    finally:
        await db.dispose()


async def _purge(settings: Settings) -> None:
    from aufruf.clock import SystemClock
    from aufruf.db import Database
    from aufruf.worker import purge

    db = Database(settings.database_url)
    try:
        deleted = await purge(db, SystemClock().now())
    finally:
        await db.dispose()
    print(f"deleted the personal data of {deleted} appointments past their retention date")


async def _worker(settings: Settings) -> None:
    import signal

    from aufruf.clock import SystemClock
    from aufruf.db import Database
    from aufruf.notifications.outbox import Delivery
    from aufruf.printer.delivery import PrintDelivery
    from aufruf.ratelimit import RateLimiter
    from aufruf.worker import Worker

    db = Database(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    limiter = RateLimiter(db, settings.redis_url)
    try:
        delivery = Delivery.from_settings(db, settings)
        printing = PrintDelivery.from_settings(db, settings)
        await Worker(db, SystemClock(), limiter, delivery=delivery, printing=printing).run(stop)
    finally:
        await limiter.close()
        await db.dispose()


def _serve(settings: Settings, host: str, port: int, workers: int, worker: bool) -> None:
    import uvicorn

    if workers > 1 and settings.is_sqlite:
        raise SystemExit(
            "aufruf: --workers above 1 needs PostgreSQL (AUFRUF_DATABASE_URL); "
            "SQLite is kept to one process"
        )
    os.environ["AUFRUF_SECRET_KEY"] = settings.secret_key
    os.environ["AUFRUF_RUN_WORKER"] = "1" if worker else "0"
    os.environ.setdefault("AUFRUF_PUBLIC_URL", f"http://{host}:{port}")
    uvicorn.run(
        "aufruf.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,  # aufruf.access logs requests with their secrets cut out
        proxy_headers=False,
        # live messages are a few hundred bytes: compressing each costs more CPU and memory
        # per connection (bench/fanout.py) than the bytes it saves
        ws_per_message_deflate=False,
    )


async def _demo_logins(settings: Settings, fresh: bool) -> list[str]:
    from aufruf.clock import SystemClock
    from aufruf.db import Database
    from aufruf.demo import credentials_file, demo_logins, keep_demo_logins, make_demo_logins

    target = credentials_file(settings.sqlite_path or Path("aufruf.db"))
    if not fresh:
        return demo_logins(target)
    db = Database(settings.database_url)
    try:
        lines = await make_demo_logins(db, SystemClock().now())
    finally:
        await db.dispose()
    keep_demo_logins(target, lines)
    return lines


def _demo(settings: Settings, host: str, port: int) -> None:
    asyncio.run(_upgrade(settings))
    fresh = asyncio.run(_seed_demo(settings, only_if_empty=True))
    if fresh:
        print("loaded the demo offices")
    logins = asyncio.run(_demo_logins(settings, fresh))
    base = settings.public_url or f"http://{host}:{port}"
    print()
    print("aufruf demo is starting. Pages and endpoints that exist now:")
    for path, what in [
        ("/", "the booking site for citizens (six languages)"),
        ("/accessibility", "the accessibility statement (also /privacy, /imprint)"),
        ("/api/v1/locations", "the demo locations (JSON)"),
        ("/api/v1/services", "the services (JSON)"),
        ("/api/v1/availability?location=buergeramt-mitte&service=personalausweis", "free times"),
        ("/login", "staff sign-in"),
        ("/desk", "the clerk's desk (after sign-in)"),
        ("/kiosk/buergeramt-mitte?token=…", "the kiosk (with the token printed below)"),
        ("/admin/printers", "ticket printers, and tickets to print again (after sign-in)"),
        ("/schema", "the API documentation (OpenAPI)"),
        ("/health", "health check"),
    ]:
        print(f"  {base}{path}  — {what}")
    if logins:
        print("\nDemo logins and device tokens (Bürgeramt Mitte):")
        for line in logins:
            print(f"  {line}")
    if not settings.public_url:
        print("\nNote: phones need a reachable address; set AUFRUF_PUBLIC_URL to one.")
    print()
    sys.stdout.flush()
    _serve(settings, host, port, 1, True)


def _token_glued(argv: list[str]) -> list[str]:
    """`--token T` as `--token=T`: a token may begin with "-", which argparse would take for
    an option."""
    if "--token" not in argv[:-1]:
        return argv
    at = argv.index("--token")
    return [*argv[:at], f"--token={argv[at + 1]}", *argv[at + 2 :]]


def _printer_agent(args: argparse.Namespace) -> None:
    from aufruf.printer.agent import AgentStopped, run_agent

    try:
        asyncio.run(run_agent(args.server, args.token or "", args.printer, args.state))
    except AgentStopped as exc:
        raise SystemExit(f"aufruf printer-agent: {exc}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aufruf", description="Appointments and queues for public offices"
    )
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-worker", action="store_true", help="do not run the worker loop inside")
    demo = sub.add_parser("demo", help="migrate, load the demo offices when empty, serve")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    seed = sub.add_parser("seed", help="load example data into an empty database")
    seed.add_argument("what", choices=["demo"])
    offices = sub.add_parser("offices", help="the office directory as a TOML file")
    offices_sub = offices.add_subparsers(dest="action", required=True)
    imp = offices_sub.add_parser("import", help="replace the directory with FILE (validated first)")
    imp.add_argument("file", type=Path)
    offices_sub.add_parser("export", help="print the directory as TOML")
    sub.add_parser("worker", help="run the worker loop alone")
    sub.add_parser("purge", help="delete personal data past its retention date now")
    agent = sub.add_parser("printer-agent", help="print the jobs of one printer, beside it")
    agent.add_argument("--server", required=True, help="the server's base, e.g. https://host")
    agent.add_argument(
        "--token",
        default=os.environ.get("AUFRUF_PRINTER_TOKEN"),
        help="the printer's token (or AUFRUF_PRINTER_TOKEN)",
    )
    agent.add_argument(
        "--printer",
        required=True,
        help="net:HOST[:PORT], usb:VID:PID, serial:DEVICE[:BAUD], file:PATH or dummy:PATH",
    )
    agent.add_argument(
        "--state",
        type=Path,
        help="the file that remembers printed jobs (default under ~/.local/state/aufruf/)",
    )
    from aufruf.auth.cli import add_commands as add_auth_commands

    add_auth_commands(sub)  # user create, token create|list|revoke
    return p


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parser().parse_args(_token_glued(sys.argv[1:] if argv is None else list(argv)))
    if args.command == "printer-agent":  # runs beside the printer: no server settings
        _printer_agent(args)
        return
    try:
        settings = _settings()
        run(args, settings)
    except SettingsError as exc:
        raise SystemExit(f"aufruf: {exc}") from None


def run(args: argparse.Namespace, settings: Settings) -> None:
    from aufruf.offices.config import DirectoryError

    try:
        match args.command:
            case "serve":
                _serve(settings, args.host, args.port, args.workers, not args.no_worker)
            case "demo":
                _demo(settings, args.host, args.port)
            case "db":
                asyncio.run(_upgrade(settings))
            case "seed":
                asyncio.run(_seed_demo(settings, only_if_empty=False))
            case "offices" if args.action == "import":
                asyncio.run(_import(settings, args.file))
            case "offices":
                asyncio.run(_export(settings))
            case "worker":
                asyncio.run(_worker(settings))
            case "purge":
                asyncio.run(_purge(settings))
            case "user" | "token":
                from aufruf.auth import cli as auth_cli

                auth_cli.run(args, settings)
    except DirectoryError as exc:
        raise SystemExit(
            "aufruf: the file was not imported; nothing changed.\n" + str(exc)
        ) from None
    except OSError as exc:
        raise SystemExit(f"aufruf: {exc}") from None


if __name__ == "__main__":
    main()
