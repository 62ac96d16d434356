"""The support dashboard against a seeded support database (SQLite, and PostgreSQL when it is up): health,
incidents with their links, maintenance windows, charts with one point per hour, escaping of everything
that comes from config or trackers, and the plugin as Airflow's plugins manager sees it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url

from prep_support.dashboard.app import create_app
from prep_support.dashboard.charts import HourlySeries, availability_chart, latency_chart, nice_ceiling
from prep_support.dashboard.database import read, read_together, reader_engine
from prep_support.dashboard.queries import HourPoint
from prep_support.dashboard.render import percent, safe_url
from prep_support.migrate import upgrade
from prep_support.results import upsert
from prep_support.schema import (
    CheckHourlyRow,
    CheckRow,
    CheckStateRow,
    IncidentRow,
    MaintenanceWindowRow,
    ServiceRow,
    ServiceStateRow,
)

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
EVIL_NAME = '<script>alert("name")</script> Billing'
EVIL_DETAIL = '"><img src=x onerror=alert("detail")>'
EVIL_KEY = "<script>alert('key')</script>"
EVIL_EVIDENCE = '<script>alert("evidence")</script>'
EVIL_URL = "javascript:alert(document.cookie)"


class Client:
    """Requests to an ASGI app in-process (httpx's ASGI transport; Starlette's TestClient is deprecated)."""

    def __init__(self, app, cookies: dict[str, str] | None = None) -> None:
        self.app = app
        self.cookies = cookies or {}

    def get(self, path: str) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.test",
                                         cookies=self.cookies) as client:
                return await client.get(path)

        return asyncio.run(call())


def airflow_api_warnings_ignored(test):
    """Airflow's API server app imports svcs, which imports Starlette's deprecated test client; the session's
    generated JWT secret is shorter than PyJWT recommends."""
    test = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")(test)
    return pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")(test)


@pytest.fixture(scope="module")
def airflow_session(airflow_db) -> dict[str, str]:
    """The cookie a logged-in Airflow UI user's browser sends: a JWT from the configured auth manager (its
    validation looks up revoked tokens in Airflow's metadata database)."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = init_auth_manager().generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))
    return {COOKIE_NAME_JWT_TOKEN: token}


def _service(id_: str, name: str, criticality: str = "high", active: bool = True) -> dict:
    return {"id": id_, "name": name, "owner": "support@example.com", "team_channel": "#support",
            "tracker_project": "OPS", "criticality": criticality, "depends_on": [], "active": active,
            "updated_at": NOW}


def _check(key: str, critical: bool = True) -> dict:
    return {"id": key, "service_id": key.split("/")[0], "kind": "http", "active": True, "updated_at": NOW,
            "definition": {"id": key.split("/")[1], "kind": "http", "critical": critical, "url": "https://x/health"}}


def _state(key: str, state: str, cause: str = "", detail: str = "") -> dict:
    return {"check_id": key, "state": state, "cause": cause, "detail": detail, "since": NOW - 2 * HOUR,
            "failures": 0, "problems": 0, "successes": 0, "flapping": False, "changes": [], "regression_streak": 0,
            "baseline_hours": 0, "updated_at": NOW}


def _incident(key: str, ticket: str | None, url: str | None, evidence: str, status: str = "open",
              priority: str = "High", state: str = "down") -> dict:
    service, check, kind = key.split("/")
    return {"dedup_key": key, "service_id": service, "check_id": f"{service}/{check}", "kind": kind,
            "status": status, "state": state, "priority": priority, "tracker": "jira", "ticket_key": ticket,
            "ticket_url": url, "evidence": evidence, "updates": 0, "opened_run_id": "scheduled__1",
            "opened_at": NOW - 3 * HOUR, "updated_at": NOW}


def _hours(key: str, hours: list[int], failures: dict[int, int] | None = None, p50: float = 40.0,
           p95: float = 90.0) -> list[dict]:
    """Rollups of ``key`` for the hours ``NOW's hour - h`` (12 results each)."""
    failures = failures or {}
    current = NOW.replace(minute=0)
    return [{"check_id": key, "hour": current - h * HOUR, "results": 12, "failures": failures.get(h, 0),
             "latency_count": 12, "latency_sum_ms": 12 * p50, "latency_p50_ms": p50 + h % 3,
             "latency_p95_ms": p95 + h % 5, "latency_max_ms": p95 + 10} for h in hours]


