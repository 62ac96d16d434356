"""On-call's data-quality story over 14 nightly intervals, with bad rows planted on days 3, 7 and 8.

Each "run" is what a data_quality run does for its interval, through the DAG's own operators:
validate_suite (which ends failed, ``DataChecksFailed``, on the planted days), reconcile_quality and
send_notifications, against the sandbox's Jira and Slack through the real hooks, on a support database
of the test's own. "Backfilling failed runs" re-runs exactly the intervals whose validate_suite failed,
as ``airflow backfill create --reprocess-behavior failed`` does (tests/integration/test_backfill.py runs
that with a real scheduler).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.sandbox_client import call

FIRST = datetime(2026, 10, 1, 2, tzinfo=UTC)  # day 1's interval starts here
DAYS = range(1, 15)
PLANTED = {3, 7, 8}
CHECKS = ("expect_column_values_to_not_be_null.customer_id", "expect_column_values_to_be_between.amount")
ORDERS_CHANNEL = "commerce-support"  # orders-api's team channel (services.yaml)
SUITE = """\
conn_id: dq_scenario
table: orders
partition_column: created_at
service: orders-api
checks:
  - expectation: expect_column_values_to_not_be_null
    kwargs: {column: customer_id}
  - expectation: expect_column_values_to_be_between
    kwargs: {column: amount, min_value: 0}
"""


def interval(day: int) -> tuple[datetime, datetime]:
    start = FIRST + timedelta(days=day - 1)
    return start, start + timedelta(days=1)


@pytest.fixture
def scenario(tmp_path: Path, sandbox, airflow_db, monkeypatch):
    """A dataset with 14 days of orders (2 bad rows of each kind on the planted days), its suite, and a
    support database of its own (so other tests' incidents are neither seen nor resolved)."""
    from hooks.database import DatabaseHook
    from prep_support.migrate import upgrade

    data = tmp_path / "orders.db"
    with sqlite3.connect(data) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, "
                           "created_at TEXT)")
        rows = []
        for day in DAYS:
            start, _end = interval(day)
            for n in range(10):
                bad = day in PLANTED and n < 2
                rows.append((day * 100 + n, None if bad else 7, -5.0 if bad else 20.0,
                             (start + timedelta(hours=1 + n)).strftime("%Y-%m-%d %H:%M:%S")))
        connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows)
    suites = tmp_path / "quality"
    suites.mkdir()
    (suites / "scenario.yaml").write_text(SUITE)
    monkeypatch.setenv("AIRFLOW_CONN_DQ_SCENARIO", json.dumps({"conn_type": "sqlite", "host": str(data)}))
    monkeypatch.setenv("AIRFLOW_CONN_DQ_SCENARIO_SUPPORT",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "support.db")}))
    upgrade(DatabaseHook(conn_id="dq_scenario_support").engine)
    for path in ("/jira/_sandbox/issues", "/slack/_sandbox/messages"):
        call(sandbox.base_url, "DELETE", path)
    return {"data": data, "quality_dir": str(suites), "base": sandbox.base_url}


def run_day(scenario: dict, day: int) -> str | None:
    """One data_quality run for ``day``: the failure text when validate_suite failed, else None."""
    from operators.reconcile_quality import ReconcileQualityOperator
    from operators.send_notifications import SendNotificationsOperator
    from operators.validate_suite import DataChecksFailed, ValidateSuiteOperator

    start, end = interval(day)
    context = {"data_interval_start": start, "data_interval_end": end, "run_id": f"scheduled__{start.isoformat()}"}
    support = {"support_db_conn_id": "dq_scenario_support"}
    failure = None
    try:
        ValidateSuiteOperator(task_id="validate_suite", suite_id="scenario", quality_dir=scenario["quality_dir"],
                              **support).execute(context)
    except DataChecksFailed as error:
        failure = str(error)
    # trigger_rule all_done: reconciliation and notifications run after a failed validation too
    ReconcileQualityOperator(task_id="reconcile_quality", quality_dir=scenario["quality_dir"],
                             **support).execute(context)
    SendNotificationsOperator(task_id="send_notifications", **support).execute(context)
    return failure


def backfill_failed(scenario: dict, failed: dict[int, str]) -> dict[int, str]:
    """Re-run the failed intervals; what fails now."""
    return {day: text for day in sorted(failed) if (text := run_day(scenario, day))}


def fix(scenario: dict, *days: int) -> None:
    with sqlite3.connect(scenario["data"]) as connection:
        for day in days:
            connection.execute("UPDATE orders SET customer_id = 7, amount = 20.0 WHERE id / 100 = ?", (day,))


