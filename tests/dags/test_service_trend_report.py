"""service_trend_report as the scheduler runs it (dag.test()): each service's report is kept, and posted once
to its team channel with the chart attached; a re-run replaces the kept report and posts nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from prep_support.catalog import load_catalog
from prep_support.reports import stored_reports
from prep_support.results import sync_catalog, upsert
from prep_support.schema import CheckHourlyRow, NotificationRow
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
# The scheduled run of Monday 2026-03-09 07:00 UTC: its data interval is the week before, so it reports
# the calendar week Monday 2026-03-02 to Monday 2026-03-09.
LOGICAL_DATE = datetime(2026, 3, 9, 7, tzinfo=UTC)
WEEK_START = datetime(2026, 3, 2, tzinfo=UTC)
HOURS = [WEEK_START + timedelta(hours=n) for n in range(168)]
# Failures per check over the week (12 results an hour, 2,016 a week); non-critical checks do not count.
FAILURES = {"payments-api/health": 72, "auth-gateway/health": 1, "orders-api/order-volume": 500}
EXPECTED = {"payments-api": "96.42 %", "auth-gateway": "99.95 %", "orders-api": "100.00 %",
            "customer-portal": "100.00 %", "reporting": "100.00 %", "inventory-api": "100.00 %"}


@pytest.fixture(scope="module")
def report_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "service_trend_report.py"))
    assert bag.import_errors == {}
    return bag.dags["service_trend_report"]


def seed_week(engine, failures: dict[str, int]) -> None:
    """A week of hourly rollups for every check; a check's failures fall in its first hours, 12 an hour."""
    rows = []
    for check_id in load_catalog().checks_by_key:
        left = failures.get(check_id, 0)
        for hour in HOURS:
            failed = min(12, left)
            left -= failed
            rows.append({"check_id": check_id, "hour": hour, "results": 12, "failures": failed, "latency_count": 12,
                         "latency_sum_ms": 12 * 40.0, "latency_p50_ms": 40.0, "latency_p95_ms": 60.0,
                         "latency_max_ms": 75.0})
    upsert(engine, CheckHourlyRow.__table__, rows, ["check_id", "hour"])


def slack_state(base: str) -> tuple[list[dict], list[dict]]:
    messages = call(base, "GET", "/slack/_sandbox/messages")["messages"]
    return messages, call(base, "GET", "/slack/_sandbox/files")["files"]


def test_each_service_gets_one_report_with_its_chart_and_a_rerun_posts_nothing(
    airflow_db, support_engine, sandbox, report_dag
) -> None:
    from matplotlib import image

    base = sandbox.base_url
    call(base, "DELETE", "/slack/_sandbox/messages")
    catalog = load_catalog()
    sync_catalog(support_engine, catalog)
    seed_week(support_engine, FAILURES)
    channels = {service.id: service.team_channel.removeprefix("#") for service in catalog.services}

    assert report_dag.test(logical_date=LOGICAL_DATE).state == "success"

    messages, files = slack_state(base)
    assert sorted(m["channel_name"] for m in messages) == sorted(channels.values())
    assert sorted(f["channel_names"][0] for f in files) == sorted(channels.values())
    for service_id, channel in channels.items():
        (message,) = [m for m in messages if m["channel_name"] == channel]
        (png,) = [f for f in files if f["channel_names"] == [channel]]
        assert f"Availability: *{EXPECTED[service_id]}*" in message["text"]
        assert message["text"].startswith(f":bar_chart: *{catalog_name(catalog, service_id)}*: weekly trend, "
                                          "2026-03-02 to 2026-03-08 (UTC)")
        assert [f["id"] for f in message["files"]] == [png["id"]]
        assert (png["name"], png["mimetype"], png["initial_comment"]) == (
            f"{service_id}-trend-2026-03-02.png", "image/png", message["text"])
        assert EXPECTED[service_id] in png["title"]
        content = requests.get(f"{base}/slack/_sandbox/files/{png['id']}/content", timeout=10).content
        assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) == png["size"]
        assert image.imread(io.BytesIO(content)).shape[:2] == (500, 900)

    first = {row.service_id: row for row in stored_reports(support_engine, WEEK_START)}
    assert {s: row.summary["availability"] for s, row in first.items()} == EXPECTED
    assert ledger(support_engine) == {f"report:{s}:2026-03-02:slack": ("sent", 1) for s in channels}

    # Late rollups arrive and the run is cleared: the stored report is replaced, nothing is posted again.
    seed_week(support_engine, FAILURES | {"auth-gateway/health": 2})
    assert report_dag.test(logical_date=LOGICAL_DATE).state == "success"

    assert slack_state(base) == (messages, files)
    second = {row.service_id: row for row in stored_reports(support_engine, WEEK_START)}
    assert {s: row.id for s, row in second.items()} == {s: row.id for s, row in first.items()}
    assert second["auth-gateway"].summary["availability"] == "99.90 %"
    assert second["auth-gateway"].created_at > first["auth-gateway"].created_at
    assert ledger(support_engine) == {f"report:{s}:2026-03-02:slack": ("sent", 1) for s in channels}


def catalog_name(catalog, service_id: str) -> str:
    return next(service.name for service in catalog.services if service.id == service_id)


def ledger(engine) -> dict[str, tuple[str, int]]:
    table = NotificationRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.key, table.c.status, table.c.attempts)
                                  .where(table.c.event == "report")).all()
    return {row.key: (row.status, row.attempts) for row in rows}