def seed_support_db(engine: Engine) -> None:
    """A small estate around NOW: orders-api down (ORD-1), payments degraded with an incident linked to
    ORD-1, billing with hostile text from config and tracker, reporting never evaluated, legacy retired."""
    week = list(range(0, 8 * 24))  # 8 days of hours up to the hour in progress
    gappy = [h for h in week if h not in (5, 6, 7, 9)]  # hour 8 has no neighbour: an isolated point
    tables = [
        (ServiceRow, [_service("orders-api", "Orders API", "critical"), _service("payments", "Payments"),
                      _service("billing", EVIL_NAME), _service("reporting", "Reporting", "low"),
                      _service("legacy", "Legacy", active=False)]),
        (CheckRow, [_check("orders-api/health"), _check("orders-api/listener"),
                    _check("orders-api/latency", critical=False), _check("payments/health"),
                    _check("billing/health"), _check("reporting/nightly"), _check("legacy/health")]),
        (CheckStateRow, [_state("orders-api/health", "down", "availability", "HTTP 503 Service Unavailable"),
                         _state("orders-api/listener", "ok", "", "connected in 3 ms"),
                         _state("orders-api/latency", "ok", "", "HTTP 200 in 41 ms"),
                         _state("payments/health", "degraded", "performance",
                                "p95 812 ms over the last hour vs 64 ms 7-day baseline"),
                         _state("billing/health", "ok", "", EVIL_DETAIL)]),
        (ServiceStateRow, [{"service_id": s, "state": st, "since": NOW - 2 * HOUR, "updated_at": NOW}
                           for s, st in (("orders-api", "down"), ("payments", "degraded"), ("billing", "ok"))]),
        (IncidentRow, [_incident("orders-api/health/availability", "ORD-1", "https://jira.example.com/browse/ORD-1",
                                 "3 consecutive failures: HTTP 503", priority="Highest"),
                       _incident("payments/health/performance", "PAY-7", "https://jira.example.com/browse/PAY-7",
                                 "p95 812 ms", state="degraded"),
                       _incident("billing/health/availability", EVIL_KEY, EVIL_URL, EVIL_EVIDENCE),
                       _incident("orders-api/listener/availability", "ORD-0", "https://jira.example.com/browse/ORD-0",
                                 "refused", status="resolved")]),
        (MaintenanceWindowRow, [
            {"key": "chg-active", "service_ids": ["billing"], "starts_at": NOW - HOUR, "ends_at": NOW + 2 * HOUR,
             "reason": "Database upgrade", "created_by": "ana", "created_at": NOW},
            {"key": "chg-upcoming", "service_ids": ["payments"], "starts_at": NOW + 24 * HOUR,
             "ends_at": NOW + 27 * HOUR, "reason": "Certificate rotation", "created_by": "ben", "created_at": NOW},
            {"key": "chg-past", "service_ids": ["orders-api"], "starts_at": NOW - 30 * HOUR,
             "ends_at": NOW - 26 * HOUR, "reason": "Old work", "created_by": "cy", "created_at": NOW},
        ]),
        (CheckHourlyRow, _hours("orders-api/health", week, failures={0: 2, 1: 12, 30: 6})
         + _hours("orders-api/listener", week)
         + _hours("orders-api/latency", week, failures={0: 12}, p95=400.0)  # not critical: never unavailable
         + _hours("payments/health", gappy, p95=300.0)),
    ]
    with engine.begin() as connection:
        for model, rows in tables:
            connection.execute(insert(model.__table__), rows)
        ord_1 = connection.execute(text("SELECT id FROM incidents WHERE ticket_key = 'ORD-1'")).scalar_one()
        connection.execute(text("UPDATE incidents SET upstream_incident_id = :id WHERE ticket_key = 'PAY-7'"),
                           {"id": ord_1})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dashboard_db(request, tmp_path_factory) -> Engine:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'support.db'}")
    else:
        engine = create_engine(request.getfixturevalue("postgres_url"))
        with engine.begin() as connection:  # the session's database: start from an empty schema
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)
    seed_support_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(dashboard_db) -> Client:
    return Client(create_app(lambda: dashboard_db, clock=lambda: NOW))


