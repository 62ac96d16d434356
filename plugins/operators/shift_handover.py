"""Hand each team's next on-call what the last shift left: Slack, the day's Confluence page, e-mail.

Everything is keyed on the shift (``prep_support.shifts.shift_at`` of the run's logical date), not
on the run: the handover is recorded once per team and shift with its Slack post and e-mail queued
in the outbox in the same transaction (keys ``handover:<team>:<shift start>:slack|email``), and the
Confluence section carries an anchor that is looked for before appending. So a retry, a clear or a
second trigger within the shift sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from operators.support_state import SupportStateOperator


class ShiftHandoverOperator(SupportStateOperator):
    template_fields: Sequence[str] = ("support_db_conn_id",)

    def __init__(self, *, airflow_api_conn_id: str = "airflow_api", confluence_conn_id: str = "confluence_default",
                 smtp_conn_id: str = "smtp_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.airflow_api_conn_id = airflow_api_conn_id
        self.confluence_conn_id = confluence_conn_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from hooks.channels import senders
        from prep_support import handover_store as store
        from prep_support.outbox import send_pending
        from prep_support.shifts import plan_handover, shift_at, teams_of

        catalog, routing = self.load_config()
        if routing.shifts is None:
            raise ValueError("routing.yaml has no 'shifts' section: shift_handover does not know when shifts change")
        shifts = routing.shifts
        shift = shift_at(context["logical_date"] or datetime.now(UTC), shifts)
        engine = self.support_engine()
        teams = teams_of((s.id, s.name, s.owner) for s in catalog.services)
        earliest = min(store.last_handover(engine, t.id, shift.start) or shift.previous_start for t in teams)
        facts = self.facts(engine, catalog, shift, earliest, platform=bool(shifts.platform_team))
        now = datetime.now(UTC)
        done = []
        for team in teams:
            since = store.last_handover(engine, team.id, shift.start) or shift.previous_start
            handover = plan_handover(team, shift, since, facts, platform_team=shifts.platform_team)
            recorded = self.record_and_queue(engine, catalog, routing, handover, now)
            page = self.append_to_page(handover, shifts)
            store.record_page(engine, team.id, shift.start, page)
            done.append({"team": team.id, "items": handover.items, "recorded_now": recorded, "page": page})
            self.log.info("%s: %d item(s) %s", team.id, handover.items, handover.summary())
        sent = send_pending(engine, senders(), datetime.now(UTC))
        return {"shift_start": shift.start.isoformat(), "shift_end": shift.end.isoformat(), "teams": done, **sent}

    def facts(self, engine: Any, catalog: Any, shift: Any, since: datetime, *, platform: bool) -> Any:
        from prep_support import handover_store as store
        from prep_support.shifts import Facts

        return Facts(
            incidents=store.open_incidents(engine),
            outages=store.outages(engine, shift.end),
            failing_days=store.failing_days(engine, since, suite_services(catalog)),
            maintenance=store.maintenance_starting(engine, shift.start, shift.end),
            deadlines=store.deadlines(engine, review_timeout()) if platform else (),
            **(self.airflow_facts(since, shift.start) if platform else {}),
        )

    def airflow_facts(self, since: datetime, until: datetime) -> dict[str, Any]:
        """Approvals and other HITL steps waiting, and DAG runs that failed, from Airflow's REST API."""
        from hooks.airflow_api import AirflowApiHook
        from prep_support.how_to import jira_time
        from prep_support.shifts import FailedRun, WaitingStep

        api = AirflowApiHook(airflow_api_conn_id=self.airflow_api_conn_id)
        waiting = []
        for detail in api.waiting_for_input():
            ti = detail["task_instance"]
            waiting.append(WaitingStep(
                dag_id=ti["dag_id"], run_id=ti["dag_run_id"], task_id=ti["task_id"], subject=detail["subject"],
                since=jira_time(detail.get("created_at")) or until,
                assignees=tuple(u.get("name") or u.get("id") for u in detail.get("assigned_users") or []),
                url=api.required_action_url(ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti.get("map_index", -1))))
        failed = [FailedRun(r["dag_id"], r["dag_run_id"], jira_time(r.get("end_date")) or until,
                            api.run_url(r["dag_id"], r["dag_run_id"]))
                  for r in api.failed_runs(since, until) if r["dag_id"] != self.dag_id]
        return {"waiting": waiting, "failed_runs": failed}

    def record_and_queue(self, engine: Any, catalog: Any, routing: Any, handover: Any, now: datetime) -> bool:
        """Record the team's handover and queue its post and e-mail, together; False if this shift's was recorded."""
        from prep_support import handover_store as store
        from prep_support.messages import render, render_slack
        from prep_support.reconcile import queue_message
        from prep_support.shifts import handover_key

        services = {s.id: s for s in catalog.services}
        route = routing.route(services[handover.team.services[0]])
        context = self.render_context(handover, routing.shifts)
        with engine.begin() as connection:
            if not store.record_handover(connection, team=handover.team.id, shift_start=handover.shift.start,
                                         shift_end=handover.shift.end, since=handover.since, items=handover.items,
                                         summary=handover.summary(), now=now):
                return False
            subject = f"Handover to {context['team_name']}: {context['shift_label']}"
            if route.slack_channel and route.channels.slack is not None:
                queue_message(connection, key=handover_key(handover.team, handover.shift, "slack"), incident_id=None,
                              event="handover", channel="slack", conn_id=route.channels.slack.conn_id,
                              target=route.slack_channel, subject=subject,
                              body=render_slack("handover/slack.txt.j2", **context), now=now)
            to = route.channels.email.to if route.channels.email else [handover.team.id]
            section = render("handover/section.html.j2", anchor="", **context)
            queue_message(connection, key=handover_key(handover.team, handover.shift, "email"), incident_id=None,
                          event="handover", channel="email",
                          conn_id=route.channels.email.conn_id if route.channels.email else self.smtp_conn_id,
                          target=",".join(to), subject=subject,
                          body=render("handover/email.html.j2", section=section, **context), now=now)
        return True

    def append_to_page(self, handover: Any, shifts: Any) -> str:
        """Append the team's section to the day's page unless its anchor is there; the page's URL."""
        from hooks.confluence import ConfluenceHook
        from prep_support.messages import render
        from prep_support.shifts import section_anchor

        confluence = ConfluenceHook(confluence_conn_id=self.confluence_conn_id)
        title = shifts.page_title.format(date=handover.shift.local_date.isoformat())
        anchor = section_anchor(handover.team, handover.shift)
        page = confluence.find_page(title, space=shifts.confluence_space)
        body = confluence.page_body(page) if page is not None else ""
        if page is not None and anchor in body:
            return page.url
        section = render("handover/section.html.j2", anchor=anchor, **self.render_context(handover, shifts))
        return confluence.publish_page(title, f"{body}\n{section}".strip(), space=shifts.confluence_space).url

    @staticmethod
    def render_context(handover: Any, shifts: Any) -> dict[str, Any]:
        from prep_support.messages import human_duration

        zone, now = shifts.zone, datetime.now(UTC)
        names = handover.team.service_names
        return {
            "h": handover, "team_name": handover.team.id.split("@")[0],
            "shift_label": handover.shift.label(zone),
            "since_label": f"{handover.since.astimezone(zone):%a %d %b %H:%M %Z}",
            "ago": lambda moment: human_duration(now - moment),
            "local": lambda moment: f"{moment.astimezone(zone):%a %d %b %H:%M %Z}",
            "name": lambda service_id: names.get(service_id, service_id),
        }


def suite_services(catalog: Any) -> dict[str, str]:
    """suite id -> its service, from include/config/quality/ (a broken suite is left out: data_quality reports it)."""
    from prep_support.quality.config import load_suites

    suites, _broken = load_suites(catalog=catalog)
    return {suite.id: suite.service for suite in suites}


def review_timeout() -> Any:
    """How long reviewers have to answer an access review (the access policy), or None if it does not load."""
    from prep_support.access.policy import load_policy

    try:
        return load_policy().review.response_timeout
    except Exception:  # noqa: BLE001 - a broken policy breaks access_review, not the handover
        return None
