"""
### Shift handover

At each on-call shift change (`shifts` in `include/config/routing.yaml`: local times and their time
zone), hands every team (a service owner in `services.yaml`) what the next on-call needs:

- **open incidents** of its services with their age, last update, ticket and diagnosis (when the
  incident has one);
- **outages** in progress, and planned ones starting during the shift;
- **data-quality days failing** in validations since the team's last handover;
- **maintenance windows** starting during the shift;
- for the `platform_team`: **approvals and other human-in-the-loop steps waiting** in Airflow and
  **DAG runs that failed** since the last handover (Airflow's REST API, Connection `airflow_api`,
  with links into the UI), and **access-review and UAT deadlines** falling before the shift ends.

One Slack post in the team's channel, a section appended to the day's Confluence page ("Shift
handover <date>") and an e-mail to the team, from `include/templates/handover/`. A shift with
nothing to hand over says so in one line. Keyed on the shift, not the run: a retry, a clear or a
second trigger during the same shift sends nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import MultipleCronTriggerTimetable, dag

from notifiers.callbacks import support_default_args
from operators.shift_handover import ShiftHandoverOperator
from prep_support.catalog import load_catalog
from prep_support.paths import catalog_path
from prep_support.routing import load_routing

CATALOG_PATH = str(catalog_path())
SHIFTS = load_routing(load_catalog(CATALOG_PATH)).shifts  # a broken routing.yaml is this DAG's import error
if SHIFTS is None:
    raise ValueError("include/config/routing.yaml: shifts: missing; shift_handover needs the shift change times")


@dag(
    schedule=MultipleCronTriggerTimetable(*SHIFTS.cron(), timezone=SHIFTS.timezone),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=support_default_args(retry_delay=timedelta(minutes=2)),
    tags=["support", "on-call", "prep-support"],
    doc_md=__doc__,
)
def shift_handover():
    ShiftHandoverOperator(task_id="hand_over", catalog_path=CATALOG_PATH)


shift_handover()