def points_of(svg: str, series: str) -> list[str]:
    group = re.search(rf'<g class="series[^"]*" data-series="{series}"[^>]*>(.*?)</g>', svg, re.S)
    assert group, f"no {series} series"
    coordinates = [pair for line in re.findall(r'points="([^"]*)"', group.group(1)) for pair in line.split()]
    return coordinates + re.findall(r"<circle ", group.group(1))


def test_overview_shows_health_incidents_and_windows(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no script
    page = response.text
    for name in ("Orders API", "Payments", "Reporting"):
        assert f">{name}</a>" in page
    assert "Legacy" not in page  # retired
    # Worst first: orders-api (down) before payments (degraded) before reporting (never evaluated).
    assert page.index('href="services/orders-api"') < page.index('href="services/payments"') \
        < page.index('href="services/reporting"')
    assert "HTTP 503 Service Unavailable" in page and "p95 812 ms over the last hour" in page
    assert "1 check &middot; 1 not evaluated" in page  # reporting/nightly has no state yet
    assert '<a href="https://jira.example.com/browse/ORD-1" rel="noopener noreferrer" target="_blank">ORD-1</a>' in page
    assert "ORD-0" not in page  # resolved
    ord_1 = re.search(r'<tr id="incident-(\d+)">\s*<td><a href="https://jira.example.com/browse/ORD-1"', page)
    assert ord_1, "ORD-1 has its row anchor"
    assert f'<a href="#incident-{ord_1.group(1)}">orders-api/health/availability</a>' in page  # PAY-7's upstream
    assert "Database upgrade" in page and "Certificate rotation" in page and "Old work" not in page
    assert page.count('<span class="tag">active</span>') == 1 and page.count('<span class="tag">upcoming</span>') == 1
    assert re.search(r'services/billing">[^<]*</a> <span class="muted">[^<]*</span> <span class="tag">in '
                     r"maintenance</span>", page)


def test_service_page_has_charts_with_one_point_per_hour(client) -> None:
    page = client.get("/services/orders-api").text
    charts = re.findall(r"<figure class=\"chart\">.*?</figure>", page, re.S)
    titles = [re.search(r"<figcaption>(.*?)</figcaption>", chart).group(1) for chart in charts]
    assert titles == ["Latency, last 24 hours", "Availability, last 24 hours", "Latency, last 7 days",
                      "Availability, last 7 days"]
    day_latency, day_availability, week_latency, week_availability = charts
    assert len(points_of(day_latency, "p95")) == len(points_of(day_latency, "p50")) == 24
    assert len(points_of(day_availability, "availability")) == 24
    assert len(points_of(week_latency, "p95")) == len(points_of(week_latency, "p50")) == 168
    assert len(points_of(week_availability, "availability")) == 168
    assert 'data-points="168"' in week_availability
    assert "HTTP 503 Service Unavailable" in page and "connected in 3 ms" in page  # every check's detail
    assert "ORD-1" in page and "PAY-7" not in page  # this service's incidents only
    assert "No maintenance windows active or planned." in page  # the past one is over


@pytest.mark.parametrize(("service", "windows", "silenced"), [("billing", ["chg-active"], True),
                                                              ("payments", ["chg-upcoming"], False)])
def test_service_page_shows_its_own_windows(client, service, windows, silenced) -> None:
    body = client.get(f"/api/services/{service}").json()
    assert [window["key"] for window in body["maintenance_windows"]] == windows
    assert body["service"]["in_maintenance"] is silenced


def test_gaps_split_the_lines(client) -> None:
    week = re.findall(r"<figure class=\"chart\">.*?</figure>", client.get("/services/payments").text, re.S)[2]
    group = re.search(r'data-series="p95"[^>]*>(.*?)</g>', week, re.S).group(1)
    # Hours 9 and 7-5 before now have no rollup: a line up to hour 10, hour 8 alone (a dot), then hours 4-0.
    assert [len(line.split()) for line in re.findall(r'points="([^"]*)"', group)] == [158, 5]
    assert len(re.findall(r"<circle ", group)) == 1


def test_availability_counts_critical_checks_only(client) -> None:
    body = client.get("/api/services/orders-api").json()
    hours = {hour["hour"]: hour for hour in body["history"]["hours"]}
    assert len(hours) == 168
    last = hours[NOW.replace(minute=0).isoformat()]
    # health 2 of 12 failed, listener 0 of 12; the non-critical latency check's 12 failures do not count.
    assert (last["results"], last["failures"]) == (24, 2)
    assert last["availability_pct"] == pytest.approx(100 * 22 / 24)
    assert last["p95_ms"] == 400.0  # the slowest check's p95
    checks = {check["check_id"]: check for check in body["service"]["checks"]}
    assert checks["orders-api/latency"]["availability_24h_pct"] == pytest.approx(100 * (24 * 12 - 12) / (24 * 12))
    assert checks["orders-api/health"]["state"] == "down"


def test_overview_json_matches_the_page(client) -> None:
    body = client.get("/api/overview").json()
    assert body["generated_at"] == NOW.isoformat()
    services = {service["id"]: service for service in body["services"]}
    assert list(services) == ["orders-api", "payments", "reporting", "billing"]
    assert services["orders-api"]["checks"] == {"total": 3, "ok": 2, "degraded": 0, "down": 1, "unknown": 0,
                                                "flapping": 0}
    assert services["billing"]["in_maintenance"] is True
    assert services["reporting"]["last_24h"]["availability_pct"] is None
    assert [c["check_id"] for c in body["checks_needing_attention"]] == ["orders-api/health", "payments/health"]
    incidents = {incident["ticket_key"]: incident for incident in body["incidents"]}
    assert incidents["PAY-7"]["upstream"]["ticket_key"] == "ORD-1"
    assert [w["key"] for w in body["maintenance_windows"]] == ["chg-active", "chg-upcoming"]


def test_hostile_text_is_escaped_and_only_http_links_are_made(client) -> None:
    for path in ("/", "/services/billing"):
        page = client.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "javascript:" not in page.lower()  # neither as a link nor as text
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt; Billing" in page
        if path == "/":
            assert "&lt;script&gt;alert(&#34;evidence&#34;)&lt;/script&gt;" in page
            assert "<td>&lt;script&gt;alert(&#39;key&#39;)&lt;/script&gt;</td>" in page  # the key, not linked
        else:
            assert "&#34;&gt;&lt;img src=x onerror=alert(&#34;detail&#34;)&gt;" in page
    incident = next(i for i in client.get("/api/overview").json()["incidents"] if i["ticket_key"] == EVIL_KEY)
    assert incident["ticket_url"] is None and incident["evidence"] == EVIL_EVIDENCE


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        pytest.param("https://jira.example.com/browse/ORD-1", True, id="https"),
        pytest.param("HTTP://tracker.example.com/x?a=1&b=2", True, id="http-upper"),
        pytest.param("javascript:alert(1)", False, id="javascript"),
        pytest.param("  JavaScript:alert(1)", False, id="javascript-spaces-case"),
        pytest.param("java\tscript:alert(1)", False, id="javascript-tab"),
        pytest.param("data:text/html,<script>alert(1)</script>", False, id="data"),
        pytest.param("vbscript:msgbox(1)", False, id="vbscript"),
        pytest.param("//evil.example.com/x", False, id="scheme-relative"),
        pytest.param("/browse/ORD-1", False, id="relative"),
        pytest.param("https://", False, id="no-host"),
        pytest.param("http://[::1/x", False, id="malformed"),
        pytest.param("", False, id="empty"),
        pytest.param(None, False, id="none"),
    ],
)
def test_safe_url(url, allowed) -> None:
    assert (safe_url(url) is not None) is allowed


