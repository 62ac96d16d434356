"""Benchmark the support dashboard: each page against the bare SQL of the rows it shows.

A throwaway PostgreSQL database (127.0.0.1:5432, user postgres; dropped at the end) is migrated with
``prep_support.migrate.upgrade`` and seeded server-side: 1,000 checks in 100 services, 30 days of
5-minute results in ``check_results`` (8.64 million rows, ``generate_series``), their hourly rollups
in ``check_hourly`` (one ``INSERT ... SELECT ... GROUP BY`` over the raw rows, ``percentile_cont`` for
p50/p95, as ``prep_support.monitoring`` keeps them), check and service states, open and resolved
incidents (some linked to an upstream incident) and maintenance windows (past, active, upcoming).

Pages are requested in-process through ``httpx.ASGITransport`` (no sockets) from two apps: the plugin's
own (``plugins/support_dashboard.py``: the engine from the ``support_db`` Connection through
DatabaseHook) as Airflow's ``init_plugins`` mounts it under ``/support-dashboard``, with a viewer's
session cookie, so Airflow's auth check runs (JWT validation and a revoked-token lookup in the metadata
database, a second throwaway PostgreSQL database here); and the dashboard app alone, without that check. Each page is
timed against the same SQLAlchemy statements it runs, compiled once and executed on a raw psycopg2
cursor with ``fetchall`` (no pool, no row processing, no rendering) in the same process, interleaved,
median of ``--repeat``. Target: page / bare SQL <= 1.5.

Also shown, for scale: the service page's 7-day history computed from raw results instead of the
rollups, the per-request scan the rollups avoid.

Run with ``python bench/dashboard.py`` (about 5 minutes, mostly seeding), or ``--small`` (100 checks,
8 days) for a quick run that checks the harness: there the SQL takes a couple of milliseconds, so the
fixed cost of a request (ASGI, thread pool, pool checkout) weighs more and the ratios are not the target's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.mkdtemp(prefix="prep-bench-dashboard-"))
os.environ.update(
    AIRFLOW_HOME=str(WORK / "airflow"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
    AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
    PREP_SUPPORT_CACHE_DIR=str(WORK / "cache"),
)
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

ADMIN_URL = os.environ.get("PREP_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TARGET = 1.5
SERVICE_SEVERITY = "CASE WHEN bool_or(state = 'down') THEN 'down' WHEN bool_or(state = 'degraded') " \
                   "THEN 'degraded' ELSE 'ok' END"

SEED_CATALOG = [
    """INSERT INTO services (id, name, owner, team_channel, tracker_project, criticality, depends_on, active,
                             updated_at)
       SELECT format('bench-service-%s', lpad(n::text, 3, '0')), format('Bench service %s', n), 'bench@example.com',
              '#prep-support', 'OPS', (ARRAY['critical', 'high', 'medium', 'low'])[1 + n % 4], '[]'::json, true, :now
       FROM generate_series(0, :services - 1) AS n""",
    """INSERT INTO checks (id, service_id, kind, definition, active, updated_at)
       SELECT s.id || '/check-' || lpad(k::text, 2, '0'), s.id, 'http',
              json_build_object('id', 'check-' || lpad(k::text, 2, '0'), 'kind', 'http', 'critical', k < 8,
                                'url', '/estate/apps/bench/health'), true, :now
       FROM services AS s CROSS JOIN generate_series(0, :per_service - 1) AS k""",
]
# One day of results for every check: 0.5 % failures, 1.5 % slow answers, a daily latency cycle.
SEED_RESULTS_DAY = """
    INSERT INTO check_results (check_id, run_id, data_interval_start, data_interval_end, observed_at, status,
                               latency_ms, detail)
    SELECT id, 'scheduled__' || to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), t, t + interval '5 min',
           t + interval '5 min 2 s',
           CASE WHEN r < 0.005 THEN 'fail' WHEN r < 0.02 THEN 'warn' ELSE 'ok' END,
           CASE WHEN r < 0.005 THEN NULL
                ELSE round((base + 10 * sin(extract(hour FROM t) / 24 * 2 * pi()) + 20 * random()
                            + CASE WHEN r < 0.02 THEN 600 ELSE 0 END)::numeric, 1) END,
           CASE WHEN r < 0.005 THEN 'HTTP 503 Service Unavailable' ELSE 'HTTP 200' END
    FROM (SELECT c.id, 30 + abs(hashtext(c.id)) % 60 AS base, t, random() AS r
          FROM checks AS c
          CROSS JOIN generate_series(:day_start, :day_start + interval '1 day' - interval '5 min',
                                     interval '5 min') AS t) AS draws"""
SEED_ROLLUPS = """
    INSERT INTO check_hourly (check_id, hour, results, failures, latency_count, latency_sum_ms, latency_p50_ms,
                              latency_p95_ms, latency_max_ms)
    SELECT check_id, date_trunc('hour', data_interval_start),
           count(*) FILTER (WHERE status <> 'not_evaluable'),
           count(*) FILTER (WHERE status = 'fail'),
           count(latency_ms) FILTER (WHERE status <> 'not_evaluable'),
           coalesce(sum(latency_ms) FILTER (WHERE status <> 'not_evaluable'), 0),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status <> 'not_evaluable'),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status <> 'not_evaluable'),
           max(latency_ms) FILTER (WHERE status <> 'not_evaluable')
    FROM check_results
    GROUP BY 1, 2"""
SEED_STATE = [
    """INSERT INTO check_states (check_id, state, cause, since, failures, problems, successes, flapping, changes,
                                 regression_streak, last_run_id, detail, baseline_p95_ms, baseline_hours,
                                 baseline_at, updated_at)
       SELECT id, state,
              CASE state WHEN 'down' THEN 'availability' WHEN 'degraded' THEN 'performance' ELSE '' END,
              :now - interval '3 hours', CASE state WHEN 'down' THEN 3 ELSE 0 END, 0, 0, n % 101 = 0, '[]'::json,
              0, 'scheduled__latest',
              CASE state WHEN 'down' THEN 'HTTP 503 Service Unavailable'
                         WHEN 'degraded' THEN 'p95 812 ms over the last hour vs 64 ms 7-day baseline'
                         ELSE format('HTTP 200 in %s ms', 30 + n % 60) END,
              64, 168, :now, :now
       FROM (SELECT id, n, CASE WHEN n % 37 = 0 THEN 'down' WHEN n % 23 = 0 THEN 'degraded' ELSE 'ok' END AS state
             FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM checks) AS numbered) AS chosen""",
    f"""INSERT INTO service_states (service_id, state, since, updated_at)
        SELECT c.service_id, {SERVICE_SEVERITY}, :now - interval '3 hours', :now
        FROM check_states AS s JOIN checks AS c ON c.id = s.check_id GROUP BY c.service_id""",
    # Resolved history, then one open incident per check that is not ok.
    """INSERT INTO incidents (dedup_key, service_id, check_id, kind, status, state, priority, tracker, ticket_key,
                              ticket_id, ticket_url, evidence, updates, opened_run_id, opened_at, updated_at,
                              resolved_at)
       SELECT c.id || '/availability', c.service_id, c.id, 'availability', 'resolved', 'ok', 'High', 'jira',
              'OPS-' || (1000 + n), (1000 + n)::text, 'https://jira.example.com/browse/OPS-' || (1000 + n),
              'HTTP 503 for 15 minutes', 2, 'scheduled__old', :now - interval '20 days' + n * interval '7 min',
              :now - interval '20 days' + n * interval '7 min' + interval '1 hour',
              :now - interval '20 days' + n * interval '7 min' + interval '1 hour'
       FROM (SELECT id, service_id, row_number() OVER (ORDER BY id) AS n FROM checks) AS c
       WHERE n % 2 = 0""",
    """INSERT INTO incidents (dedup_key, service_id, check_id, kind, status, state, priority, tracker, ticket_key,
                              ticket_id, ticket_url, evidence, updates, opened_run_id, opened_at, updated_at)
       SELECT s.check_id || '/' || s.cause, c.service_id, s.check_id, s.cause, 'open', s.state,
              CASE s.state WHEN 'down' THEN 'Highest' ELSE 'Medium' END, 'jira', 'OPS-' || n, n::text,
              'https://jira.example.com/browse/OPS-' || n, s.detail || ' (3 consecutive results)', 1,
              'scheduled__recent', :now - interval '3 hours' + n * interval '1 min', :now
       FROM (SELECT check_id, state, cause, detail, row_number() OVER (ORDER BY check_id) AS n
             FROM check_states WHERE state <> 'ok') AS s
       JOIN checks AS c ON c.id = s.check_id""",
    """UPDATE incidents SET upstream_incident_id = (SELECT min(id) FROM incidents WHERE status = 'open')
       WHERE status = 'open' AND id % 5 = 0 AND id <> (SELECT min(id) FROM incidents WHERE status = 'open')""",
    """INSERT INTO maintenance_windows (key, service_ids, starts_at, ends_at, reason, created_by, created_at)
       SELECT 'bench-window-' || n, json_build_array(format('bench-service-%s', lpad((n % :services)::text, 3, '0'))),
              :now + (n - 50) * interval '6 hours', :now + (n - 50) * interval '6 hours' + interval '8 hours',
              'Planned database upgrade', 'bench', :now
       FROM generate_series(1, 58) AS n""",
]


@contextmanager
def throwaway_database(purpose: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"prep_bench_dashboard_{purpose}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, services: int, per_service: int, days: int, now: datetime) -> dict[str, float]:
    """Fill the database; returns seconds per step."""
    from sqlalchemy import create_engine, text

    from prep_support.migrate import upgrade

    engine = create_engine(url)
    upgrade(engine)
    params = {"now": now, "services": services, "per_service": per_service}
    # Results up to the 5 minutes in progress, so the last hour of the charts has data too.
    first_day = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0) - timedelta(days=days)
    spent: dict[str, float] = {}
    with engine.begin() as connection:
        for statement in SEED_CATALOG:
            connection.execute(text(statement), params)
    started = time.perf_counter()
    for day in range(days):
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL synchronous_commit = off"))
            connection.execute(text(SEED_RESULTS_DAY), {"day_start": first_day + timedelta(days=day)})
        print(f"\r  seeding results: day {day + 1}/{days}", end="", flush=True)
    print()
    spent["results"] = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL TIME ZONE 'UTC'; SET LOCAL work_mem = '256MB'"))
        connection.execute(text(SEED_ROLLUPS))
    spent["rollups"] = time.perf_counter() - started
    with engine.begin() as connection:
        for statement in SEED_STATE:
            connection.execute(text(statement), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return spent


def connection_env(url: str) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return {"AIRFLOW_CONN_SUPPORT_DB": json.dumps({
        "conn_type": "postgres", "host": parsed.host, "port": parsed.port or 5432, "login": parsed.username,
        "password": parsed.password or "", "schema": parsed.database,
    })}


def dashboard_asgi_app():
    """Airflow's API server integration: every plugin's FastAPI apps mounted on a FastAPI app."""
    from airflow.api_fastapi.app import init_plugins
    from fastapi import FastAPI

    app = FastAPI()
    init_plugins(app)
    if not any(getattr(route, "path", None) == "/support-dashboard" for route in app.routes):
        raise SystemExit("the prep_support_dashboard plugin was not mounted at /support-dashboard")
    return app


class BareSql:
    """A page's statements, compiled once, run on one raw psycopg2 connection and fully fetched."""

    def __init__(self, url: str, statements: list[tuple]) -> None:
        import psycopg2
        from sqlalchemy.dialects import postgresql
        from sqlalchemy.engine import make_url

        dialect = postgresql.psycopg2.dialect()
        self.compiled = []
        for statement, params in statements:
            compiled = statement.compile(dialect=dialect)
            self.compiled.append((str(compiled), compiled.construct_params(params)))
        parsed = make_url(url)
        self.connection = psycopg2.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                           password=parsed.password, dbname=parsed.database)
        self.connection.autocommit = True

    def run(self) -> list[int]:
        counts = []
        with self.connection.cursor() as cursor:
            for sql, params in self.compiled:
                cursor.execute(sql, params)
                counts.append(len(cursor.fetchall()))
        return counts

    def close(self) -> None:
        self.connection.close()


