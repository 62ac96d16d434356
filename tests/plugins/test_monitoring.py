"""Health evaluation on a real (SQLite) support database: rollups, trends, states, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select

from prep_support.catalog import load_catalog
from prep_support.health import Thresholds
from prep_support.migrate import upgrade
from prep_support.monitoring import current_health, evaluate_sweep, hour_of
from prep_support.probes import ProbeResult
from prep_support.results import record_results, sync_catalog, upsert
from prep_support.schema import CheckHourlyRow, CheckStateRow

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = "reporting/health"


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    upgrade(engine)
    sync_catalog(engine, load_catalog())
    return engine


def sweep(engine, number: int, status: str = "ok", latency: float | None = 40.0, live: bool = True,
          key: str = KEY):
    start = T0 + timedelta(minutes=5 * number)
    end = start + timedelta(minutes=5)
    run_id = f"scheduled__{number}"
    record_results(engine, [ProbeResult(key, status, latency, f"latency {latency} ms")], run_id, start, end)
    return evaluate_sweep(engine, load_catalog(), Thresholds(), run_id, start, end, end, live)


def state_of(engine, key: str = KEY):
    with engine.connect() as connection:
        return connection.execute(select(CheckStateRow.__table__).where(CheckStateRow.check_id == key)).one()


def test_three_failures_take_a_service_down_and_two_successes_bring_it_back(engine) -> None:
    seen = [sweep(engine, n, "fail", None).service_states["reporting"] for n in range(3)]
    assert seen == ["ok", "ok", "down"]
    assert sweep(engine, 3).service_states["reporting"] == "down"
    assert sweep(engine, 4).service_states["reporting"] == "ok"
    checks, services = current_health(engine, load_catalog())
    assert services["reporting"] == "ok"
    assert {c.check_id: c.state for c in checks}[KEY] == "ok"


def test_a_retried_evaluation_does_not_count_twice(engine) -> None:
    for _ in range(3):
        evaluation = sweep(engine, 0, "fail", None)  # the same run, three tries
    assert evaluation.service_states["reporting"] == "ok"
    assert state_of(engine).failures == 1


def test_a_backfilled_run_fills_history_but_leaves_health_alone(engine) -> None:
    for n in range(3):
        sweep(engine, n, "fail", None, live=False)
    assert current_health(engine, load_catalog())[1]["reporting"] == "ok"
    with engine.connect() as connection:
        hourly = connection.execute(select(CheckHourlyRow.__table__)).one()
    assert (hourly.check_id, hourly.hour, hourly.results, hourly.failures) == (KEY, T0, 3, 3)


def test_sustained_regression_degrades_before_anything_is_down(engine) -> None:
    # A week of quiet history: hourly p95 of 40 ms.
    upsert(engine, CheckHourlyRow.__table__, [
        {"check_id": KEY, "hour": hour_of(T0) - timedelta(hours=h), "results": 12, "failures": 0,
         "latency_count": 12, "latency_sum_ms": 480.0, "latency_p50_ms": 40.0, "latency_p95_ms": 40.0,
         "latency_max_ms": 45.0}
        for h in range(2, 50)
    ], ["check_id", "hour"])
    states = []
    for n in range(5):
        evaluation = sweep(engine, n, "ok", 200.0)  # five times slower, but answering
        states.append(evaluation.service_states["reporting"])
    # Three results are needed to call an hour's p95, then three sweeps in a row to call it a trend.
    assert states == ["ok", "ok", "ok", "ok", "degraded"]
    row = state_of(engine)
    assert (row.state, row.cause) == ("degraded", "performance")
    assert row.detail == "performance trend: p95 200 ms over the last hour vs 40 ms 7-day baseline"
    assert (row.baseline_p95_ms, row.baseline_hours) == (40.0, 48)
    with engine.connect() as connection:
        current = connection.execute(
            select(CheckHourlyRow.__table__).where(CheckHourlyRow.hour == hour_of(T0))).one()
    assert (current.results, current.latency_p95_ms) == (5, 200.0)
