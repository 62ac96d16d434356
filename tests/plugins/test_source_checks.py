"""Monitoring-source checks through the sweep's own code path: Prometheus, Nagios, New Relic and Splunk,
read for the run's data interval (now, and three days ago as a backfill would)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from operators.probe_checks import ProbeChecksOperator
from prep_support.catalog import load_catalog
from tests.sandbox_client import call

SOURCE_CHECKS = ["payments-api/latency-prometheus", "inventory-api/nagios-http", "orders-api/p95-newrelic",
                 "customer-portal/errors-splunk"]


def probe(start: datetime, end: datetime, live: bool = True) -> dict:
    catalog = load_catalog()
    operator = ProbeChecksOperator(task_id="probe_checks", check_keys=SOURCE_CHECKS)
    results = asyncio.run(operator.probe(catalog, SOURCE_CHECKS, live, start, end))
    return {result.check_key: result for result in results}


@pytest.fixture
def telemetry(sandbox):
    call(sandbox.base_url, "DELETE", "/telemetry/_sandbox/incidents")
    call(sandbox.base_url, "DELETE", "/sandbox/faults")
    yield sandbox.base_url
    call(sandbox.base_url, "DELETE", "/telemetry/_sandbox/incidents")
    call(sandbox.base_url, "DELETE", "/sandbox/faults")


def interval(ago: timedelta) -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(second=0, microsecond=0) - ago
    return end - timedelta(minutes=5), end


@pytest.mark.parametrize(
    "ago", [pytest.param(timedelta(0), id="now"), pytest.param(timedelta(days=3), id="3-days-ago")]
)
def test_healthy_sources_are_ok_now_and_in_the_past(telemetry, ago) -> None:
    results = probe(*interval(ago), live=ago == timedelta(0))
    assert {key: r.status for key, r in results.items()} == dict.fromkeys(SOURCE_CHECKS, "ok")
    assert results["inventory-api/nagios-http"].detail == "Nagios state ok"


def test_an_incident_in_the_past_fails_exactly_its_interval(telemetry) -> None:
    start, end = interval(timedelta(days=3))
    for app in ("payments-api", "inventory-api", "orders-api", "customer-portal"):
        call(telemetry, "PUT", f"/telemetry/_sandbox/incidents/{app}", {
            "start": start.isoformat(), "end": end.isoformat(), "latency_factor": 10, "error_rate": 0.5,
            "nagios_state": "critical"})
    during = probe(start, end, live=False)
    assert {key: r.status for key, r in during.items()} == dict.fromkeys(SOURCE_CHECKS, "fail")
    assert during["inventory-api/nagios-http"].detail == "Nagios state critical"
    assert during["customer-portal/errors-splunk"].detail.startswith("value ")
    before = probe(start - timedelta(hours=1), end - timedelta(hours=1), live=False)
    assert {r.status for r in before.values()} == {"ok"}


def test_an_unreachable_source_is_not_evaluable_not_down(telemetry) -> None:
    call(telemetry, "PUT", "/sandbox/faults/prometheus", {"status": 503, "retry_after_s": 0})
    results = probe(*interval(timedelta(0)))
    assert results["payments-api/latency-prometheus"].status == "not_evaluable"
    assert "prometheus unavailable" in results["payments-api/latency-prometheus"].detail
    assert results["orders-api/p95-newrelic"].status == "ok"