def page_statements(service_id: str, now: datetime) -> dict[str, list[tuple]]:
    """Each page's statements with their parameters, in the order the page runs them."""
    from prep_support.dashboard import queries
    from prep_support.dashboard.pages import DAY, WEEK, chart_end

    end = chart_end(now)
    overview = [(queries.SERVICES_SUMMARY, {"start": end - DAY, "end": end}), (queries.WINDOWS, {"now": now}),
                (queries.CHECKS_NEEDING_ATTENTION, {}), (queries.OPEN_INCIDENTS, {})]
    service = [(queries.SERVICE_DETAIL, {"service_id": service_id, "start": end - WEEK, "day_start": end - DAY,
                                         "end": end}),
               (queries.WINDOWS_OF_SERVICE, queries.service_windows_params(now, service_id)),
               (queries.SERVICE_HISTORY, {"service_id": service_id, "start": end - WEEK, "end": end}),
               (queries.OPEN_INCIDENTS_OF_SERVICE, {"service_id": service_id})]
    return {"/": overview, "/api/overview": overview,
            f"/services/{service_id}": service, f"/api/services/{service_id}": service}


def api_path(path: str) -> str:
    """The JSON variant of a page."""
    return path if path.startswith("/api") else "/api" + (path if path != "/" else "/overview")