def test_percentages_are_truncated_like_the_weekly_report() -> None:
    assert [percent(v) for v in (None, 100.0, 99.996, 100 * 22 / 24, 99.99)] == [
        "no data", "100.00 %", "99.99 %", "91.66 %", "99.99 %"]


def test_a_connection_the_server_dropped_is_replaced(postgres_url) -> None:
    """The reading pool does not ping before each use: a dropped connection fails once and is replaced."""
    engine = reader_engine(make_url(postgres_url), pool_size=1)
    attempts = []

    def backend(connection) -> int:
        attempts.append(connection)
        assert connection.connection.dbapi_connection.autocommit  # no BEGIN/ROLLBACK round trips
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()

    first = read(engine, backend)
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        for _ in range(100):
            if not connection.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": first}).first():
                break
            time.sleep(0.05)
    attempts.clear()
    assert read(engine, backend) != first
    assert len(attempts) == 2  # the dead connection, then a fresh one
    engine.dispose()
    admin.dispose()


def test_a_pages_groups_of_statements_run_at_once_on_their_own_connections(postgres_url) -> None:
    engine = reader_engine(make_url(postgres_url), pool_size=2)
    both_running = threading.Barrier(2, timeout=10)  # broken (an error) unless the two loads overlap

    def load(number: int):
        def run(connection) -> tuple[int, int]:
            both_running.wait()
            return number, connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return run

    (first, first_pid), (second, second_pid) = read_together(engine, load(1), load(2))
    assert (first, second) == (1, 2) and first_pid != second_pid

    def broken(connection) -> None:
        connection.execute(text("SELECT * FROM no_such_table"))

    def slow(connection) -> None:
        connection.execute(text("SELECT pg_sleep(0.2)"))

    for loads in ((slow, broken), (broken, slow)):  # the failing group on a reader thread, then on the caller's
        with pytest.raises(Exception, match="no_such_table"):
            read_together(engine, *loads)
    assert engine.pool.checkedout() == 0  # nothing left reading behind a failed page
    engine.dispose()


