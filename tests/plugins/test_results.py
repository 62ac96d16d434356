"""Recording the catalog and results is idempotent, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select

from prep_support.catalog import load_catalog
from prep_support.migrate import upgrade
from prep_support.probes import ProbeResult
from prep_support.results import last_results, record_results, status_counts, sync_catalog
from prep_support.schema import CheckResultRow, CheckRow

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    else:
        engine = create_engine(request.getfixturevalue("postgres_url"))
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    upgrade(engine)
    yield engine
    engine.dispose()


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_retried_run_replaces_its_results(engine) -> None:
    catalog = load_catalog()
    sync_catalog(engine, catalog)
    keys = sorted(catalog.checks_by_key)
    first_try = [ProbeResult(key, "fail", None, "refused") for key in keys]
    retry = [ProbeResult(key, "ok", 12.5, "latency 12 ms") for key in keys]
    record_results(engine, first_try, "scheduled__1", T0, T0 + timedelta(minutes=5))
    record_results(engine, retry, "scheduled__1", T0, T0 + timedelta(minutes=5))
    assert count(engine, CheckResultRow.__table__) == len(keys)
    assert status_counts(engine, "scheduled__1") == {"ok": len(keys)}


def test_last_results_newest_first_with_aware_times(engine) -> None:
    sync_catalog(engine, load_catalog())
    for minute in range(0, 60, 5):
        record_results(engine, [ProbeResult("payments-api/health", "ok", float(minute), "")],
                       f"run-{minute:02d}", T0 + timedelta(minutes=minute), T0 + timedelta(minutes=minute + 5))
    rows = last_results(engine, "payments-api/health", limit=3)
    assert [row.run_id for row in rows] == ["run-55", "run-50", "run-45"]
    assert rows[0].data_interval_end == T0 + timedelta(minutes=60)
    assert rows[0].data_interval_end.tzinfo is not None


def test_checks_gone_from_the_catalog_are_kept_inactive(engine) -> None:
    catalog = load_catalog()
    sync_catalog(engine, catalog)
    smaller = catalog.model_copy(update={"services": catalog.services[:1]})
    summary = sync_catalog(engine, smaller)
    assert summary["retired_checks"] == len(catalog.checks_by_key) - len(catalog.services[0].checks)
    table = CheckRow.__table__
    with engine.connect() as connection:
        active = set(connection.execute(select(table.c.id).where(table.c.active)).scalars())
        everything = set(connection.execute(select(table.c.id)).scalars())
    assert active == {f"{catalog.services[0].id}/{c.id}" for c in catalog.services[0].checks}
    assert everything == set(catalog.checks_by_key)
    sync_catalog(engine, catalog)  # brought back: active again
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).where(table.c.active)).scalar_one() == len(everything)
