"""Maintenance windows: planned work during which checks are recorded but nobody is paged.

``python -m prep_support.maintenance add --service orders-api --start 2026-12-01T22:00Z
--end 2026-12-02T01:00Z --reason "DB upgrade"`` adds one (``--key`` makes the call idempotent;
the outage workflow passes its outage id); ``list`` shows active and upcoming ones.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, select

from prep_support.results import upsert
from prep_support.schema import MaintenanceWindowRow

windows = MaintenanceWindowRow.__table__


class MaintenanceError(ValueError):
    pass


def add_window(engine: Engine, *, key: str, service_ids: Iterable[str], starts_at: datetime, ends_at: datetime,
               reason: str = "", created_by: str = "", known_services: Iterable[str] | None = None) -> dict:
    """Create or replace the window with this key; refuse an empty, reversed or unknown-service window."""
    services = sorted(set(service_ids))
    if not services:
        raise MaintenanceError("a maintenance window needs at least one service")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise MaintenanceError("start and end need a time zone (e.g. 2026-12-01T22:00Z)")
    if ends_at <= starts_at:
        raise MaintenanceError(f"end {ends_at.isoformat()} is not after start {starts_at.isoformat()}")
    if known_services is not None:
        unknown = sorted(set(services) - set(known_services))
        if unknown:
            raise MaintenanceError(f"unknown service(s): {', '.join(unknown)}")
    row = {"key": key, "service_ids": services, "starts_at": starts_at, "ends_at": ends_at, "reason": reason,
           "created_by": created_by, "created_at": datetime.now(UTC)}
    upsert(engine, windows, [row], ["key"])
    return row


def services_in_maintenance(engine: Engine, at: datetime) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(windows.c.service_ids).where(windows.c.starts_at <= at, windows.c.ends_at > at)
        ).scalars()
        return {service for services in rows for service in services}


def current_and_upcoming(engine: Engine, at: datetime) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(select(windows).where(windows.c.ends_at > at).order_by(windows.c.starts_at))
        return [dict(row._mapping) for row in rows]


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {value!r}") from error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Add or list maintenance windows in the support database.")
    parser.add_argument("--url", help="SQLAlchemy URL (default: the support_db Connection)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add (or replace, with the same --key) a window")
    add.add_argument("--service", action="append", required=True, dest="services")
    add.add_argument("--start", type=_parse_time, required=True)
    add.add_argument("--end", type=_parse_time, required=True)
    add.add_argument("--reason", default="")
    add.add_argument("--key", help="idempotency key (default: services and start)")
    add.add_argument("--by", default="cli")
    commands.add_parser("list", help="active and upcoming windows")
    args = parser.parse_args(argv)
    if args.url:
        engine = create_engine(args.url)
    else:
        from hooks.database import DatabaseHook

        engine = DatabaseHook(conn_id="support_db").engine
    if args.command == "add":
        from prep_support.catalog import load_catalog

        known = [service.id for service in load_catalog().services]
        key = args.key or f"manual:{'+'.join(sorted(args.services))}:{args.start.isoformat()}"
        try:
            row = add_window(engine, key=key, service_ids=args.services, starts_at=args.start, ends_at=args.end,
                             reason=args.reason, created_by=args.by, known_services=known)
        except MaintenanceError as error:
            parser.error(str(error))
        print(json.dumps(row, default=str))
    else:
        for row in current_and_upcoming(engine, datetime.now(UTC)):
            print(json.dumps(row, default=str))


if __name__ == "__main__":
    main()
