"""Failing data-quality checks become incidents; warnings become messages.

The plan is ``prep_support.quality.incident_plan`` (a function of every interval's latest result,
whatever order the runs finished in); this module loads its inputs from the support database and
carries it out with ``prep_support.reconcile.apply``:

- a ``fail`` check has one incident, keyed ``dq/<suite>/<check>/data``, open while the latest result
  of any of its intervals fails; its evidence lists each failing interval with its counts and its
  failing-rows sample, attached to the ticket as CSV (sensitive columns masked). A later day passing
  changes nothing about an earlier day: the incident resolves when every failing day, re-checked,
  passes. New failing days comment on the ticket; the channels hear the opening, a re-opening and
  the resolution only, so a catch-up or a backfill of N days sends one message per failing check;
- a problem back within ``reopen_within`` (routing.yaml) re-opens the same ticket, later a new
  ticket linked to the old one;
- a ``warn`` check that fails notifies the service's channels once per interval, no incident.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from prep_support.catalog import Catalog
from prep_support.messages import render_slack
from prep_support.quality.config import Suite
from prep_support.quality.incident_plan import (
    DATA,
    Evaluation,
    Resolved,
    Wanted,
    evidence,
    failing_intervals,
    plan,
    sample_name,
)
from prep_support.quality.store import results
from prep_support.reconcile import Ticket, TrackerFor, apply, incidents, open_incidents, queue_message
from prep_support.routing import Routing


def check_key(suite_id: str, check_id: str) -> str:
    return f"dq/{suite_id}/{check_id}"


def dedup_key(suite_id: str, check_id: str) -> str:
    return f"{check_key(suite_id, check_id)}/{DATA}"


def failing_rows(engine: Engine) -> list[Any]:
    """Every interval whose latest recorded result failed (``dq_results`` keeps the latest per interval)."""
    with engine.connect() as connection:
        return connection.execute(select(results).where(results.c.success.is_(False))
                                  .order_by(results.c.suite_id, results.c.check_id, results.c.interval_start)).all()


def evaluation(row: Any) -> Evaluation:
    return Evaluation(row.suite_id, row.check_id, row.interval_start, row.interval_end, row.success,
                      row.evaluated_at, row.unexpected_count, row.element_count, row.unexpected_percent,
                      row.observed_value)


def last_resolved(engine: Engine) -> dict[str, Resolved]:
    """The most recent resolution of each data incident key (a recurrence may re-open it)."""
    newest = (select(incidents.c.dedup_key, func.max(incidents.c.resolved_at).label("at"))
              .where(incidents.c.kind == DATA, incidents.c.status == "resolved").group_by(incidents.c.dedup_key)
              .subquery())
    with engine.connect() as connection:
        rows = connection.execute(
            select(incidents.c.id, incidents.c.dedup_key, incidents.c.resolved_at)
            .join(newest, (newest.c.dedup_key == incidents.c.dedup_key) & (newest.c.at == incidents.c.resolved_at))
            .where(incidents.c.kind == DATA, incidents.c.status == "resolved")).all()
    return {row.dedup_key: Resolved(row.id, row.resolved_at) for row in sorted(rows, key=lambda r: r.id)}


def wanted_incidents(rows: Iterable[Any], suites: dict[str, Suite]) -> list[Wanted]:
    """One wanted incident per ``fail`` check of a known suite with failing intervals."""
    rows = [row for row in rows if row.suite_id in suites and _severity(suites[row.suite_id], row.check_id) == "fail"]
    with_sample = {(r.suite_id, r.check_id, r.interval_start): bool((r.sample or {}).get("rows")) for r in rows}
    wanted = []
    for (suite_id, check_id), failing in failing_intervals(evaluation(row) for row in rows).items():
        suite = suites[suite_id]
        samples = {e.interval_start: with_sample[(suite_id, check_id, e.interval_start)] for e in failing}
        wanted.append(Wanted(dedup_key(suite_id, check_id), suite.service, check_key(suite_id, check_id),
                             evidence(suite.dataset, failing, samples)))
    return wanted


def _severity(suite: Suite, check_id: str) -> str | None:
    check = next((c for c in suite.checks if c.id == check_id), None)
    return check.severity if check is not None else None


def sample_csv(row: Any) -> bytes | None:
    sample = row.sample or {}
    if not sample.get("rows"):
        return None
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(sample["columns"])
    writer.writerows(sample["rows"])
    return buffer.getvalue().encode()


def reconcile_quality(engine: Engine, suites: list[Suite], catalog: Catalog, routing: Routing,
                      tracker_for: TrackerFor, run_id: str, now: datetime,
                      reopen_within: timedelta | None = None) -> dict[str, Any]:
    """Incidents for failing checks, messages for warnings, samples on tickets."""
    by_id = {suite.id: suite for suite in suites}
    rows = failing_rows(engine)
    ours = [incident for incident in open_incidents(engine) if incident.kind == DATA]
    actions = plan(wanted_incidents(rows, by_id), ours, last_resolved(engine), now,
                   routing.reopen_within if reopen_within is None else reopen_within)
    done: dict[str, Any] = apply(engine, actions, catalog, routing, tracker_for, run_id, now)
    done["attached"] = _attach_samples(engine, rows, tracker_for, routing, catalog)
    done["warnings"] = _queue_warnings(engine, rows, by_id, catalog, routing, now)
    return done


def _attach_samples(engine: Engine, rows: list[Any], tracker_for: TrackerFor, routing: Routing,
                    catalog: Catalog) -> int:
    """Each failing interval's sample on its open ticket, once (the tracker looks for the file name first)."""
    services = {service.id: service for service in catalog.services}
    by_key: dict[str, list[Any]] = {}
    for row in rows:
        by_key.setdefault(dedup_key(row.suite_id, row.check_id), []).append(row)
    attached = 0
    with engine.connect() as connection:
        open_rows = connection.execute(select(incidents).where(
            incidents.c.status == "open", incidents.c.kind == DATA, incidents.c.ticket_key.is_not(None))).all()
    for incident in open_rows:
        tracker = tracker_for(routing.route(services[incident.service_id]))
        for row in by_key.get(incident.dedup_key, []):
            content = sample_csv(row)
            if content is None:
                continue
            tracker.attach(Ticket(incident.ticket_key, incident.ticket_id, incident.ticket_url),
                           sample_name(evaluation(row)), content)
            attached += 1
    return attached


def _queue_warnings(engine: Engine, rows: list[Any], suites: dict[str, Suite], catalog: Catalog, routing: Routing,
                    now: datetime) -> int:
    services = {service.id: service for service in catalog.services}
    queued = 0
    with engine.begin() as connection:
        for row in rows:
            suite = suites.get(row.suite_id)
            if suite is None or _severity(suite, row.check_id) != "warn":
                continue
            check = suite.check(row.check_id)
            service = services[suite.service]
            route = routing.route(service)
            one = evidence(suite.dataset, [evaluation(row)], {row.interval_start: bool((row.sample or {}).get("rows"))})
            # The evidence quotes the failing rows: escaped for Slack, like every value.
            body = render_slack("notifications/quality_warning.txt.j2", service=service, suite=suite, check=check,
                                row=row, evidence=one)
            day = row.interval_start.strftime("%Y-%m-%d")
            if route.channels.slack:
                queue_message(connection, key=f"dq:{suite.id}:{row.check_id}:{day}:warn:slack", incident_id=None,
                              event="warning", channel="slack", conn_id=route.channels.slack.conn_id,
                              target=route.slack_channel or "", subject="", body=body, now=now)
                queued += 1
    return queued
