"""Weekly trend reports from hourly rollups in a real support database (SQLite and PostgreSQL): figures, text,
chart, storage."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, select

from prep_support import outbox
from prep_support.catalog import load_catalog
from prep_support.charts import render_chart
from prep_support.migrate import downgrade, upgrade
from prep_support.reports import (
    report_key,
    report_week,
    shown_pct,
    store_report,
    stored_reports,
    summary_text,
    weekly_reports,
)
from prep_support.results import sync_catalog, upsert
from prep_support.schema import Base, CheckHourlyRow, CheckRow, NotificationRow

WEEK_START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEK_END = WEEK_START + timedelta(days=7)
HOURS = [WEEK_START + timedelta(hours=n) for n in range(168)]
PAYMENTS_FAILED_HOURS = {HOURS[30], HOURS[31], HOURS[32], HOURS[100], HOURS[101], HOURS[140]}
EDI_FAILED_HOUR = HOURS[7]


def rollup(check_id: str, hour: datetime, results: int = 12, failures: int = 0, p95: float | None = 100.0,
           mean: float = 80.0) -> dict:
    latency_count = results if p95 is not None else 0
    return {"check_id": check_id, "hour": hour, "results": results, "failures": failures,
            "latency_count": latency_count, "latency_sum_ms": mean * latency_count,
            "latency_p50_ms": mean if p95 is not None else None, "latency_p95_ms": p95,
            "latency_max_ms": p95}


def seeded_rollups() -> list[dict]:
    rows = []
    for hour in HOURS:
        # payments-api: 6 hours fully failed, 72 of 2,016 results -> 96.428 % (shown 96.42 %, not rounded up).
        rows.append(rollup("payments-api/health", hour, failures=12 if hour in PAYMENTS_FAILED_HOURS else 0,
                           p95=250.0 if hour in PAYMENTS_FAILED_HOURS else 100.0))
        # inventory-api: two critical checks, one failure in 4,032 results -> 99.975 %.
        rows.append(rollup("inventory-api/health", hour))
        rows.append(rollup("inventory-api/edi-listener", hour, failures=int(hour == EDI_FAILED_HOUR), p95=5.0,
                           mean=2.0))
        rows.append(rollup("reporting/health", hour))
    # A non-critical check failing every day does not touch its service's availability.
    rows += [rollup("payments-api/settlement-batch", WEEK_START + timedelta(days=d), results=1, failures=1, p95=None)
             for d in range(7)]
    # A check removed from the catalog since still counts for the week it ran.
    rows += [rollup("reporting/legacy-export", hour, results=10, failures=5) for hour in HOURS[:10]]
    # Outside the week: the hour before it and the hour it ends.
    rows += [rollup("payments-api/health", WEEK_START - timedelta(hours=1), failures=12),
             rollup("payments-api/health", WEEK_END, failures=12)]
    return rows


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    else:
        engine = create_engine(request.getfixturevalue("postgres_url"))
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    upgrade(engine)
    sync_catalog(engine, load_catalog())
    with engine.begin() as connection:
        connection.execute(insert(CheckRow.__table__).values(
            id="reporting/legacy-export", service_id="reporting", kind="http", active=False,
            definition={"id": "legacy-export", "kind": "http", "critical": True}, updated_at=WEEK_START))
    upsert(engine, CheckHourlyRow.__table__, seeded_rollups(), ["check_id", "hour"])
    yield engine
    engine.dispose()


@pytest.fixture
def reports(engine):
    return {r.service_id: r for r in weekly_reports(engine, load_catalog(), WEEK_START, WEEK_END)}


@pytest.mark.parametrize(
    ("interval_end", "week_start"),
    [
        pytest.param(datetime(2026, 3, 9, 7, tzinfo=UTC), WEEK_START, id="scheduled-monday-0700"),
        pytest.param(datetime(2026, 3, 9, 0, tzinfo=UTC), WEEK_START, id="monday-midnight"),
        pytest.param(datetime(2026, 3, 11, 15, 30, tzinfo=UTC), WEEK_START, id="mid-week-manual-run"),
        pytest.param(datetime(2026, 3, 8, 23, 59, tzinfo=UTC), WEEK_START - timedelta(days=7), id="sunday-night"),
    ],
)
def test_a_run_reports_the_last_full_calendar_week(interval_end: datetime, week_start: datetime) -> None:
    assert report_week(interval_end) == (week_start, week_start + timedelta(days=7))


def test_the_week_of_an_airflow_interval_is_a_plain_datetime() -> None:
    import pendulum

    start, end = report_week(pendulum.datetime(2026, 3, 9, 7, tz="UTC"))  # what the task context gives
    assert (type(start), type(end), start, end) == (datetime, datetime, WEEK_START, WEEK_END)


def test_availability_counts_critical_checks_over_the_week(reports) -> None:
    payments, inventory = reports["payments-api"], reports["inventory-api"]
    assert (payments.critical_results, payments.critical_failures, payments.results) == (2016, 72, 2023)
    assert payments.availability_pct == pytest.approx(100 * 1944 / 2016)
    assert payments.availability == "96.42 %"
    assert (inventory.critical_results, inventory.critical_failures) == (4032, 1)
    assert inventory.availability == "99.97 %"
    checks = {c.check_id: c for c in payments.checks}
    assert (checks["payments-api/settlement-batch"].critical, checks["payments-api/settlement-batch"].availability_pct,
            checks["payments-api/settlement-batch"].results) == (False, 0.0, 7)
    assert checks["payments-api/health"].mean_ms == pytest.approx(80.0)
    assert checks["payments-api/health"].p95_ms == pytest.approx((162 * 100 + 6 * 250) / 168)


def test_no_results_is_no_data_not_full_availability(reports) -> None:
    orders = reports["orders-api"]
    assert (orders.results, orders.availability_pct, orders.availability) == (0, None, "no data")
    assert orders.worst_hour() is None
    assert orders.series().availability_pct == (None,) * 168


def test_a_retired_check_counts_for_the_week_it_ran(reports) -> None:
    reporting = reports["reporting"]
    assert [c.check_id for c in reporting.checks] == ["reporting/health", "reporting/legacy-export"]
    assert (reporting.critical_results, reporting.critical_failures) == (2016 + 100, 50)
    assert reporting.availability == "97.63 %"


def test_figures_are_truncated_never_rounded_up() -> None:
    assert shown_pct(30_000, 1) == "99.99 %"  # 99.9966...
    assert shown_pct(3, 1) == "66.66 %"
    assert shown_pct(10, 0) == "100.00 %"
    assert shown_pct(7, 7) == "0.00 %"
    assert shown_pct(0, 0) == "no data"


def test_hourly_series(reports) -> None:
    series = reports["payments-api"].series()
    assert series.hours == tuple(HOURS)
    assert [series.availability_pct[n] for n in (29, 30, 33)] == [100.0, 0.0, 100.0]
    assert series.p95_ms["payments-api/health"][30] == 250.0
    assert series.p50_ms["payments-api/health"][0] == 80.0
    assert series.p95_ms["payments-api/settlement-batch"][0] is None
    assert series.p95_ms["payments-api/settlement-batch"][1] is None  # no rollup that hour
    assert reports["payments-api"].worst_hour() == (HOURS[30], 12, 12)


def test_summary_text(reports) -> None:
    assert summary_text(reports["payments-api"]) == (
        ":bar_chart: *Payments API*: weekly trend, 2026-03-02 to 2026-03-08 (UTC)\n"
        "Availability: *96.42 %* (72 of 2016 critical-check results failed)\n"
        "Worst hour: Tue 2026-03-03 06:00 UTC, 0.00 %\n"
        "• payments-api/health: 96.42 % of 2016 results, p95 105 ms, mean 80 ms\n"
        "• payments-api/latency-prometheus (non-critical): no results this week\n"
        "• payments-api/settlement-batch (non-critical): 0.00 % of 7 results\n"
        "Availability counts the critical checks' evaluated results that did not fail; "
        "the chart shows p95 latency per check and availability per hour."
    )
    assert "no critical check was evaluated this week" in summary_text(reports["orders-api"])


def test_summary_text_gives_the_weeks_how_to_deflection_rate(reports) -> None:
    from prep_support.how_to_store import Deflection

    text = summary_text(reports["payments-api"], Deflection(suggested=8, deflected=3))
    assert text.endswith("\nHow-to requests (all teams): 3 of 8 answered with suggestions were resolved by their "
                         "requester (38 % deflected).")
    assert "How-to" not in summary_text(reports["payments-api"], Deflection(suggested=0, deflected=0))


def test_chart_is_a_png_of_the_requested_size(reports) -> None:
    from matplotlib import image

    series = reports["payments-api"].series()
    png = render_chart(series, title="Payments API: week of 2026-03-02, availability 96.42 %")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.imread(io.BytesIO(png)).shape[:2] == (500, 900)
    assert render_chart(series, title="Payments API: week of 2026-03-02, availability 96.42 %") == png
    small = render_chart(reports["orders-api"].series(), title="no data", width_px=600, height_px=300)
    assert image.imread(io.BytesIO(small)).shape[:2] == (300, 600)


def test_a_rerun_replaces_the_stored_report(engine, reports) -> None:
    now = datetime(2026, 3, 9, 7, 5, tzinfo=UTC)
    store_report(engine, reports["payments-api"], b"first", now)
    store_report(engine, reports["payments-api"], b"second", now + timedelta(hours=1))
    store_report(engine, reports["inventory-api"], b"chart", now)
    rows = stored_reports(engine, WEEK_START)
    assert [(r.service_id, r.chart_png, r.results) for r in rows] == [
        ("inventory-api", b"chart", 4032), ("payments-api", b"second", 2023)]
    payments = rows[1]
    assert (payments.week_end, payments.availability_pct) == (WEEK_END, pytest.approx(96.428571, abs=1e-5))
    assert payments.summary["availability"] == "96.42 %" and payments.created_at == now + timedelta(hours=1)


def test_the_report_ledger_sends_once_and_stays_out_of_the_outbox(engine) -> None:
    key = report_key("payments-api", WEEK_START)
    assert key == "report:payments-api:2026-03-02:slack"
    fields = {"key": key, "event": "report", "channel": "slack", "conn_id": "slack_api_default",
              "target": "#payments-support", "subject": "Payments API", "body": "text", "now": WEEK_END}
    assert outbox.claim_direct(engine, **fields)
    assert outbox.pending(engine) == []  # health_sweep's sender must not post it as a plain message
    outbox.record_failure(engine, key, TimeoutError("slow"))
    assert outbox.claim_direct(engine, **fields | {"body": "new text"})  # a failed attempt is tried again
    outbox.record_sent(engine, key, outbox.Sent("F0FILE000001", "C0PAYSUPRT:1.2"), WEEK_END)
    assert not outbox.claim_direct(engine, **fields)
    with engine.connect() as connection:
        row = connection.execute(select(NotificationRow.__table__)).one()
    assert (row.status, row.attempts, row.body, row.message_id, row.last_error) == (
        "sent", 2, "new text", "F0FILE000001", "")


def test_the_migration_builds_the_table_the_model_describes(tmp_path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")

    def trend_report_differences() -> list:
        with engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                     Base.metadata)
        return [d for d in found if "trend_reports" in repr(d)]

    upgrade(engine)
    assert trend_report_differences() == []
    downgrade(engine, "0002")
    assert "trend_reports" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert trend_report_differences() == []
    engine.dispose()
