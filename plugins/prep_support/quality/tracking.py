"""Failing data-quality checks become incidents; warnings become messages.

The same level-based reconciliation as monitoring (``prep_support.incidents.plan`` and
``prep_support.reconcile.apply``), over data-quality checks instead of probes:

- a ``fail`` check with a failing interval (its latest check failed) in the lookback window (90 days
  before the newest interval recorded) should have one open incident, keyed ``dq/<suite>/<check>/data``.
  A failed day keeps the incident open until it is re-checked and passes (or ages out of the
  window): later days passing do not mean the bad rows of that day were fixed;
  its evidence (failing days, unexpected counts, a summary of sample rows) changes when the
  numbers do, which comments on the ticket; when every interval in the window passes
  (re-checked after a fix, or by a backfill), it is resolved;
- a ``warn`` check that fails notifies the service's channels once per interval, no incident;
- the failing rows' sample goes on the ticket as a CSV attachment (sensitive columns masked).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from prep_support.catalog import Catalog
from prep_support.incidents import CheckView, plan
from prep_support.messages import render_slack
from prep_support.quality.config import Suite
from prep_support.quality.store import recent_results, results
from prep_support.reconcile import Ticket, TrackerFor, apply, incidents, open_incidents, queue_message
from prep_support.routing import Routing

DATA = "data"
FAILING = "failing"
LOOKBACK = timedelta(days=90)
SAMPLE_IN_MESSAGE = 3


def check_key(suite_id: str, check_id: str) -> str:
    return f"dq/{suite_id}/{check_id}"


@dataclass(frozen=True)
class Finding:
    """A check's recorded outcomes in the lookback window."""

    suite: Suite
    check_id: str
    failing: list[Any]  # dq_results rows that failed, oldest first
    latest: Any  # the newest row


def findings(rows: Iterable[Any], suites: dict[str, Suite]) -> list[Finding]:
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        if row.suite_id in suites:
            grouped[(row.suite_id, row.check_id)].append(row)
    found = []
    for (suite_id, check_id), group in sorted(grouped.items()):
        group.sort(key=lambda row: row.interval_start)
        found.append(Finding(suites[suite_id], check_id, [r for r in group if not r.success], group[-1]))
    return found


def evidence(finding: Finding) -> str:
    """Failing days, the newest failure's numbers and a few sample rows: it changes when the numbers do."""
    days = ", ".join(row.interval_start.strftime("%Y-%m-%d") for row in finding.failing)
    newest = finding.failing[-1]
    if newest.unexpected_count is not None:
        numbers = f"{newest.unexpected_count} unexpected of {newest.element_count}"
        if newest.unexpected_percent is not None:
            numbers += f" ({newest.unexpected_percent:.2f}%)"
    else:
        numbers = f"observed {newest.observed_value!r}"
    text = f"{finding.suite.dataset} failing on {days}; {newest.interval_start:%Y-%m-%d}: {numbers}"
    sample = newest.sample or {}
    if sample.get("rows"):
        shown = [", ".join(f"{c}={v}" for c, v in zip(sample["columns"], row, strict=False))
                 for row in sample["rows"][:SAMPLE_IN_MESSAGE]]
        text += f"; sample ({len(sample['rows'])} rows attached): " + " | ".join(shown)
    return text


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
                      lookback: timedelta = LOOKBACK) -> dict[str, Any]:
    """Incidents for failing checks, messages for warnings, samples on tickets."""
    by_id = {suite.id: suite for suite in suites}
    with engine.connect() as connection:
        newest = connection.execute(select(results.c.interval_end).order_by(results.c.interval_end.desc())
                                    .limit(1)).scalar()
    if newest is None:
        return {"opened": 0, "updated": 0, "resolved": 0, "warnings": 0}
    found = findings(recent_results(engine, newest - lookback), by_id)
    views = []
    for finding in found:
        if finding.suite.check(finding.check_id).severity != "fail":
            continue
        failing = bool(finding.failing)
        views.append(CheckView(check_key(finding.suite.id, finding.check_id), finding.suite.service,
                               FAILING if failing else "ok", DATA if failing else "", False,
                               evidence(finding) if failing else ""))
    ours = [incident for incident in open_incidents(engine) if incident.kind == DATA]
    actions = plan(views, {}, {}, ours, set())
    done: dict[str, Any] = apply(engine, actions, catalog, routing, tracker_for, run_id, now)
    done["attached"] = _attach_samples(engine, found, tracker_for, routing, catalog)
    done["warnings"] = _queue_warnings(engine, found, catalog, routing, now)
    return done


def _attach_samples(engine: Engine, found: list[Finding], tracker_for: TrackerFor, routing: Routing,
                    catalog: Catalog) -> int:
    services = {service.id: service for service in catalog.services}
    by_key = {check_key(f.suite.id, f.check_id): f for f in found if f.failing}
    attached = 0
    with engine.connect() as connection:
        rows = connection.execute(select(incidents).where(incidents.c.status == "open", incidents.c.kind == DATA,
                                                          incidents.c.ticket_key.is_not(None))).all()
    for row in rows:
        finding = by_key.get(row.check_id)
        content = sample_csv(finding.failing[-1]) if finding else None
        if content is None:
            continue
        tracker = tracker_for(routing.route(services[row.service_id]))
        name = f"failing-rows-{finding.suite.id}-{finding.check_id}-{finding.failing[-1].interval_start:%Y%m%d}.csv"
        tracker.attach(Ticket(row.ticket_key, row.ticket_id, row.ticket_url), name, content)
        attached += 1
    return attached


def _queue_warnings(engine: Engine, found: list[Finding], catalog: Catalog, routing: Routing,
                    now: datetime) -> int:
    services = {service.id: service for service in catalog.services}
    queued = 0
    with engine.begin() as connection:
        for finding in found:
            check = finding.suite.check(finding.check_id)
            if check.severity != "warn":
                continue
            service = services[finding.suite.service]
            route = routing.route(service)
            for row in finding.failing:
                one = Finding(finding.suite, finding.check_id, [row], row)
                # The evidence quotes the failing rows: escaped for Slack, like every value.
                body = render_slack("notifications/quality_warning.txt.j2", service=service,
                                    suite=finding.suite, check=check, row=row, evidence=evidence(one))
                day = row.interval_start.strftime("%Y-%m-%d")
                if route.channels.slack:
                    queue_message(connection, key=f"dq:{finding.suite.id}:{finding.check_id}:{day}:warn:slack",
                                  incident_id=None, event="warning", channel="slack",
                                  conn_id=route.channels.slack.conn_id, target=route.slack_channel or "",
                                  subject="", body=body, now=now)
                    queued += 1
    return queued

