"""Probe a batch of catalog checks concurrently and record one result per check and run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator

from prep_support.catalog import SOURCE_KINDS, Catalog, HttpCheck, SqlCheck, TcpCheck, load_catalog

if TYPE_CHECKING:
    from airflow.sdk import Context

    from prep_support.probes import ProbeResult

# A run whose interval ended longer ago than this is looking at the past: live probes
# cannot see the past, so its http and tcp checks are recorded as not evaluable.
LIVE_TOLERANCE = timedelta(minutes=15)
PAST_INTERVAL = "live probe in a run for a past interval: not evaluable"


def is_live_run(run_type: str | None, interval_end: datetime, now: datetime,
                tolerance: timedelta = LIVE_TOLERANCE) -> bool:
    return str(run_type or "") != "backfill" and now - interval_end <= tolerance


def base_url(host: str, port: int | None, schema: str | None) -> str:
    """An http Connection's base URL: host may carry its own scheme (as HttpHook allows)."""
    url = host if "://" in host else f"{schema or 'http'}://{host}"
    return f"{url.rstrip('/')}:{port}" if port and url.count(":") < 2 else url.rstrip("/")


class ProbeChecksOperator(BaseOperator):
    """Probe the given checks (``service/check`` keys) and upsert their results into the support database.

    A probed application being down is a result, not a failure of this task; the task fails
    only on its own errors (support database unreachable, a Connection missing).
    """

    template_fields = ("check_keys", "support_db_conn_id")
    ui_color = "#e8f4ea"

    def __init__(self, *, check_keys: list[str], catalog_path: str | None = None, concurrency: int = 100,
                 support_db_conn_id: str = "support_db", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_keys = check_keys
        self.catalog_path = catalog_path
        self.concurrency = concurrency
        self.support_db_conn_id = support_db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.database import DatabaseHook
        from prep_support.results import record_results

        catalog = load_catalog(self.catalog_path)
        now = datetime.now(UTC)
        interval_start = context.get("data_interval_start") or now
        interval_end = context.get("data_interval_end") or now
        live = is_live_run(context["dag_run"].run_type, interval_end, now)
        if not live:
            self.log.info("Interval ending %s is in the past: live probes recorded as not evaluable", interval_end)
        results = asyncio.run(self.probe(catalog, list(self.check_keys), live, interval_start, interval_end))
        record_results(DatabaseHook(conn_id=self.support_db_conn_id).engine, results,
                       context["run_id"], interval_start, interval_end)
        summary: dict[str, Any] = {}
        for result in results:
            summary[result.status] = summary.get(result.status, 0) + 1
            if result.status != "ok":
                self.log.info("%s: %s (%s)", result.check_key, result.status, result.detail)
        self.log.info("Probed %d checks: %s", len(results), summary)
        # Not evaluable because a source (monitoring system, database) did not answer, not because the
        # run looks at the past: the sweep could not do its job for these checks.
        summary["unevaluable"] = [f"{r.check_key}: {r.detail}" for r in results
                                  if r.status == "not_evaluable" and r.detail != PAST_INTERVAL]
        return summary

    async def probe(self, catalog: Catalog, keys: list[str], live: bool, interval_start: datetime,
                    interval_end: datetime) -> list[ProbeResult]:
        from hooks.database import DatabaseHook
        from prep_support import probes

        unknown = [key for key in keys if key not in catalog.checks_by_key]
        if unknown:
            self.log.warning("Not in the catalog any more, skipped: %s", ", ".join(unknown))
        connections: dict[str, Any] = {}

        def connection(conn_id: str) -> Any:
            if conn_id not in connections:
                connections[conn_id] = BaseHook.get_connection(conn_id)
            return connections[conn_id]

        from operators.source_checks import SourceHooks, read_source

        source_hooks = SourceHooks()
        async with probes.client_session(self.concurrency) as session:
            factories = []
            for key in keys:
                if key not in catalog.checks_by_key:
                    continue
                _service, check = catalog.checks_by_key[key]
                if isinstance(check, SqlCheck):
                    engine = DatabaseHook(conn_id=check.conn_id).engine
                    factories.append(lambda e=engine, k=key, c=check: asyncio.to_thread(
                        probes.query_sql, e, k, c, interval_start, interval_end))
                elif check.kind in SOURCE_KINDS:
                    factories.append(lambda k=key, c=check: asyncio.to_thread(
                        read_source, source_hooks, k, c, interval_start, interval_end))
                elif not live:
                    factories.append(lambda k=key: _not_evaluable(k))
                elif isinstance(check, HttpCheck):
                    url, headers = check.url, {}
                    if check.conn_id:
                        conn = connection(check.conn_id)
                        headers = {str(k): str(v) for k, v in (conn.extra_dejson.get("headers") or {}).items()}
                        if not url.startswith(("http://", "https://")):
                            url = base_url(conn.host or "", conn.port, conn.schema) + "/" + url.lstrip("/")
                    factories.append(lambda k=key, c=check, u=url, h=headers: probes.probe_http(session, k, c, u, h))
                elif isinstance(check, TcpCheck):
                    host, port = check.host, check.port
                    if check.conn_id:
                        conn = connection(check.conn_id)
                        host, port = host or conn.host, port or conn.port
                    factories.append(lambda k=key, c=check, h=host, p=port: probes.probe_tcp(k, c, h, p))
            return await probes.run_bounded(factories, self.concurrency)


async def _not_evaluable(key: str) -> ProbeResult:
    from prep_support.probes import NOT_EVALUABLE, ProbeResult

    return ProbeResult(key, NOT_EVALUABLE, None, PAST_INTERVAL)
