"""Writing the catalog and check results to the support database, idempotently.

Both writes are upserts: a retried task, a cleared run or a re-parsed catalog
replaces its own rows instead of adding more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from prep_support.catalog import Catalog, check_key
from prep_support.probes import ProbeResult
from prep_support.redaction import connection_secrets, redact_value
from prep_support.schema import CheckResultRow, CheckRow, ServiceRow


def dialect_insert(bind: Engine | Connection, table: Any) -> Insert:
    """An INSERT that knows ON CONFLICT: PostgreSQL's or SQLite's, by the bind's dialect."""
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(bind.dialect.name)
    if dialect is None:
        raise NotImplementedError(f"upserts are written for PostgreSQL and SQLite, not {bind.dialect.name}")
    return dialect.insert(table)


def upsert(engine: Engine | Connection, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           newer: str | None = None) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE on PostgreSQL and SQLite (in the caller's transaction
    when given a Connection). With ``newer`` (a column), a stored row is replaced only by a row whose
    value there is not older: a late write of an earlier result does not undo a later one."""
    if not rows:
        return
    statement = dialect_insert(engine, table)
    columns = [name for name in rows[0] if name not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in columns},
        where=None if newer is None else table.c[newer] <= statement.excluded[newer],
    )
    with _transaction(engine) as connection:
        # PostgreSQL allows 65,535 parameters per statement; stay well below.
        step = max(1, 20_000 // len(rows[0]))
        for first in range(0, len(rows), step):
            connection.execute(statement, list(rows[first : first + step]))


def _transaction(engine: Engine | Connection) -> AbstractContextManager[Connection]:
    return nullcontext(engine) if isinstance(engine, Connection) else engine.begin()


def sync_catalog(engine: Engine, catalog: Catalog, now: datetime | None = None) -> dict[str, int]:
    """Store services and checks as loaded; those gone from the catalog are kept, inactive."""
    now = now or datetime.now(UTC)
    services = [
        {"id": s.id, "name": s.name, "owner": s.owner, "team_channel": s.team_channel,
         "tracker_project": s.tracker_project, "criticality": s.criticality,
         "depends_on": list(s.depends_on), "active": True, "updated_at": now}
        for s in catalog.services
    ]
    secrets = connection_secrets()  # a definition is stored without a URL's password or a Connection's secret
    checks = [
        {"id": check_key(s.id, c.id), "service_id": s.id, "kind": c.kind,
         "definition": redact_value(c.model_dump(mode="json"), secrets), "active": True, "updated_at": now}
        for s in catalog.services for c in s.checks
    ]
    upsert(engine, ServiceRow.__table__, services, ["id"])
    upsert(engine, CheckRow.__table__, checks, ["id"])
    with engine.begin() as connection:
        retired_checks = connection.execute(
            update(CheckRow).where(CheckRow.id.not_in([c["id"] for c in checks]), CheckRow.active)
            .values(active=False, updated_at=now)
        ).rowcount
        connection.execute(
            update(ServiceRow).where(ServiceRow.id.not_in([s["id"] for s in services]), ServiceRow.active)
            .values(active=False, updated_at=now)
        )
    return {"services": len(services), "checks": len(checks), "retired_checks": retired_checks}


def record_results(engine: Engine, results: Iterable[ProbeResult], run_id: str, interval_start: datetime,
                   interval_end: datetime, observed_at: datetime | None = None) -> int:
    """Store one row per (check, run), replacing what an earlier try of the same run wrote."""
    observed_at = observed_at or datetime.now(UTC)
    rows = [
        {"check_id": r.check_key, "run_id": run_id, "data_interval_start": interval_start,
         "data_interval_end": interval_end, "observed_at": observed_at, "status": r.status,
         "latency_ms": r.latency_ms, "detail": r.detail}
        for r in results
    ]
    upsert(engine, CheckResultRow.__table__, rows, ["check_id", "run_id"])
    return len(rows)


def last_results(engine: Engine, check_id: str, limit: int = 10) -> list[Row]:
    """The newest ``limit`` results of a check, newest first (served by the (check, interval end) index)."""
    results = CheckResultRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(results).where(results.c.check_id == check_id)
            .order_by(results.c.data_interval_end.desc()).limit(limit)
        )
        return list(rows)


def status_counts(engine: Engine, run_id: str) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(CheckResultRow.status, func.count()).where(CheckResultRow.run_id == run_id)
            .group_by(CheckResultRow.status)
        )
        return dict(rows.all())
