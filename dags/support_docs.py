"""
### Support docs

Weekly (Monday 06:00 UTC), and whenever `health_sweep` registers a changed service catalog (the
`prep-support://catalog` asset), publishes:

- a **runbook page per service**: owner, checks, dependencies (both ways), current health from
  the support database, recent incidents (last 90 days, newest 10), and how to restart and fail
  over as written in the catalog's `runbook` (`include/config/services.yaml`);
- a **"How do I?" knowledge base** from resolved Jira tickets labelled `how-to` (question = the
  summary, answer = the resolution comment or else the description, with a link).

Each page goes to **Confluence** (by title, under "Prep Support runbooks": never duplicated,
updated in place, no new version when unchanged) and to **SharePoint** (one HTML file per page
in the "Support docs" folder of the site's document library, replaced in place, identical
content skipped). Catalog and ticket text is escaped: it shows as text, never as markup.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag
from support_assets import CATALOG

from notifiers.callbacks import support_default_args
from operators.support_docs import PublishSupportDocsOperator
from prep_support.paths import catalog_path

CATALOG_PATH = str(catalog_path())


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * 1", timezone="UTC"), assets=CATALOG),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=support_default_args(retry_delay=timedelta(minutes=5)),
    tags=["docs", "prep-support"],
    doc_md=__doc__,
)
def support_docs():
    PublishSupportDocsOperator(task_id="publish_docs", catalog_path=CATALOG_PATH)


support_docs()