def test_unknown_service_is_a_404(client) -> None:
    assert client.get("/services/nope").status_code == 404
    response = client.get("/services/%3Cscript%3Ealert(1)%3C%20script%3E")
    assert response.status_code == 404 and "<script>" not in response.text and "&lt;script&gt;" in response.text
    assert client.get("/api/services/nope").status_code == 404


def test_chart_geometry() -> None:
    start = NOW.replace(minute=0) - 5 * HOUR
    history = [HourPoint(start + n * HOUR, 10, failures, 40.0, 90.0 + n)
               for n, failures in ((0, 0), (1, 5), (3, 0), (4, 0))]
    series = HourlySeries.of(history, start, 6)
    assert series.availability_pct == [100.0, 50.0, None, 100.0, 100.0, None]
    latency = latency_chart(series, "Latency")
    p95 = latency.series[0]
    assert (p95.points, len(p95.lines), p95.dots) == (4, 2, ())
    assert latency.y_labels[-1][1] == "100 ms"  # the axis top rounded up from 94
    availability = availability_chart(series.last(3), "Availability")
    assert availability.series[0].points == 2 and availability.y_labels[0][1] == "90 %"
    assert [nice_ceiling(v) for v in (0, 0.3, 94, 100, 101, 4500)] == [1.0, 0.5, 100, 100, 200, 5000]
    empty = latency_chart(HourlySeries.of([], start, 24), "Latency")
    assert empty.empty


def test_importing_the_plugin_builds_nothing() -> None:
    """The plugins manager imports the plugin in every Airflow process: no app, no hook, no engine then."""
    code = ("import sys, support_dashboard; "
            "assert not support_dashboard.dashboard_app.built; "
            "loaded = [m for m in ('prep_support.dashboard.app', 'prep_support.dashboard.queries', 'hooks.database') "
            "if m in sys.modules]; "
            "assert not loaded, loaded")
    plugins = Path(sys.modules["prep_support"].__file__).parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=plugins,
                   env={**os.environ, "PYTHONPATH": str(plugins)})


@airflow_api_warnings_ignored
def test_the_app_is_built_and_the_connection_read_on_the_first_request(support_engine, airflow_session) -> None:
    import support_dashboard

    from prep_support.dashboard.lazy import LazyASGIApp

    upsert(support_engine, ServiceRow.__table__, [_service("dash-lazy-probe", "Lazy probe")], ["id"])
    app = LazyASGIApp(support_dashboard.build_dashboard)
    assert not app.built
    body = Client(app, airflow_session).get("/api/overview").json()
    assert app.built
    assert "dash-lazy-probe" in {service["id"] for service in body["services"]}  # through the support_db Connection