def seen(base: str) -> dict:
    """What on-call sees: our data tickets in Jira (with every comment) and the messages on Slack."""
    issues = [i for i in call(base, "GET", "/jira/_sandbox/issues")["issues"]
              if any(label.startswith("prep-support:dq/scenario/") for label in i["fields"]["labels"])]
    tickets = {}
    for issue in issues:
        [label] = [x for x in issue["fields"]["labels"] if x.startswith("prep-support:dq/scenario/")]
        check = label.removeprefix("prep-support:dq/scenario/").removesuffix("/data")
        comments = [c["body"] for c in issue["comments"]]
        tickets[check] = {"key": issue["key"], "status": issue["status"],
                          "description": issue["fields"]["description"], "comments": comments}
    messages = [m for m in call(base, "GET", "/slack/_sandbox/messages")["messages"] if "dq/scenario/" in m["text"]]
    return {"tickets": tickets, "messages": messages, "all_messages": call(base, "GET", "/slack/_sandbox/messages")}


def days_in(text: str, *days: int) -> bool:
    return all(f"{interval(day)[0]:%Y-%m-%d}" in text for day in days)


@pytest.mark.timeout(300)
def test_catch_up_backfill_and_fix_give_one_ticket_and_one_message_per_failing_check(scenario) -> None:
    base = scenario["base"]

    # A fresh deployment catches up 14 nights.
    failed = {day: text for day in DAYS if (text := run_day(scenario, day))}
    assert sorted(failed) == sorted(PLANTED), "exactly the planted days are red"
    day3 = failed[3]
    assert "2 fail checks of suite 'scenario' failed on dq_scenario:orders for 2026-10-03" in day3
    assert f"- {CHECKS[0]}: 2 unexpected of 10 (20.00%)" in day3 and f"- {CHECKS[1]}: 2 unexpected of 10" in day3
    caught_up = seen(base)
    assert sorted(caught_up["tickets"]) == sorted(CHECKS), "one ticket per failing check"
    for ticket in caught_up["tickets"].values():
        assert ticket["status"] == "To Do"
        assert days_in(ticket["description"] + "\n".join(ticket["comments"]), 3, 7, 8)
        latest = ticket["comments"][-1]
        assert "failing on 3 days: 2026-10-03, 2026-10-07, 2026-10-08" in latest
    assert len(caught_up["messages"]) == len(CHECKS), [m["text"] for m in caught_up["messages"]]
    assert {m["channel_name"] for m in caught_up["messages"]} == {ORDERS_CHANNEL}
    assert not [m for m in caught_up["all_messages"]["messages"] if m["channel_name"] == "prep-support"]

    # Day 7's rows are fixed and the failed runs backfilled: day 7 turns green, the tickets say so.
    fix(scenario, 7)
    failed = backfill_failed(scenario, failed)
    assert sorted(failed) == [3, 8]
    after_seven = seen(base)
    for check, ticket in after_seven["tickets"].items():
        assert ticket["key"] == caught_up["tickets"][check]["key"] and ticket["status"] == "To Do"
        assert "failing on 2 days: 2026-10-03, 2026-10-08" in ticket["comments"][-1]
    assert len(after_seven["messages"]) == len(CHECKS), "a ticket update is not a channel message"

    # Days 3 and 8 fixed and backfilled: resolved, one resolution message per check.
    fix(scenario, 3, 8)
    failed = backfill_failed(scenario, failed)
    assert failed == {}
    resolved = seen(base)
    for check, ticket in resolved["tickets"].items():
        assert ticket["key"] == caught_up["tickets"][check]["key"] and ticket["status"] == "Done"
    new = resolved["messages"][len(after_seven["messages"]):]
    assert len(new) == len(CHECKS) and all(":white_check_mark:" in m["text"] for m in new), [m["text"] for m in new]

    # Re-running every night changes nothing.
    assert not [day for day in DAYS if run_day(scenario, day)]
    again = seen(base)
    assert again["tickets"] == resolved["tickets"]
    assert len(again["all_messages"]["messages"]) == len(resolved["all_messages"]["messages"])


def test_a_data_failure_is_not_posted_again_to_the_support_channel(sandbox, airflow_db) -> None:
    """validate_suite's DataChecksFailed is told by its incident's message, not a second time on #prep-support."""
    from notifiers.callbacks import notify_support_channel
    from operators.validate_suite import DataChecksFailed

    call(sandbox.base_url, "DELETE", "/slack/_sandbox/messages")
    notify_support_channel({"exception": DataChecksFailed("1 fail check of suite 'orders' failed on orders")})
    assert call(sandbox.base_url, "GET", "/slack/_sandbox/messages")["messages"] == []