def shown_rows(body: dict) -> list[int]:
    """How many rows of each of the page's statements it shows, read from its JSON variant."""
    if "service" in body:
        return [max(1, len(body["service"]["checks"])), len(body["maintenance_windows"]),
                len(body["history"]["hours"]), len(body["incidents"])]
    return [len(body["services"]), len(body["maintenance_windows"]), len(body["checks_needing_attention"]),
            len(body["incidents"])]


RAW_HISTORY = """
    SELECT date_trunc('hour', r.data_interval_start) AS hour, count(*) FILTER (WHERE r.status <> 'not_evaluable'),
           count(*) FILTER (WHERE r.status = 'fail'),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms)
    FROM check_results AS r JOIN checks AS c ON c.id = r.check_id
    WHERE c.service_id = %(service_id)s AND r.data_interval_start >= %(start)s AND r.data_interval_start < %(end)s
    GROUP BY 1 ORDER BY 1"""


def time_raw_history(bare: BareSql, service_id: str, now: datetime, repeat: int) -> float:
    from prep_support.dashboard.pages import WEEK, chart_end

    end = chart_end(now)
    timings = []
    with bare.connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        for _ in range(repeat):
            started = time.perf_counter()
            cursor.execute(RAW_HISTORY, {"service_id": service_id, "start": end - WEEK, "end": end})
            cursor.fetchall()
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@dataclass
class Measurement:
    path: str
    sql_s: float  # the page's statements, bare
    in_airflow_s: float  # the plugin's app as the API server mounts it, behind Airflow's auth check
    alone_s: float  # the dashboard app alone, without the auth check
    size: int
    rows: list[int]


