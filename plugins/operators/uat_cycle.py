"""The uat_cycle DAG's units of work: plan -> tickets -> notify -> (wait) -> report -> sign-off -> close.

Every side effect is keyed, so a retried or re-run task repeats nothing:

- Jira: the release ticket carries the label ``prep-support:uat:<release>``, each sub-task
  ``prep-support:uat:<release>:<case>:<tester>``; a JQL search by label comes before every create,
  a link is made only if the sub-task shows none to the release yet, a transition only if the
  ticket is not already in the target status, a comment only if none carries its marker.
- Slack: the notification ledger (``prep_support.outbox``) keys ``uat:<release>:notify:<tester>``,
  ``uat:<release>:remind:<tester>:<hours>h`` (direct messages to the tester) and ``uat:<release>:result``
  (on the plan's channel).
- Confluence: the report page is published by title (updated in place; unchanged -> no new version).

The cycle's description (``cycle``, from :class:`PlanUatCycleOperator`) travels by XCom between tasks:
the plan's cases, the assignment, the deadline and where to post.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import BaseOperator
from sqlalchemy import select, update

from prep_support import approvals, hitl, uat
from prep_support.messages import jira_text, slack_text

if TYPE_CHECKING:
    from hooks.channels import SlackSender
    from hooks.trackers import JiraIssues

log = logging.getLogger(__name__)


# Named when the business owner is who started the cycle: what the analyst changes (four eyes).
SIGN_OFF = "the form's Business owner (business_owner)"


def started_by(context: Any) -> str:
    """Who started the cycle: the user who triggered the run (prep_support.approvals.requester)."""
    return approvals.requester(context["dag_run"].triggering_user_name)


def _jira(conn_id: str) -> JiraIssues:
    from hooks.trackers import JiraIssues  # here, not at the top: the DAG file imports this module

    return JiraIssues(conn_id)


def _support_engine() -> Any:
    from hooks.database import DatabaseHook

    return DatabaseHook(conn_id="support_db").engine


def _deadline(cycle: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(cycle["deadline"])


def _plan(cycle: dict[str, Any]) -> uat.UatPlan:
    return uat.UatPlan.model_validate(cycle["plan"])


def _post_once(key: str, cycle: dict[str, Any], text: str, event: str, slack: SlackSender, *,
               tester: str | None = None) -> bool:
    """Send ``text`` under ledger ``key`` unless it was sent: to ``tester`` as a direct message (on the
    cycle's channel with an @-mention if Slack does not know them), or on the cycle's channel. True if sent now."""
    from prep_support import outbox

    conn_id, channel = cycle["slack_conn_id"], cycle["slack_channel"]

    def send() -> outbox.Sent:
        # The ledger key goes into the message's metadata: a post whose answer was lost is found, not repeated.
        if tester is None:
            return slack.post(conn_id, channel, text, key=key)
        return slack.post_direct(conn_id, tester, text, fallback_channel=channel, key=key)

    return outbox.send_once(_support_engine(), key=key, event=event, channel="slack", conn_id=conn_id,
                            target=channel if tester is None else f"@{tester}", subject=f"UAT {cycle['release']}",
                            body=text, send=send, now=datetime.now(UTC))


def tester_cases(tickets: Sequence[dict[str, Any]], tester: str) -> list[dict[str, Any]]:
    return [t for t in tickets if t["tester"] == tester]


def tester_message(cycle: dict[str, Any], tickets: Sequence[dict[str, Any]], *,
                   reminder_hours: int | None = None) -> str:
    """The direct message to one tester: their cases with links (values escaped for Slack)."""
    esc = slack_text
    titles = {case["id"]: case["title"] for case in cycle["plan"]["cases"]}
    deadline = f"{_deadline(cycle):%Y-%m-%d %H:%M} UTC"
    if reminder_hours is None:
        head = (f"You are testing release *{esc(cycle['release'])}* ({esc(cycle['plan']['name'])}). "
                f"Please record each case as Passed or Failed by {deadline}:")
    else:
        head = (f"Reminder: {reminder_hours} h to the UAT deadline of release *{esc(cycle['release'])}* "
                f"({deadline}). Still open:")
    lines = [f"- {uat.slack_link(t['url'], t['key'])} {esc(titles.get(t['case_id'], t['case_id']))}" for t in tickets]
    return "\n".join([head, *lines])


class PlanUatCycleOperator(BaseOperator):
    """Validate the form and the test plan; return the cycle (plan, assignment, deadline) for the next tasks."""

    template_fields: Sequence[str] = ("jira_conn_id",)

    def __init__(self, *, jira_conn_id: str = "jira_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from operators.bad_input import failing_on_bad_input

        with failing_on_bad_input():  # bad input (PlanError is one): no retry can fix it
            return self.plan_cycle(context["params"])

    def plan_cycle(self, params: Any) -> dict[str, Any]:
        from prep_support.form_input import check_sizes, form_datetime

        check_sizes(params)
        release, owner = params["release"], params["business_owner"]
        testers = list(params.get("testers") or [])
        deadline = form_datetime(params["deadline"], "deadline")
        choice = uat.parse_test_plan(params["test_plan"])
        if choice.jql is not None:
            issues = _jira(self.jira_conn_id).search(choice.jql, fields="summary,description")
            plan = uat.plan_from_issues(issues, testers, choice.jql)
        else:
            plan = uat.load_plan(choice.plan or "")
        assignment = uat.assignments(plan, testers)
        if owner in {a.tester for a in assignment}:
            raise uat.PlanError(f"business_owner: {owner!r} is also a tester; the sign-off needs someone "
                                "who did not test")
        log.info("UAT %s: %d case(s), %d ticket(s), deadline %s", release, len(plan.cases), len(assignment),
                 deadline.isoformat())
        return {"release": release, "test_plan": params["test_plan"], "business_owner": owner,
                "deadline": deadline.astimezone(UTC).isoformat(), "plan": plan.model_dump(mode="json"),
                "assignments": [{"case_id": a.case.id, "tester": a.tester} for a in assignment],
                "project": plan.jira_project, "slack_channel": plan.slack_channel,
                "slack_conn_id": plan.slack_conn_id, "confluence_space": plan.confluence_space,
                "reminder_hours": plan.remind_hours_before_deadline}


class CreateUatTicketsOperator(BaseOperator):
    """The release ticket, and a sub-task per case and tester linked to it; recorded in the support DB."""

    template_fields: Sequence[str] = ("cycle", "jira_conn_id")

    def __init__(self, *, cycle: Any, jira_conn_id: str = "jira_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cycle = cycle
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        try:  # four eyes, checked before any ticket: who starts the cycle does not sign the release off
            approvals.approvers([self.cycle["business_owner"]], requester=started_by(context), setting=SIGN_OFF)
        except approvals.FourEyesError as error:
            raise AirflowFailException(str(error)) from error
        cycle, jira = self.cycle, _jira(self.jira_conn_id)
        plan, release, deadline = _plan(cycle), cycle["release"], _deadline(cycle)
        cases = {case.id: case for case in plan.cases}
        release_key, created = jira.ensure_issue(uat.release_label(release), {
            "project": {"key": cycle["project"]}, "issuetype": {"name": "Task"},
            "summary": f"UAT {release}: {plan.name}"[:250],
            "description": (f"User acceptance testing of release {jira_text(release)} ({jira_text(plan.name)}).\n"
                            f"{jira_text(plan.description)}\n\n"
                            f"Business owner: {jira_text(cycle['business_owner'])}. "
                            f"Deadline: {deadline:%Y-%m-%d %H:%M} UTC. Started by {jira_text(started_by(context))}."),
            "labels": ["prep-support", "uat"], "duedate": f"{deadline:%Y-%m-%d}"})
        tickets, made = [], int(created)
        for assignment in cycle["assignments"]:
            case, tester = cases[assignment["case_id"]], assignment["tester"]
            key, created = jira.ensure_issue(uat.ticket_label(release, case.id, tester), {
                "project": {"key": cycle["project"]}, "issuetype": {"name": "Sub-task"},
                "parent": {"key": release_key}, "summary": f"UAT {release}: {case.title} ({tester})"[:250],
                "description": uat.subtask_description(case, tester, deadline),
                "labels": ["prep-support", "uat"], "duedate": f"{deadline:%Y-%m-%d}"})
            jira.ensure_link(key, release_key)
            made += int(created)
            tickets.append({"case_id": case.id, "tester": tester, "key": key, "url": jira.browse_url(key)})
        self._record(context, release_key, tickets)
        log.info("UAT %s: release ticket %s, %d sub-task(s), %d created now", release, release_key, len(tickets), made)
        return {"release_key": release_key, "release_url": jira.browse_url(release_key), "tickets": tickets,
                "created": made}

    def _record(self, context: Any, release_key: str, tickets: list[dict[str, Any]]) -> None:
        from prep_support.results import upsert
        from prep_support.schema import UatCycleRow, UatTicketRow

        engine, cycle, now = _support_engine(), self.cycle, datetime.now(UTC)
        upsert(engine, UatCycleRow.__table__, [{
            "release": cycle["release"], "plan": cycle["test_plan"], "business_owner": cycle["business_owner"],
            "deadline": _deadline(cycle), "release_key": release_key, "status": "testing", "report": {},
            "run_id": context["run_id"], "started_by": started_by(context), "created_at": now,
            "updated_at": now}], ["release"])
        with engine.connect() as connection:
            cycle_id = connection.execute(
                select(UatCycleRow.id).where(UatCycleRow.release == cycle["release"])).scalar()
        upsert(engine, UatTicketRow.__table__, [
            {"cycle_id": cycle_id, "case_id": t["case_id"], "tester": t["tester"], "ticket_key": t["key"],
             "outcome": uat.OPEN, "updated_at": now} for t in tickets], ["cycle_id", "case_id", "tester"])


class NotifyTestersOperator(BaseOperator):
    """One Slack direct message per tester listing their cases with links; ledger key
    ``uat:<release>:notify:<tester>``."""

    template_fields: Sequence[str] = ("cycle", "tickets")

    def __init__(self, *, cycle: Any, tickets: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cycle = cycle
        self.tickets = tickets

    def execute(self, context: Any) -> dict[str, int]:
        from hooks.channels import SlackSender

        cycle, tickets, slack = self.cycle, self.tickets["tickets"], SlackSender()
        sent = 0
        for tester in dict.fromkeys(t["tester"] for t in tickets):
            text = tester_message(cycle, tester_cases(tickets, tester))
            sent += _post_once(uat.notify_key(cycle["release"], tester), cycle, text, "uat-notify", slack,
                               tester=tester)
        return {"testers": len({t["tester"] for t in tickets}), "sent": sent}


def read_results(jira: JiraIssues, cycle: dict[str, Any], tickets: Sequence[dict[str, Any]],
                 now: datetime) -> uat.UatReport:
    """The cycle's report as Jira shows it now: each sub-task's outcome, and the Bugs linked to them."""
    deadline = _deadline(cycle)
    passed_deadline = now >= deadline
    keys = [t["key"] for t in tickets]
    issues = {}
    for first in range(0, len(keys), 50):  # keep each JQL short
        chunk = ", ".join(keys[first:first + 50])
        for issue in jira.search(f"key in ({chunk})"):
            issues[issue["key"]] = issue
    results, defects = [], {}
    for ticket in tickets:
        fields = issues.get(ticket["key"], {}).get("fields") or {}
        status = (fields.get("status") or {})
        result = uat.outcome(status.get("name", ""), (status.get("statusCategory") or {}).get("key", ""),
                             (fields.get("resolution") or {}).get("name"), passed_deadline)
        results.append(uat.Result(ticket["case_id"], ticket["tester"], ticket["key"], ticket["url"],
                                  status.get("name", "unknown"), result))
        for link in fields.get("issuelinks") or []:
            other = link.get("inwardIssue") or link.get("outwardIssue") or {}
            other_fields = other.get("fields") or {}
            if (other_fields.get("issuetype") or {}).get("name") != "Bug":
                continue
            other_status = other_fields.get("status") or {}
            found = defects.get(other["key"])
            defects[other["key"]] = uat.Defect(
                key=other["key"], summary=other_fields.get("summary", ""), status=other_status.get("name", ""),
                url=jira.browse_url(other["key"]),
                done=(other_status.get("statusCategory") or {}).get("key") == "done",
                found_in=(*(found.found_in if found else ()), ticket["key"]))
    plan = _plan(cycle)
    testers = list(dict.fromkeys(t["tester"] for t in tickets))
    return uat.UatReport(release=cycle["release"], plan=plan.name, deadline=deadline, deadline_passed=passed_deadline,
                         cases=list(plan.cases), testers=testers, results=results,
                         defects=sorted(defects.values(), key=lambda d: d.key))


class CompileUatReportOperator(BaseOperator):
    """Pass/fail matrix, defects and open items -> HTML (include/templates/uat) and a Confluence page."""

    template_fields: Sequence[str] = ("cycle", "tickets", "jira_conn_id", "confluence_conn_id")

    def __init__(self, *, cycle: Any, tickets: Any, jira_conn_id: str = "jira_default",
                 confluence_conn_id: str = "confluence_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cycle = cycle
        self.tickets = tickets
        self.jira_conn_id = jira_conn_id
        self.confluence_conn_id = confluence_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from hooks.confluence import ConfluenceHook
        from prep_support.messages import render

        cycle, created = self.cycle, self.tickets
        report = read_results(_jira(self.jira_conn_id), cycle, created["tickets"], datetime.now(UTC))
        view = {"report": report, "release_key": created["release_key"], "release_url": created["release_url"],
                "titles": {case.id: case.title for case in report.cases}}
        body = render("uat/report_body.html.j2", **view)
        html = render("uat/report.html.j2", **view)
        hook = ConfluenceHook(confluence_conn_id=self.confluence_conn_id)
        page = hook.publish_page(f"UAT report: {cycle['release']}", body, space=cycle.get("confluence_space"))
        hook.attach_file(page.id, f"uat-report-{cycle['release']}.html", html.encode(), "text/html")
        summary = report.summary()
        self._record(summary, page.url)
        log.info("UAT %s report: %s, page %s", cycle["release"], summary["counts"], page.url)
        return {**summary, "page_url": page.url, "page_id": page.id,
                "signoff_body": uat.signoff_body(report, page.url)}

    def _record(self, summary: dict[str, Any], url: str) -> None:
        from prep_support.schema import UatCycleRow, UatTicketRow

        now = datetime.now(UTC)
        with _support_engine().begin() as connection:
            connection.execute(update(UatCycleRow).where(UatCycleRow.release == summary["release"])
                               .values(status="reported", report=summary, report_url=url, updated_at=now))
            cycle_id = connection.execute(select(UatCycleRow.id).where(UatCycleRow.release == summary["release"])
                                          ).scalar()
            for result in summary["results"]:
                connection.execute(update(UatTicketRow).where(
                    UatTicketRow.cycle_id == cycle_id, UatTicketRow.case_id == result["case_id"],
                    UatTicketRow.tester == result["tester"]).values(outcome=result["outcome"], updated_at=now))


class UatSignOffOperator(HITLOperator):
    """The business owner's approve/reject; ``assigned_users`` is templated (the owner comes from the form)."""

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "assigned_users")


