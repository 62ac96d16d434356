"""The sandbox's sample estate, over real HTTP, TCP and SQLite against ``python -m sandbox``."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from sandbox.estate import SEEDED_APPS
from sandbox.server import SandboxError, SandboxProcess

TIMEOUT = 10


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(tmp_path_factory.mktemp("sandbox")) as process:
        yield process


@pytest.fixture(autouse=True)
def _fresh_estate(sandbox: SandboxProcess) -> None:
    response = requests.post(f"{sandbox.base_url}/estate/reset", timeout=TIMEOUT)
    assert response.status_code == 200


def get(sandbox: SandboxProcess, path: str) -> requests.Response:
    return requests.get(f"{sandbox.base_url}{path}", timeout=TIMEOUT)


def put(sandbox: SandboxProcess, path: str, payload: dict[str, object]) -> requests.Response:
    return requests.put(f"{sandbox.base_url}{path}", json=payload, timeout=TIMEOUT)


def tcp_greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        return conn.recv(64)


def test_ready_file_and_connection_env(sandbox: SandboxProcess) -> None:
    assert sandbox.base_url == f"http://127.0.0.1:{sandbox.http_port}"
    assert sandbox.http_port > 0 and sandbox.tcp_port > 0
    assert sandbox.estate_db.is_absolute() and sandbox.estate_db.name == "estate.db"
    env = sandbox.connection_env()
    assert json.loads(env["AIRFLOW_CONN_ESTATE_HTTP"]) == {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": sandbox.http_port,
        "schema": "http",
    }
    assert json.loads(env["AIRFLOW_CONN_ESTATE_TCP"]) == {
        "conn_type": "generic",
        "host": "127.0.0.1",
        "port": sandbox.tcp_port,
    }
    assert json.loads(env["AIRFLOW_CONN_ESTATE_DB"]) == {"conn_type": "sqlite", "host": str(sandbox.estate_db)}
    assert {"estate", "slack", "jira", "servicenow", "teams"} <= set(get(sandbox, "/").json()["systems"])


def test_seeded_apps_are_listed_with_defaults(sandbox: SandboxProcess) -> None:
    apps = get(sandbox, "/estate/apps").json()["apps"]
    assert [app["id"] for app in apps] == [
        "payments-api",
        "orders-api",
        "customer-portal",
        "reporting",
        "inventory-api",
        "auth-gateway",
    ]
    assert apps[0] == {
        "id": "payments-api",
        "latency_ms": 5,
        "status_code": 200,
        "body": {"status": "ok", "app": "payments-api", "version": "1.0.0"},
        "drop_connection": False,
        "hits": 0,
        "last_headers": {},
    }


def test_health_answers_default_body_and_counts_hits(sandbox: SandboxProcess) -> None:
    for _ in range(3):
        response = get(sandbox, "/estate/apps/orders-api/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "app": "orders-api", "version": "1.0.0"}
    assert get(sandbox, "/estate/apps/orders-api").json()["hits"] == 3
    listed = {app["id"]: app["hits"] for app in get(sandbox, "/estate/apps").json()["apps"]}
    assert listed["orders-api"] == 3 and listed["reporting"] == 0


def test_settings_are_reflected_in_the_health_answer(sandbox: SandboxProcess) -> None:
    body = {"status": "degraded", "queue_depth": 1234}
    updated = put(sandbox, "/estate/apps/reporting", {"latency_ms": 400, "status_code": 503, "body": body})
    assert updated.status_code == 200
    assert updated.json() | {"hits": 0, "last_headers": {}} == {
        "id": "reporting",
        "latency_ms": 400,
        "status_code": 503,
        "body": body,
        "drop_connection": False,
        "hits": 0,
        "last_headers": {},
    }
    started = time.monotonic()
    response = get(sandbox, "/estate/apps/reporting/health")
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 503
    assert response.json() == body


def test_partial_update_keeps_other_settings_and_null_restores_default(sandbox: SandboxProcess) -> None:
    put(sandbox, "/estate/apps/auth-gateway", {"status_code": 500, "body": {"error": "boom"}})
    app = put(sandbox, "/estate/apps/auth-gateway", {"body": None}).json()
    assert app["status_code"] == 500
    assert app["body"] == {"status": "ok", "app": "auth-gateway", "version": "1.0.0"}
    assert get(sandbox, "/estate/apps/auth-gateway/health").status_code == 500


def test_put_creates_a_new_app(sandbox: SandboxProcess) -> None:
    created = put(sandbox, "/estate/apps/billing-batch", {"latency_ms": 0})
    assert created.status_code == 200
    assert created.json()["body"] == {"status": "ok", "app": "billing-batch", "version": "1.0.0"}
    assert get(sandbox, "/estate/apps/billing-batch/health").json()["app"] == "billing-batch"
    assert len(get(sandbox, "/estate/apps").json()["apps"]) == 7


def test_unknown_app_is_404(sandbox: SandboxProcess) -> None:
    for path in ("/estate/apps/nope/health", "/estate/apps/nope"):
        response = get(sandbox, path)
        assert response.status_code == 404
        assert response.json() == {"error": "unknown app nope"}


def test_drop_connection_disconnects_without_answer(sandbox: SandboxProcess) -> None:
    put(sandbox, "/estate/apps/payments-api", {"drop_connection": True})
    with pytest.raises(requests.ConnectionError, match="without response"):
        get(sandbox, "/estate/apps/payments-api/health")
    with socket.create_connection(("127.0.0.1", sandbox.http_port), timeout=TIMEOUT) as conn:
        conn.sendall(b"GET /estate/apps/payments-api/health HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        assert conn.recv(1024) == b""
    assert get(sandbox, "/estate/apps/payments-api").json()["hits"] == 2
    put(sandbox, "/estate/apps/payments-api", {"drop_connection": False})
    assert get(sandbox, "/estate/apps/payments-api/health").status_code == 200


def test_unknown_setting_is_refused_naming_the_field(sandbox: SandboxProcess) -> None:
    response = put(sandbox, "/estate/apps/payments-api", {"latency": 50})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "latency"]
    assert error["type"] == "extra_forbidden"
    assert get(sandbox, "/estate/apps/payments-api").json()["latency_ms"] == 5


def test_invalid_setting_value_is_refused(sandbox: SandboxProcess) -> None:
    response = put(sandbox, "/estate/apps/payments-api", {"latency_ms": -1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "latency_ms"]


def test_bulk_creates_numbered_apps(sandbox: SandboxProcess) -> None:
    response = requests.post(
        f"{sandbox.base_url}/estate/apps/bulk",
        json={"prefix": "bench", "count": 1000, "latency_ms": 50},
        timeout=TIMEOUT,
    )
    assert response.json() == {"created": 1000}
    apps = {app["id"]: app for app in get(sandbox, "/estate/apps").json()["apps"]}
    bench = sorted(app_id for app_id in apps if app_id.startswith("bench-"))
    assert len(apps) == 1006
    assert bench == [f"bench-{index:04d}" for index in range(1000)]
    assert bench[0] == "bench-0000" and bench[-1] == "bench-0999"
    assert {apps[app_id]["latency_ms"] for app_id in bench} == {50}
    assert get(sandbox, "/estate/apps/bench-0999/health").json()["app"] == "bench-0999"


def test_reset_restores_the_seeded_estate(sandbox: SandboxProcess) -> None:
    put(sandbox, "/estate/apps/payments-api", {"status_code": 500})
    put(sandbox, "/estate/apps/extra", {})
    put(sandbox, "/estate/tcp", {"accepting": False})
    response = requests.post(f"{sandbox.base_url}/estate/reset", timeout=TIMEOUT)
    assert response.json() == {"apps": 6, "tcp": {"port": sandbox.tcp_port, "accepting": True}}
    apps = get(sandbox, "/estate/apps").json()["apps"]
    assert [app["id"] for app in apps] == list(SEEDED_APPS)
    assert {app["status_code"] for app in apps} == {200}
    assert tcp_greeting(sandbox.tcp_port) == b"READY\n"


def test_tcp_port_toggles_between_accepting_and_refusing(sandbox: SandboxProcess) -> None:
    assert get(sandbox, "/estate/tcp").json() == {"port": sandbox.tcp_port, "accepting": True}
    assert tcp_greeting(sandbox.tcp_port) == b"READY\n"

    refused = put(sandbox, "/estate/tcp", {"accepting": False})
    assert refused.json() == {"port": sandbox.tcp_port, "accepting": False}
    with pytest.raises(ConnectionRefusedError):
        tcp_greeting(sandbox.tcp_port)

    accepting = put(sandbox, "/estate/tcp", {"accepting": True})
    assert accepting.json() == {"port": sandbox.tcp_port, "accepting": True}
    assert tcp_greeting(sandbox.tcp_port) == b"READY\n"


@pytest.fixture(scope="module")
def estate_db(sandbox: SandboxProcess) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{sandbox.estate_db}?mode=ro", uri=True)
    yield conn
    conn.close()


def scalar(conn: sqlite3.Connection, sql: str) -> object:
    return conn.execute(sql).fetchone()[0]


def test_estate_db_has_the_tables(estate_db: sqlite3.Connection) -> None:
    tables = {row[0] for row in estate_db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"batch_runs", "orders", "customers"}
    columns = {table: [row[1] for row in estate_db.execute(f"PRAGMA table_info({table})")] for table in sorted(tables)}
    assert columns == {
        "batch_runs": ["id", "job", "started_at", "finished_at", "status"],
        "customers": ["id", "email", "country"],
        "orders": ["id", "customer_id", "amount", "currency", "status", "created_at"],
    }


def test_estate_db_batch_runs_are_nightly_for_ten_days(estate_db: sqlite3.Connection) -> None:
    runs = estate_db.execute("SELECT job, started_at, finished_at, status FROM batch_runs ORDER BY id").fetchall()
    assert len(runs) == 10
    assert {(job, status) for job, _, _, status in runs} == {("nightly_settlement", "success")}
    starts = [datetime.strptime(started, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for _, started, _, _ in runs]
    assert all(start.strftime("%H:%M:%S") == "01:00:00" for start in starts)
    assert all(finished.endswith(" 01:30:00") for _, _, finished, _ in runs)
    assert [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)] == [timedelta(days=1)] * 9
    now = datetime.now(UTC)
    latest_finish = starts[-1] + timedelta(minutes=30)
    assert latest_finish <= now < latest_finish + timedelta(days=1)


def test_estate_db_orders_carry_the_known_issues(estate_db: sqlite3.Connection) -> None:
    assert scalar(estate_db, "SELECT COUNT(*) FROM orders") == 200
    assert scalar(estate_db, "SELECT COUNT(*) FROM customers") == 50
    assert scalar(estate_db, "SELECT COUNT(*) FROM orders WHERE customer_id IS NULL") == 4
    assert scalar(estate_db, "SELECT COUNT(*) FROM orders WHERE amount < 0") == 3
    bad_currencies = estate_db.execute(
        "SELECT currency FROM orders WHERE currency NOT IN ('EUR', 'USD', 'GBP') ORDER BY currency"
    ).fetchall()
    assert bad_currencies == [("JPY",), ("XXX",), ("usd",)]
    duplicates = estate_db.execute(
        "SELECT customer_id, created_at, COUNT(*) FROM orders GROUP BY customer_id, created_at HAVING COUNT(*) > 1"
    ).fetchall()
    assert len(duplicates) == 2 and {count for _, _, count in duplicates} == {2}
    orphans = estate_db.execute(
        "SELECT o.customer_id FROM orders o LEFT JOIN customers c ON c.id = o.customer_id "
        "WHERE o.customer_id IS NOT NULL AND c.id IS NULL ORDER BY o.customer_id"
    ).fetchall()
    assert orphans == [(901,), (902,), (903,)]
    oldest, newest = estate_db.execute("SELECT MIN(created_at), MAX(created_at) FROM orders").fetchone()
    now = datetime.now(UTC).replace(tzinfo=None)
    assert now - timedelta(days=10) <= datetime.fromisoformat(oldest) <= datetime.fromisoformat(newest) <= now


def test_sandbox_process_stops_cleanly_and_reports_a_failed_start(sandbox: SandboxProcess, tmp_path: Path) -> None:
    with SandboxProcess(tmp_path / "second") as second:
        assert get(second, "/estate/apps").status_code == 200
        assert second.ready_file.exists()
    assert second.returncode == 0
    assert not second.ready_file.exists()

    with pytest.raises(SandboxError, match=f"cannot listen on 127.0.0.1:{sandbox.http_port}"):
        SandboxProcess(tmp_path / "clash", port=sandbox.http_port).start()
