"""Which data-quality incidents should exist, given every interval's latest evaluation: a pure plan.

An incident for (suite, check) is a function of the recorded results, not of the order in
which runs happened to finish:

- it is open while the *latest* evaluation of any interval fails (a later day passing says
  nothing about an earlier day's rows);
- its evidence lists each failing interval, oldest first, with its counts and the name of the
  failing-rows sample attached to the ticket;
- it is resolved only when every interval that failed has passed on a later evaluation of that
  interval (the data was fixed and the day re-checked);
- a problem that comes back within ``reopen_within`` of the resolution re-opens the same
  incident (and ticket); later, a new incident is opened (its ticket linked to the old one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prep_support.incidents import DATA, Action, Open, OpenIncident, Reopen, Resolve, Update

FAILING = "failing"
RESOLVED_REASON = "every failing day passed when re-checked"
DAYS_LISTED = 31  # days detailed in the evidence: a ticket comment stays well under Jira's 32,767 characters


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of one check on one data interval."""

    suite_id: str
    check_id: str
    interval_start: datetime
    interval_end: datetime
    success: bool
    evaluated_at: datetime
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None


@dataclass(frozen=True)
class Resolved:
    """The most recent resolved incident of a dedup key."""

    incident_id: int
    resolved_at: datetime


@dataclass(frozen=True)
class Wanted:
    """An incident that should be open: a ``fail`` check with failing intervals."""

    dedup_key: str
    service_id: str
    check_key: str  # dq/<suite>/<check>
    evidence: str


def newer(a: Evaluation, b: Evaluation) -> bool:
    """Whether ``a`` supersedes ``b``: evaluated later; at the same instant a failure wins, so a tie
    never depends on which one was recorded first."""
    return (a.evaluated_at, not a.success) > (b.evaluated_at, not b.success)


def latest(evaluations: Iterable[Evaluation]) -> dict[tuple[str, str, datetime], Evaluation]:
    """The latest evaluation of each (suite, check, interval)."""
    kept: dict[tuple[str, str, datetime], Evaluation] = {}
    for evaluation in evaluations:
        key = (evaluation.suite_id, evaluation.check_id, evaluation.interval_start)
        if key not in kept or newer(evaluation, kept[key]):
            kept[key] = evaluation
    return kept


def failing_intervals(evaluations: Iterable[Evaluation]) -> dict[tuple[str, str], list[Evaluation]]:
    """Per (suite, check), the intervals whose latest evaluation failed, oldest first."""
    failing: dict[tuple[str, str], list[Evaluation]] = {}
    for evaluation in latest(evaluations).values():
        if not evaluation.success:
            failing.setdefault((evaluation.suite_id, evaluation.check_id), []).append(evaluation)
    return {key: sorted(found, key=lambda e: e.interval_start) for key, found in sorted(failing.items())}


def sample_name(evaluation: Evaluation) -> str:
    """The file name of an interval's failing-rows sample on the ticket."""
    return f"failing-rows-{evaluation.suite_id}-{evaluation.check_id}-{evaluation.interval_start:%Y%m%d}.csv"


def counts(evaluation: Evaluation) -> str:
    if evaluation.unexpected_count is not None:
        text = f"{evaluation.unexpected_count} unexpected of {evaluation.element_count}"
        if evaluation.unexpected_percent is not None:
            text += f" ({evaluation.unexpected_percent:.2f}%)"
        return text
    return f"observed {evaluation.observed_value!r}"


def failed_checks_summary(suite_id: str, dataset: str, day: datetime, failed: Iterable[Any]) -> str:
    """What a validation that failed says in its log: which checks failed on which day, by how much,
    and where the rows are (outcomes or evaluations: both have the count fields)."""
    failed = list(failed)
    lines = [f"{len(failed)} fail check{'s' if len(failed) != 1 else ''} of suite {suite_id!r} failed on "
             f"{dataset} for {day:%Y-%m-%d}:"]
    lines += [f"- {outcome.check_id}: {counts(outcome)}" for outcome in failed]
    lines.append("Results and failing-row samples are in dq_results (support database) and on the incident's "
                 "ticket; fix the data, then clear this task or backfill the failed runs to re-check the day.")
    return "\n".join(lines)


def evidence(dataset: str, failing: list[Evaluation], with_sample: Mapping[datetime, bool]) -> str:
    """Every failing interval with its counts and its sample's name: the same results give the same text."""
    days = ", ".join(f"{e.interval_start:%Y-%m-%d}" for e in failing[:DAYS_LISTED])
    if len(failing) > DAYS_LISTED:
        days += f", … (up to {failing[-1].interval_start:%Y-%m-%d})"
    lines = [f"{dataset} failing on {len(failing)} day{'s' if len(failing) != 1 else ''}: {days}"]
    for e in failing[:DAYS_LISTED]:
        line = f"- {e.interval_start:%Y-%m-%d}: {counts(e)}"
        if with_sample.get(e.interval_start):
            line += f"; failing rows: {sample_name(e)} (attached)"
        lines.append(line)
    if len(failing) > DAYS_LISTED:
        lines.append(f"- and {len(failing) - DAYS_LISTED} more day(s): see the dashboard's data-quality strip")
    return "\n".join(lines)


def plan(wanted: Iterable[Wanted], open_incidents: Iterable[OpenIncident], last_resolved: Mapping[str, Resolved],
         now: datetime, reopen_within: timedelta) -> list[Action]:
    """The actions that make the open data incidents match the failing intervals."""
    wanted_by_key = {w.dedup_key: w for w in wanted}
    actions: list[Action] = []
    opened = set()
    for incident in sorted(open_incidents, key=lambda i: i.dedup_key):
        if incident.kind != DATA:
            continue
        opened.add(incident.dedup_key)
        target = wanted_by_key.get(incident.dedup_key)
        if target is None:
            actions.append(Resolve(incident.id, RESOLVED_REASON))
        elif target.evidence != incident.evidence or incident.state != FAILING:
            actions.append(Update(incident.id, FAILING, target.evidence))
    for key, target in sorted(wanted_by_key.items()):
        if key in opened:
            continue
        previous = last_resolved.get(key)
        if previous is not None and now - previous.resolved_at <= reopen_within:
            actions.append(Reopen(previous.incident_id, FAILING, target.evidence))
        else:
            actions.append(Open(key, target.service_id, target.check_key, DATA, FAILING, target.evidence))
    return actions