class CloseUatCycleOperator(BaseOperator):
    """Act on the sign-off: release ticket Done (approved) or Rejected with the blockers; announce once."""

    template_fields: Sequence[str] = ("cycle", "tickets", "report", "decision", "jira_conn_id")

    def __init__(self, *, cycle: Any, tickets: Any, report: Any, decision: Any, jira_conn_id: str = "jira_default",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cycle = cycle
        self.tickets = tickets
        self.report = report
        self.decision = decision
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        cycle, report, decision = self.cycle, self.report, self.decision or {}
        release, release_key = cycle["release"], self.tickets["release_key"]
        approved = (decision.get("chosen_options") or ["reject"])[0] == "approve"
        user = hitl.responder(decision) or "nobody (timed out)"
        if approved:  # Airflow let them answer; an admin may answer any step, four eyes may not
            from airflow.sdk.exceptions import AirflowFailException

            try:
                approvals.check_answer(user, requester=started_by(context))
            except approvals.FourEyesError as error:
                raise AirflowFailException(f"{error}: the release is not signed off") from error
        reason = str((decision.get("params_input") or {}).get("comment") or "").strip()
        jira = _jira(self.jira_conn_id)
        marker = f"[{uat.release_label(release)}:decision]"
        if approved:
            jira.comment_once(release_key, marker, jira_text(f"UAT signed off by {user}. {reason}".strip()))
            jira.move_to(release_key, "Done")
        else:
            blockers = report["blockers"] or ["none recorded by the report"]
            text = "\n".join([jira_text(f"UAT rejected by {user}." + (f" Reason: {reason}" if reason else "")),
                              "Blockers:", *[f"* {jira_text(line)}" for line in blockers]])
            jira.comment_once(release_key, marker, text)
            jira.move_to(release_key, "Rejected")
        announcement = self.announcement(approved, user, reason, report)
        from hooks.channels import SlackSender

        posted = _post_once(uat.result_key(release), cycle, announcement, "uat-result", SlackSender())
        self._record(approved, user)
        return {"release": release, "approved": approved, "decided_by": user, "announced": posted}

    def announcement(self, approved: bool, user: str, reason: str, report: dict[str, Any]) -> str:
        esc = slack_text
        release, counts = self.cycle["release"], report["counts"]
        figures = (f"passed {counts['passed']}, failed {counts['failed']}, "
                   f"not done {counts['not done'] + counts['open']}")
        link = uat.slack_link(report["page_url"], "UAT report") if report.get("page_url") else "UAT report"
        if approved:
            return f":white_check_mark: Release *{esc(release)}* signed off by {esc(user)} ({figures}). {link}"
        lines = [f":x: Release *{esc(release)}* rejected by {esc(user)} ({figures})."
                 + (f" Reason: {esc(reason)}" if reason else ""), "Blockers:"]
        lines += [f"- {esc(line)}" for line in report["blockers"]] or ["- none recorded"]
        return "\n".join([*lines, link])

    def _record(self, approved: bool, user: str) -> None:
        from prep_support.schema import UatCycleRow

        now = datetime.now(UTC)
        with _support_engine().begin() as connection:
            connection.execute(update(UatCycleRow).where(UatCycleRow.release == self.cycle["release"]).values(
                status="approved" if approved else "rejected", decided_by=user, decided_at=now, updated_at=now))
