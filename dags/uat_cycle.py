"""
### UAT cycle

Started from the form by an analyst: coordinates the business users' acceptance testing of a
release and gates it on the business owner's sign-off.

1. **plan_cycle**: the test plan is `include/config/uat/<plan>.yaml` (cases with steps,
   expected results and testers) or `jql: <query>` (each issue found is a case; then the form's
   *testers* are required). The form's *testers* replace the plan's assignment. A bad plan fails
   here, naming the file, the case and the field.
2. **create_tickets**: a release ticket in Jira and a Sub-task per case and tester (steps and
   expected result in its description), linked to the release ticket. Labels
   `prep-support:uat:<release>[:<case>:<tester>]` make a re-run find them instead of creating more.
3. **notify_testers**: one Slack direct message per tester listing their cases with links (once).
   A tester Slack does not know (no member with that username) is told on the plan's channel
   with an @-mention instead, and the log warns about them.
4. **wait_for_results**: a sensor in reschedule mode (no worker slot held between pokes) until
   every sub-task is Passed or Failed, or the deadline passes; testers with open cases are
   reminded by direct message at the plan's hours before the deadline, once per tester and reminder.
5. **compile_report**: pass/fail matrix per case and tester, defects (Bugs linked to the
   sub-tasks) and open items (*not done* once the deadline has passed), as HTML and a Confluence
   page `UAT report: <release>` (updated in place on a re-run).
6. **business_signoff**: the business owner approves or rejects in the UI (Required Actions),
   seeing the matrix and the open items. Only that user may answer.
7. **close_cycle**: approved -> the release ticket goes to Done; rejected -> Rejected, with a
   comment listing the blockers; the result is announced on the plan's Slack channel once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag

from notifiers.callbacks import support_default_args
from operators.uat_cycle import (
    CloseUatCycleOperator,
    CompileUatReportOperator,
    CreateUatTicketsOperator,
    NotifyTestersOperator,
    PlanUatCycleOperator,
    UatSignOffOperator,
)
from prep_support import uat
from sensors.uat import UatResultsSensor

PLANS = uat.plan_names()
JQL_EXAMPLE = "jql: project = UAT AND labels = regression"


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=5,
    default_args=support_default_args(retry_delay=timedelta(minutes=2)),
    tags=["uat", "prep-support"],
    doc_md=__doc__,
    params={
        "release": Param(type="string", pattern=uat.RELEASE_PATTERN, title="Release",
                         description="The release under test, e.g. 2026.03-checkout (letters, digits, . _ -)."),
        "test_plan": Param(PLANS[0] if PLANS else JQL_EXAMPLE, type="string",
                           pattern=uat.plan_choice_pattern(PLANS), examples=[*PLANS, JQL_EXAMPLE],
                           title="Test plan",
                           description="A plan from include/config/uat/, or 'jql: <query>' whose issues are the "
                                       "cases (then list the testers)."),
        "business_owner": Param(type="string", pattern=uat.USERNAME_PATTERN, title="Business owner",
                                description="The username who signs the release off: not one of the testers, "
                                            "and not you (who starts the cycle)."),
        "deadline": Param(type="string", format="date-time", pattern=uat.DEADLINE_PATTERN, title="Deadline",
                          description="When testing closes (UTC); open cases are then reported as not done."),
        "testers": Param([], type="array", items={"type": "string", "pattern": uat.USERNAME_PATTERN},
                         uniqueItems=True, title="Testers", section="Testers (optional)",
                         description="Usernames; when given, each of them tests every case instead of the plan's "
                                     "assignment."),
    },
)
def uat_cycle():
    plan = PlanUatCycleOperator(task_id="plan_cycle")
    tickets = CreateUatTicketsOperator(task_id="create_tickets", cycle=plan.output)
    notify = NotifyTestersOperator(task_id="notify_testers", cycle=plan.output, tickets=tickets.output)
    wait = UatResultsSensor(task_id="wait_for_results", cycle=plan.output, tickets=tickets.output,
                            poke_interval=timedelta(minutes=15), execution_timeout=None)
    report = CompileUatReportOperator(task_id="compile_report", cycle=plan.output, tickets=tickets.output)
    signoff = UatSignOffOperator(
        task_id="business_signoff",
        subject="UAT sign-off: release {{ params.release }}",
        body="{{ ti.xcom_pull(task_ids='compile_report')['signoff_body'] }}",
        options=["approve", "reject"],
        assigned_users=[{"id": "{{ params.business_owner }}", "name": "{{ params.business_owner }}"}],
        params={"comment": Param("", type="string", title="Comment",
                                 description="Why (shown on the release ticket and in the announcement).")},
        # Unanswered for two weeks: rejected, never approved by default.
        response_timeout=timedelta(days=14),
        defaults=["reject"],
        execution_timeout=None,  # the wait is bounded by response_timeout
    )
    close = CloseUatCycleOperator(task_id="close_cycle", cycle=plan.output, tickets=tickets.output,
                                  report=report.output, decision=signoff.output)
    notify >> wait >> report >> signoff >> close


uat_cycle()
