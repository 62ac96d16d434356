"""Probes: the judging rules without a network, and real probes against the sandbox's estate."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from datetime import UTC, datetime

import pytest

from prep_support.catalog import HttpCheck, SqlCheck, TcpCheck
from prep_support.probes import (
    FAIL,
    OK,
    WARN,
    client_session,
    judge_http,
    judge_value,
    probe_http,
    probe_tcp,
    query_sql,
    run_bounded,
)


def http_check(**fields) -> HttpCheck:
    return HttpCheck.model_validate({"id": "health", "kind": "http", "url": "http://x/health", **fields})


@pytest.mark.parametrize(
    ("fields", "status_code", "body", "latency", "expected"),
    [
        pytest.param({}, 200, "{}", 12, (OK, "latency 12 ms"), id="ok"),
        pytest.param({}, 503, "{}", 12, (FAIL, "HTTP 503 (expected 200)"), id="wrong-status"),
        pytest.param({"expected_status": [200, 204]}, 204, "", 5, (OK, "latency 5 ms"), id="second-status"),
        pytest.param({"body_contains": "UP"}, 200, "DOWN", 5, (FAIL, "body does not contain 'UP'"), id="body"),
        pytest.param({"json_path_equals": {"$.db.state": "up"}}, 200, '{"db": {"state": "down"}}', 5,
                     (FAIL, "$.db.state is 'down', expected 'up'"), id="json-path-differs"),
        pytest.param({"json_path_equals": {"$.checks[1]": 2}}, 200, '{"checks": [1]}', 5,
                     (FAIL, "$.checks[1] is missing"), id="json-path-missing"),
        pytest.param({"json_path_equals": {"$.ok": True}}, 200, "<html>", 5, (FAIL, "body is not JSON"),
                     id="not-json"),
        pytest.param({}, 200, "{}", 700, (WARN, "latency 700 ms over warning 500 ms"), id="slow"),
        pytest.param({}, 200, "{}", 2500, (FAIL, "latency 2500 ms over critical 2000 ms"), id="too-slow"),
    ],
)
def test_judge_http(fields, status_code, body, latency, expected) -> None:
    assert judge_http(http_check(**fields), status_code, body, latency) == expected


@pytest.mark.parametrize(
    ("fields", "value", "status"),
    [
        pytest.param({"expected": 1}, 1.0, OK, id="expected-number"),
        pytest.param({"expected": "open"}, "closed", FAIL, id="expected-text"),
        pytest.param({"min": 1}, 0, FAIL, id="below-min"),
        pytest.param({"max": 26}, 25.5, OK, id="within-max"),
        pytest.param({"max": 26}, None, FAIL, id="no-value"),
        pytest.param({"min": 1, "max": 5}, "abc", FAIL, id="not-a-number"),
    ],
)
def test_judge_value(fields, value, status) -> None:
    check = SqlCheck.model_validate(
        {"id": "q", "kind": "sql", "conn_id": "estate_db", "query_file": "orders_last_day.sql", **fields}
    )
    assert judge_value(check, value)[0] == status


def set_app(base_url: str, app: str, **settings) -> None:
    request = urllib.request.Request(
        f"{base_url}/estate/apps/{app}", data=json.dumps(settings).encode(), method="PUT",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def probe(check: HttpCheck, url: str, headers: dict | None = None):
    async def run():
        async with client_session(10) as session:
            return await probe_http(session, "svc/health", check, url, headers or {})

    return asyncio.run(run())


def test_healthy_app_is_ok(estate) -> None:
    check = http_check(json_path_equals={"$.status": "ok"})
    result = probe(check, f"{estate.base_url}/estate/apps/payments-api/health")
    assert result.status == OK
    assert 0 < result.latency_ms < 500


def test_down_app_fails_with_its_status(estate) -> None:
    set_app(estate.base_url, "orders-api", status_code=503, body={"status": "down"})
    result = probe(http_check(), f"{estate.base_url}/estate/apps/orders-api/health")
    assert (result.status, result.detail) == (FAIL, "HTTP 503 (expected 200)")


def test_wrong_body_fails(estate) -> None:
    set_app(estate.base_url, "reporting", body={"status": "degraded"})
    result = probe(http_check(json_path_equals={"$.status": "ok"}), f"{estate.base_url}/estate/apps/reporting/health")
    assert (result.status, result.detail) == (FAIL, "$.status is 'degraded', expected 'ok'")


def test_slow_app_warns_with_measured_latency(estate) -> None:
    set_app(estate.base_url, "inventory-api", latency_ms=300)
    result = probe(http_check(latency_warning_ms=100, latency_critical_ms=2000),
                   f"{estate.base_url}/estate/apps/inventory-api/health")
    assert result.status == WARN
    assert 300 <= result.latency_ms < 1500


def test_slow_past_timeout_fails_without_waiting_it_out(estate) -> None:
    set_app(estate.base_url, "customer-portal", latency_ms=5000)
    started = datetime.now(UTC)
    result = probe(http_check(timeout_s=0.5), f"{estate.base_url}/estate/apps/customer-portal/health")
    assert (result.status, result.detail) == (FAIL, "no answer within 0.5 s")
    assert (datetime.now(UTC) - started).total_seconds() < 3


def test_dropped_connection_fails(estate) -> None:
    set_app(estate.base_url, "auth-gateway", drop_connection=True)
    result = probe(http_check(), f"{estate.base_url}/estate/apps/auth-gateway/health")
    assert result.status == FAIL
    assert "ServerDisconnected" in result.detail or "ClientOSError" in result.detail, result.detail


def test_refused_connection_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the probe: nothing listens there
    result = probe(http_check(), f"http://127.0.0.1:{port}/health")
    assert result.status == FAIL
    assert "ClientConnectorError" in result.detail


def test_headers_from_the_connection_are_sent(estate) -> None:
    result = probe(http_check(), f"{estate.base_url}/estate/apps/payments-api/health", {"X-Probe": "prep-support"})
    assert result.status == OK
    app = json.load(urllib.request.urlopen(f"{estate.base_url}/estate/apps/payments-api", timeout=10))
    assert app["last_headers"].get("x-probe") == "prep-support"


def test_tcp_listener_up_and_refused(estate) -> None:
    check = TcpCheck.model_validate({"id": "edi", "kind": "tcp", "host": "127.0.0.1", "port": estate.tcp_port})
    assert asyncio.run(probe_tcp("inv/edi", check, "127.0.0.1", estate.tcp_port)).status == OK
    request = urllib.request.Request(f"{estate.base_url}/estate/tcp", data=b'{"accepting": false}', method="PUT",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()
    result = asyncio.run(probe_tcp("inv/edi", check, "127.0.0.1", estate.tcp_port))
    assert result.status == FAIL
    assert "refused" in result.detail.lower()


def test_one_dead_endpoint_delays_nobody(estate) -> None:
    """Ten healthy probes and one that hangs finish in about the hung probe's timeout, not in series."""
    set_app(estate.base_url, "reporting", latency_ms=10_000)
    base = f"{estate.base_url}/estate/apps"
    checks = [(http_check(timeout_s=1), f"{base}/payments-api/health") for _ in range(10)]
    checks.append((http_check(timeout_s=1), f"{base}/reporting/health"))

    async def sweep():
        async with client_session(4) as session:
            return await run_bounded(
                [lambda c=c, u=u, i=i: probe_http(session, f"s/{i}", c, u, {}) for i, (c, u) in enumerate(checks)], 4
            )

    started = datetime.now(UTC)
    results = asyncio.run(sweep())
    elapsed = (datetime.now(UTC) - started).total_seconds()
    assert [r.status for r in results] == [OK] * 10 + [FAIL]
    assert elapsed < 2.5


def test_sql_check_evaluates_the_data_interval(sandbox) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{sandbox.estate_db}")
    check = SqlCheck.model_validate({"id": "volume", "kind": "sql", "conn_id": "estate_db",
                                     "query_file": "orders_last_day.sql", "min": 1})
    now = datetime.now(UTC)
    assert query_sql(engine, "orders/volume", check, now, now).status == OK
    # Five years ago there were no orders: the same check fails for that interval.
    past = now.replace(year=now.year - 5)
    result = query_sql(engine, "orders/volume", check, past, past)
    assert (result.status, result.detail) == (FAIL, "value 0 below minimum 1")


def test_sql_check_on_a_broken_database_is_a_failed_result(tmp_path) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    check = SqlCheck.model_validate({"id": "volume", "kind": "sql", "conn_id": "estate_db",
                                     "query_file": "orders_last_day.sql", "min": 1})
    result = query_sql(engine, "orders/volume", check, datetime.now(UTC), datetime.now(UTC))
    assert result.status == FAIL
    assert "no such table: orders" in result.detail