def airflow_session_cookie() -> dict[str, str]:
    """A viewer's session, as the UI's cookie carries it; validating it reads Airflow's metadata database."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = create_auth_manager().generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))
    return {COOKIE_NAME_JWT_TOKEN: token}


def dashboard_alone():
    from fastapi import FastAPI
    from support_dashboard import support_db_engine

    from prep_support.dashboard.app import create_app

    app = FastAPI()
    app.mount("/support-dashboard", create_app(support_db_engine))
    return app


async def measure(url: str, service_id: str, repeat: int) -> list[Measurement]:
    import httpx

    cookies = airflow_session_cookie()
    base = "http://bench/support-dashboard"
    in_airflow = httpx.AsyncClient(transport=httpx.ASGITransport(app=dashboard_asgi_app()), base_url=base,
                                   cookies=cookies)
    alone = httpx.AsyncClient(transport=httpx.ASGITransport(app=dashboard_alone()), base_url=base)
    measured = []
    async with in_airflow, alone:
        async def timed(client: httpx.AsyncClient, path: str) -> tuple[float, httpx.Response]:
            started = time.perf_counter()
            response = await client.get(path)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            return elapsed, response

        now = datetime.now(UTC)
        for path, statements in page_statements(service_id, now).items():
            bare = BareSql(url, statements)
            expected = shown_rows((await timed(in_airflow, api_path(path)))[1].json())
            counts = bare.run()
            if expected != counts:
                raise SystemExit(f"{path}: the page shows {expected} rows, its SQL returns {counts}")
            for _ in range(5):  # warm-up: templates compiled, statement caches and pools filled
                await timed(in_airflow, path)
                await timed(alone, path)
                bare.run()
            times: dict[str, list[float]] = {"sql": [], "in_airflow": [], "alone": []}
            gc.collect()
            gc.disable()  # as timeit does: a collection landing in one sample is noise, not the page
            try:
                for _ in range(repeat):
                    elapsed, response = await timed(in_airflow, path)
                    times["in_airflow"].append(elapsed)
                    times["alone"].append((await timed(alone, path))[0])
                    started = time.perf_counter()
                    bare.run()
                    times["sql"].append(time.perf_counter() - started)
            finally:
                gc.enable()
            median = {name: statistics.median(values) for name, values in times.items()}
            measured.append(Measurement(path, median["sql"], median["in_airflow"], median["alone"],
                                        len(response.content), counts))
            bare.close()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100 checks in 10 services, 8 days (a quick run)")
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    services, per_service, days = (10, 10, 8) if args.small else (100, 10, 30)
    now = datetime.now(UTC)

    with throwaway_database("support") as url, throwaway_database("airflow") as airflow_url:
        print(f"seeding {services * per_service} checks in {services} services, {days} days of 5-minute results "
              f"({services * per_service * days * 288:,} rows) into a throwaway database")
        spent = seed(url, services, per_service, days, now)
        print(f"  results {spent['results']:.0f} s, hourly rollups {spent['rollups']:.0f} s")
        os.environ.update(connection_env(url))
        # Airflow's metadata database on PostgreSQL too, as in production: the auth check reads it.
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = airflow_url
        service_id = f"bench-service-{services // 2:03d}"
        measured = asyncio.run(measure(url, service_id, args.repeat))
        raw_bare = BareSql(url, [])
        raw_history = time_raw_history(raw_bare, service_id, now, 5)
        raw_bare.close()

    print(f"pages in-process (httpx.ASGITransport), median of {args.repeat}, against the bare SQL of the rows "
          f"each shows (raw psycopg2, fetchall); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  {'page':52} {'bare SQL':>9} {'in Airflow':>10} {'ratio':>6} {'app alone':>10} {'ratio':>6}  "
          "rows per statement, size")
    worst = 0.0
    for m in measured:
        ratio = m.in_airflow_s / m.sql_s
        worst = max(worst, ratio)
        print(f"  {'/support-dashboard' + m.path:52} {m.sql_s * 1000:6.2f} ms {m.in_airflow_s * 1000:7.2f} ms "
              f"{ratio:6.2f} {m.alone_s * 1000:7.2f} ms {m.alone_s / m.sql_s:6.2f}  {m.rows}, {m.size / 1024:.0f} KiB")
    print(f"  worst ratio in Airflow {worst:.2f}   (target <= {TARGET}); 'in Airflow' is the plugin's app as the "
          "API server mounts it, behind Airflow's auth check (JWT and revoked-token lookup); 'app alone' without it")
    history_sql = next(m.sql_s for m in measured if m.path.startswith("/services/"))
    print(f"the service page's 7-day history from raw results instead of rollups: {raw_history * 1000:.1f} ms "
          f"(the whole page's SQL from rollups: {history_sql * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
