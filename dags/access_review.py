"""
### Access review

Every quarter (06:00 UTC on 1 January, April, July and October; catchup on from
`PREP_ACCESS_REVIEW_START_DATE`, default 2026-01-01, so a missed quarter still runs) a user access
review campaign, `2026-Q4` for the run of 1 October 2026 (or the
`campaign` given when triggered by hand), under `include/config/access/policy.yaml`:

1. **snapshot**: every Okta user and group membership, every directory (LDAP/AD) account and
   group, and the HR roster, stored in the support database for the campaign with a SHA-256
   manifest per source (rows, hash of the canonical CSV, when read). A re-run replaces it.
2. **find_access_issues**: leavers still active, orphans, dormant accounts, privileged access,
   separation-of-duty conflicts, role drift and the change since the previous campaign; then
   the review items, routed to managers or application owners (never to the person whose
   access it is: up the manager chain instead), and an HTML + CSV packet per reviewer.
3. **review_access**: one form per reviewer (*Required actions* in the UI), keep or revoke per
   item plus a comment; only that reviewer may answer; undecided items take the policy's default
   at the response timeout. **remind_reviewers** reminds each reviewer still deciding before it, in
   a Slack direct message (found by their HR e-mail, else username; someone Slack does not know is
   reminded on the review channel with an @-mention).
   **approve_leavers**: the leaver approvers approve disabling leavers' accounts still active.
   Decisions are stored with who, when and why; a decided item is never asked again, so a
   killed and cleared run continues where it stopped.
4. **remediate**: revokes what was rejected (Okta group removal or deactivation, directory group
   removal or disable), once per `campaign/item`, verified by reading the system again.
5. **publish_evidence**: population, findings, decisions, remediation and a SHA-256 manifest of
   the files, written under `$AIRFLOW_HOME/access_reviews/<campaign>/`, published as the
   Confluence page *Access review <campaign>* with the files attached, and a summary posted once
   to the support channel (ledger key `access:<campaign>:summary:slack`).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag

from notifiers.callbacks import support_default_args
from operators.access_review import (
    ApproveLeaverRemediationOperator,
    FindAccessIssuesOperator,
    PublishEvidenceOperator,
    RemediateAccessOperator,
    RemindReviewersSensor,
    ReviewAccessOperator,
    SnapshotIdentitiesOperator,
)
from prep_support.access.policy import load_policy, policy_path

POLICY_PATH = str(policy_path())

# Validated while parsing: a broken policy is this DAG's import error (file, line, field).
POLICY = load_policy(POLICY_PATH)
# Catchup runs every quarter from here; a deployment (or the quick start) starting later sets its own.
START = datetime.fromisoformat(os.environ.get("PREP_ACCESS_REVIEW_START_DATE", "2026-01-01T00:00:00+00:00"))


@dag(
    schedule=CronTriggerTimetable("0 6 1 1,4,7,10 *", timezone="UTC"),
    start_date=START,
    catchup=True,
    max_active_runs=1,
    # A snapshot of 100,000 identities takes minutes; two hours is far past any healthy try.
    default_args=support_default_args(retry_delay=timedelta(minutes=5), execution_timeout=timedelta(hours=2)),
    tags=["access", "audit", "prep-support"],
    doc_md=__doc__,
    params={
        "campaign": Param(None, type=["null", "string"], pattern=r"^\d{4}-Q[1-4]$", title="Campaign",
                          description="Campaign id (e.g. 2026-Q4); empty = the quarter of the run's date. "
                                      "You are recorded as who started it (the schedule: the system)."),
    },
)
def access_review():
    step = {"policy_path": POLICY_PATH}
    snapshot = SnapshotIdentitiesOperator(task_id="snapshot", **step)
    find = FindAccessIssuesOperator(task_id="find_access_issues", **step)
    # Waits for people: bounded by their response_timeout / timeout, not by execution_timeout.
    review = ReviewAccessOperator.partial(task_id="review_access", execution_timeout=None, **step).expand(
        reviewer=find.output)
    leavers = ApproveLeaverRemediationOperator(task_id="approve_leavers", execution_timeout=None, **step)
    remind = RemindReviewersSensor(
        task_id="remind_reviewers", poke_interval=POLICY.review.reminder_check_minutes * 60,
        timeout=POLICY.review.response_timeout.total_seconds() + 3600, execution_timeout=None, **step)
    # none_failed: with no reviewer (or no leaver) the mapped review is skipped, and remediation still runs.
    remediate = RemediateAccessOperator(task_id="remediate", trigger_rule="none_failed", **step)
    publish = PublishEvidenceOperator(task_id="publish_evidence", **step)
    snapshot >> find >> [review, leavers, remind]
    [review, leavers] >> remediate >> publish


access_review()