@airflow_api_warnings_ignored
def test_airflow_discovers_the_plugin_with_its_app_and_external_view(support_engine, airflow_session) -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse, FastAPIAppResponse
    from fastapi import FastAPI

    apps, _ = plugins_manager.get_fastapi_plugins()
    ours = [app for app in apps if app["url_prefix"] == "/support-dashboard"]
    assert len(ours) == 1 and type(ours[0]["app"]).__name__ == "LazyASGIApp"
    info = next(p for p in plugins_manager.get_plugin_info() if p["name"] == "prep_support_dashboard")
    assert str(info["source"]) == "$PLUGINS_FOLDER/support_dashboard.py"
    FastAPIAppResponse.model_validate(info["fastapi_apps"][0])
    (view,) = info["external_views"]
    assert ExternalViewResponse.model_validate(view).href == "support-dashboard/"
    assert (view["url_route"], view["destination"], view["category"]) == ("support-dashboard", "nav", "browse")
    assert not [path for path in plugins_manager.get_import_errors() if "support_dashboard" in path]

    api = FastAPI()
    init_plugins(api)  # what Airflow's API server does with every plugin's fastapi_apps
    assert Client(api).get("/support-dashboard/").status_code == 401  # Airflow's login comes first
    assert Client(api, {"_token": "forged"}).get("/support-dashboard/api/overview").status_code == 403
    response = Client(api, airflow_session).get("/support-dashboard/")
    assert response.status_code == 200 and "Prep Support" in response.text


def test_the_plugins_manager_does_not_import_the_dashboard_modules() -> None:
    """The manager imports every .py under plugins/; the package's .airflowignore keeps FastAPI and Jinja
    out of the scheduler and workers."""
    from airflow._shared.module_loading import find_path_from_directory

    plugins = Path(sys.modules["prep_support"].__file__).parents[1]
    found = {Path(path).relative_to(plugins).as_posix() for path in find_path_from_directory(plugins, ".airflowignore")}
    assert "support_dashboard.py" in found
    assert not [path for path in found if path.startswith("prep_support/dashboard/")]


def _dq(suite: str, check: str, day: datetime, success: bool, severity: str = "fail", sample=None) -> dict:
    return {"suite_id": suite, "check_id": check, "interval_start": day, "interval_end": day + timedelta(days=1),
            "expectation": "expect_column_values_to_not_be_null", "severity": severity, "success": success,
            "observed_value": None, "unexpected_count": 0 if success else 3, "element_count": 40,
            "unexpected_percent": 0.0 if success else 7.5, "details": {},
            "sample": sample or {"columns": [], "rows": []}, "run_id": "r", "evaluated_at": day + timedelta(days=1)}


def test_calendar_strip_shows_each_suites_days_and_links_failing_ones_to_their_results(dashboard_db, client) -> None:
    from prep_support.schema import QualityResultRow

    first = datetime(2026, 11, 10, 2, tzinfo=UTC)  # days 11-10 .. 11-17 run; 11-18 .. 11-20 not run
    rows = [_dq("strip_demo", "not_null.customer_id", first + timedelta(days=n), n not in (2, 5)) for n in range(8)]
    rows.append(_dq("strip_demo", "status_known", first, False, severity="warn"))  # a warning is not a failed day
    rows[5]["sample"] = {"columns": ["id", "customer_id"], "rows": [[17, None], [18, EVIL_DETAIL]]}
    upsert(dashboard_db, QualityResultRow.__table__, rows, ["suite_id", "check_id", "interval_start"])

    page = client.get("/").text
    strip = re.search(r'<tr id="quality-strip_demo">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'class="day day-([a-z-]+)"[^>]*data-day="([0-9-]+)"', strip)
    assert len(cells) == 30 and cells[-1] == ("not-run", "2026-11-20") and cells[0][1] == "2026-10-22"
    by_day = dict((day, status) for status, day in cells)
    assert [by_day[f"2026-11-{d}"] for d in range(10, 21)] == [
        "pass", "pass", "fail", "pass", "pass", "fail", "pass", "pass", "not-run", "not-run", "not-run"]
    links = re.findall(r'<a class="day day-fail" href="([^"]+)"', strip)
    assert links == ["quality/strip_demo/2026-11-12", "quality/strip_demo/2026-11-15"]
    assert re.search(r'<td class="num">2</td>', strip), "two failing days"

    day = client.get("/" + links[1])
    assert day.status_code == 200
    assert "Data quality: strip_demo on 2026-11-15" in day.text
    assert "3 of 40 (7.50%)" in day.text and "<td>NULL</td>" in day.text
    assert EVIL_DETAIL not in day.text, "sample values are escaped"
    assert client.get("/quality/strip_demo/2026-13-01").status_code == 404
    assert client.get("/quality/no_such_suite/2026-11-15").status_code == 404
