"""Wait for a UAT cycle's sub-tasks without holding a worker slot, reminding testers on the way.

``UatResultsSensor`` runs in ``reschedule`` mode: each poke reads the sub-tasks from Jira, sends the
reminders that are due as direct messages (ledger keys ``uat:<release>:remind:<tester>:<hours>h``, so a poke repeated or
retried reminds nobody twice) and is done when every sub-task is in a done status, or when the
deadline has passed: what is open then is reported as "not done", it does not fail the run.
Between pokes it sleeps ``poke_interval``, or less when the deadline or the next reminder comes
sooner, so the cycle closes at its deadline and reminders go out on time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.bases.sensor import BaseSensorOperator
from airflow.sdk.exceptions import AirflowRescheduleException

from prep_support import uat

log = logging.getLogger(__name__)


class UatResultsSensor(BaseSensorOperator):
    template_fields: Sequence[str] = ("cycle", "tickets", "jira_conn_id")

    def __init__(self, *, cycle: Any, tickets: Any, jira_conn_id: str = "jira_default", **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", timedelta(minutes=15))
        kwargs.setdefault("timeout", timedelta(days=90))  # the deadline ends the wait long before this
        super().__init__(**kwargs)
        self.cycle = cycle
        self.tickets = tickets
        self.jira_conn_id = jira_conn_id

    def poke(self, context: Any) -> bool:
        from hooks.channels import SlackSender
        from operators.uat_cycle import _jira, _post_once, read_results, tester_cases, tester_message

        cycle, tickets = self.cycle, self.tickets["tickets"]
        now = datetime.now(UTC)
        report = read_results(_jira(self.jira_conn_id), cycle, tickets, now)
        open_keys = {r.key for r in report.open_items}
        log.info("UAT %s: %s, %d open", cycle["release"], report.counts, len(open_keys))
        if not open_keys:
            return True
        if report.deadline_passed:
            log.info("UAT %s: deadline %s passed with %d open case(s): reporting them as not done",
                     cycle["release"], report.deadline.isoformat(), len(open_keys))
            return True
        slack = SlackSender()
        for hours in uat.due_reminders(now, report.deadline, cycle["reminder_hours"]):
            for tester in report.testers:
                still_open = [t for t in tester_cases(tickets, tester) if t["key"] in open_keys]
                if still_open:
                    text = tester_message(cycle, still_open, reminder_hours=hours)
                    _post_once(uat.remind_key(cycle["release"], tester, hours), cycle, text, "uat-remind", slack,
                               tester=tester)
        wake = uat.next_wake(now, report.deadline, cycle["reminder_hours"])
        if wake < now + timedelta(seconds=self.poke_interval):
            raise AirflowRescheduleException(wake)
        return False
