"""
### Service trend report

Every Monday at 07:00 UTC, a weekly trend report per service in the catalog
(`include/config/services.yaml`), from the hourly rollups `health_sweep` keeps in the
support database (`support_db`):

- **Availability**, the SLA figure: the share of the service's *critical* checks' evaluated
  results that did not fail, over the week (a slow `warn` counts as available, a
  not-evaluable result not at all; no results is "no data", never 100 %). Each check gets
  its own figure the same way.
- **A chart** (PNG): p95 latency per check over the week, and availability hour by hour.

The report covers the last full calendar week (Monday 00:00 to Monday 00:00 UTC) before the
run's data interval ends, so the scheduled run reports the week that ended seven hours
earlier, and a backfill or a cleared run reports the same week again, never "now".

Each report is kept in the `trend_reports` table (a re-run replaces that week's row) and
posted to the service's team channel (`include/config/routing.yaml`) as a message with the
figures and the chart attached, once: the notification ledger keys it
`report:<service>:<week start>:slack`, so a retry or re-run posts nothing twice. A report
that could not be posted fails the task after the others were posted; the retry posts the
rest. Any failed task is reported to the support channel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag

from notifiers.callbacks import support_default_args
from operators.trend_report import TrendReportOperator
from prep_support.catalog import load_catalog
from prep_support.paths import catalog_path
from prep_support.routing import load_routing

CATALOG_PATH = str(catalog_path())

# Validated while parsing (the catalog from a cache keyed on its hash): a broken file is this DAG's import error.
load_routing(load_catalog(CATALOG_PATH))


@dag(
    # Each run's data interval is the week before it (Monday 07:00 to Monday 07:00 UTC).
    schedule=CronDataIntervalTimetable("0 7 * * 1", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=support_default_args(retry_delay=timedelta(minutes=5)),
    tags=["monitoring", "reports", "prep-support"],
    doc_md=__doc__,
)
def service_trend_report():
    TrendReportOperator(task_id="report_services", catalog_path=CATALOG_PATH)


service_trend_report()
