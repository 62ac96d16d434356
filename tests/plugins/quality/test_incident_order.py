"""A data incident is a function of the results, not of the order the runs finished in.

Every permutation of the same (interval, outcome, evaluated_at) results, each recorded and then
reconciled as a run would, must end with the same incident state, the same one ticket and the same
evidence. The tracker is an in-memory one implementing ``prep_support.reconcile.Tracker``: what is
asserted is what reconciliation decided (how many tickets it created, which it left open, with what
evidence), not what the tracker answered.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from prep_support.catalog import load_catalog
from prep_support.quality.config import load_suites
from prep_support.quality.outcomes import CheckOutcome
from prep_support.quality.store import record_outcomes
from prep_support.quality.tracking import reconcile_quality
from prep_support.reconcile import Ticket
from prep_support.results import sync_catalog
from prep_support.routing import load_routing
from prep_support.schema import Base, IncidentRow

CHECK = "expect_column_values_to_not_be_null.customer_id"
KEY = f"dq/orders/{CHECK}/data"
DAY = datetime(2026, 11, 2, 2, tzinfo=UTC)
NOW = DAY + timedelta(days=4)


class MemoryTracker:
    """Tickets in a dict; every method as safe to repeat as the real trackers."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict] = {}

    def find_open(self, dedup_key: str) -> Ticket | None:
        for key, ticket in self.tickets.items():
            if ticket["dedup_key"] == dedup_key and ticket["status"] == "open":
                return Ticket(key, key, None)
        return None

    def create(self, *, dedup_key: str, summary: str, description: str, route) -> Ticket:
        key = f"ORD-{len(self.tickets) + 1}"
        self.tickets[key] = {"dedup_key": dedup_key, "status": "open", "comments": [], "links": [],
                             "attachments": set()}
        return Ticket(key, key, None)

    def comment(self, ticket: Ticket, marker: str, text: str) -> None:
        if marker not in self.tickets[ticket.key]["comments"]:
            self.tickets[ticket.key]["comments"].append(marker)

    def resolve(self, ticket: Ticket, marker: str, text: str) -> None:
        self.comment(ticket, marker, text)
        self.tickets[ticket.key]["status"] = "done"

    def reopen(self, ticket: Ticket, marker: str, text: str) -> None:
        self.comment(ticket, marker, text)
        self.tickets[ticket.key]["status"] = "open"

    def link(self, ticket: Ticket, previous: Ticket) -> None:
        self.tickets[ticket.key]["links"].append(previous.key)

    def attach(self, ticket: Ticket, file_name: str, content: bytes) -> None:
        self.tickets[ticket.key]["attachments"].add(file_name)


@pytest.fixture(scope="module")
def config():
    catalog = load_catalog()
    suites, _errors = load_suites(catalog=catalog)
    [orders] = [suite for suite in suites if suite.id == "orders"]
    return catalog, load_routing(catalog), orders


def result(day: int, failing: int | None, evaluated_hours: int) -> tuple:
    """A result of the not-null check on day ``day``: ``failing`` rows (None: it passed) of 100."""
    return (day, failing, DAY + timedelta(hours=evaluated_hours))


def outcome(suite, failing: int | None) -> CheckOutcome:
    check = suite.check(CHECK)
    if failing is None:
        return CheckOutcome.of(check, True, observed_value=0.0, unexpected_count=0, element_count=100,
                               unexpected_percent=0.0)
    return CheckOutcome.of(check, False, observed_value=float(failing), unexpected_count=failing, element_count=100,
                           unexpected_percent=float(failing), sample_columns=["id", "customer_id"],
                           sample_rows=[[n, None] for n in range(failing)])


def final_state(order: tuple, config) -> dict:
    """Record and reconcile the results in ``order`` on a fresh support database; what on-call would see."""
    catalog, routing, suite = config
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    sync_catalog(engine, catalog)
    tracker = MemoryTracker()
    for step, (day, failing, evaluated_at) in enumerate(order):
        start = DAY + timedelta(days=day)
        record_outcomes(engine, suite, [outcome(suite, failing)], start, start + timedelta(days=1), f"run-{step}",
                        evaluated_at)
        reconcile_quality(engine, [suite], catalog, routing, lambda _route: tracker, f"run-{step}", NOW)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(IncidentRow.__table__).where(IncidentRow.dedup_key == KEY)).all()
    engine.dispose()
    open_rows = [row for row in rows if row.status == "open"]
    return {"open": [(row.ticket_key, row.evidence) for row in open_rows],
            "tickets": {key: t["status"] for key, t in tracker.tickets.items()},
            # Files stay on a ticket once attached (a fixed day's sample too): what matters is that the
            # samples of the days still failing are there.
            "samples_missing": {key: sorted(name for name in _named_in(evidence) if name not in t["attachments"])
                                for key, t in tracker.tickets.items() for k, evidence in
                                [(row.ticket_key, row.evidence) for row in open_rows] if k == key}}


def _named_in(evidence: str) -> list[str]:
    return [line.split("failing rows: ")[1].split(" ")[0] for line in evidence.splitlines() if "failing rows: " in line]


# Day 0 failed, was fixed and re-checked; day 1 failed, was re-checked and still fails (fewer rows);
# day 2 passed. Every order of these five must end with one open ticket listing day 1 only, 2 rows.
STILL_FAILING = (result(0, 5, 1), result(0, None, 30), result(1, 3, 25), result(1, 2, 50), result(2, None, 49))


def test_every_order_of_the_same_results_ends_with_one_ticket_and_the_same_evidence(config) -> None:
    expected = final_state(STILL_FAILING, config)
    [(ticket, evidence)] = expected["open"]
    assert expected["tickets"] == {ticket: "open"}, "one ticket, open"
    assert expected["samples_missing"] == {ticket: []}
    assert evidence.splitlines() == [
        "estate_db:orders failing on 1 day: 2026-11-03",
        f"- 2026-11-03: 2 unexpected of 100 (2.00%); failing rows: failing-rows-orders-{CHECK}-20261103.csv (attached)",
    ]
    differing = {}
    for order in itertools.permutations(STILL_FAILING):
        got = final_state(order, config)
        if got != expected:
            differing[order] = got
    assert not differing, f"{len(differing)} of 120 orders end elsewhere, e.g. {next(iter(differing.items()))}"


def test_every_order_of_a_fixed_problem_ends_resolved(config) -> None:
    """Day 0 failed and passed on re-check, day 1 passed: no open incident, whatever the order; a ticket
    opened on the way (when the failure was recorded first) is done."""
    fixed = (result(0, 4, 1), result(0, None, 30), result(1, None, 26))
    for order in itertools.permutations(fixed):
        got = final_state(order, config)
        assert got["open"] == [], order
        assert set(got["tickets"].values()) <= {"done"} and len(got["tickets"]) <= 1, (order, got)


def test_evidence_of_many_failing_days_stays_short_and_names_the_rest() -> None:
    from prep_support.quality.incident_plan import DAYS_LISTED, Evaluation, evidence

    failing = [Evaluation("orders", CHECK, DAY + timedelta(days=n), DAY + timedelta(days=n + 1), False, NOW, 3, 10,
                          30.0) for n in range(DAYS_LISTED + 9)]
    lines = evidence("orders", failing, {}).splitlines()
    assert lines[0].startswith("orders failing on 40 days: 2026-11-02, 2026-11-03")
    assert lines[0].endswith("… (up to 2026-12-11)")
    assert len(lines) == 1 + DAYS_LISTED + 1 and lines[-1].startswith("- and 9 more day(s)")
