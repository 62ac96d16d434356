"""
### Data quality

Every night at 02:00 UTC, validate each data-quality suite (`include/config/quality/*.yaml`,
one file per dataset) on the slice of its data that belongs to the run's data interval
(the previous day), and act on the outcome:

- `validate_suite` (mapped, one per suite): Great Expectations semantics, pushed down to SQL
  on PostgreSQL and SQLite (pandas for file suites). Outcomes are upserted per
  (suite, check, interval): re-running a day replaces that day (the latest evaluation wins).
  When a `fail` check failed, the task ends **failed** after recording, without retry, its log
  naming the checks, the day and the counts; so does `fail_run_when_validation_failed`, which
  makes the run red in the grid. A suite that cannot be validated (database unreachable) is retried.
- `reconcile_quality` (runs whatever happened): one incident per failing `fail` check (Jira or
  ServiceNow by the suite's service, `include/config/routing.yaml`), open while the latest
  result of any day fails, listing each failing day with its counts and a CSV sample of its
  failing rows (sensitive columns masked) on the ticket; resolved when every failing day,
  re-checked, passes. New failing days comment on the ticket, without a message; a problem back
  within `reopen_within` re-opens the same ticket. A failing `warn` check notifies the team
  channel, without an incident.
- `send_notifications`: the messages, once each. Failing data is not reported again to the
  support channel: its incident message says it.

A suite can also run when its producer updates an asset (`schedule_on_asset` in the suite):
such a run validates only the suites of the updated assets, for the day so far.

**Backfill** (catchup is on from `PREP_DQ_START_DATE`, default 2026-11-01). Failing days are the red
runs; once the data is fixed, re-check exactly those ("missing and errored runs" in the UI's backfill
dialog, or):

    airflow backfill create --dag-id data_quality --from-date 2026-11-20 --to-date 2026-11-22 \\
        --reprocess-behavior failed

A broken suite file fails only `report_broken_suites`, naming the file, check and field;
the other suites still run.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable, dag, task

from notifiers.callbacks import support_default_args
from operators.reconcile_quality import ReconcileQualityOperator
from operators.send_notifications import SendNotificationsOperator
from operators.validate_suite import ValidateSuiteOperator
from prep_support.catalog import load_catalog
from prep_support.quality.config import load_suites

START = datetime.fromisoformat(os.environ.get("PREP_DQ_START_DATE", "2026-11-01T00:00:00+00:00"))
SUITES, BROKEN = load_suites(catalog=load_catalog())
ASSETS = sorted({suite.schedule_on_asset for suite in SUITES if suite.schedule_on_asset})
NIGHTLY = CronDataIntervalTimetable("0 2 * * *", timezone="UTC")


@dag(
    schedule=AssetOrTimeSchedule(timetable=NIGHTLY, assets=[Asset(uri) for uri in ASSETS]) if ASSETS else NIGHTLY,
    start_date=START,
    catchup=True,
    max_active_runs=3,
    dagrun_timeout=timedelta(hours=4),
    default_args=support_default_args(retry_delay=timedelta(minutes=2)),
    tags=["data-quality", "prep-support"],
    doc_md=__doc__,
)
def data_quality():
    @task
    def select_suites(dag_run=None, triggering_asset_events=None) -> list[str]:
        """All suites; in an asset-triggered run only those whose asset was updated."""
        if str(dag_run.run_type) != "asset_triggered":
            return [suite.id for suite in SUITES]
        updated = {str(asset.uri) for asset in (triggering_asset_events or {})}
        return [suite.id for suite in SUITES if suite.schedule_on_asset in updated]

    @task
    def report_broken_suites() -> None:
        """Fail (and so tell the support channel) when a suite file does not validate."""
        if BROKEN:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("broken data-quality suites:\n" + "\n".join(str(e) for e in BROKEN))

    # Each suite's own timeout_s bounds its queries; the try gets that plus time to connect and record.
    longest = max((suite.timeout_s for suite in SUITES), default=600)
    validated = ValidateSuiteOperator.partial(
        task_id="validate_suite", execution_timeout=timedelta(seconds=longest + 300)).expand(suite_id=select_suites())
    # Catch-up runs three intervals at once: two reconciliations side by side would each search the tracker,
    # find nothing and open a ticket each for the same check. One at a time across runs, they see each other.
    reconcile = ReconcileQualityOperator(task_id="reconcile_quality", trigger_rule="all_done", max_active_tis_per_dag=1)
    notify = SendNotificationsOperator(task_id="send_notifications", trigger_rule="all_done", max_active_tis_per_dag=1)
    validated >> reconcile >> notify

    @task(trigger_rule="one_failed")  # AirflowFailException: never retried
    def fail_run_when_validation_failed() -> None:
        """Airflow sets a run's state from its last tasks, and reconciliation runs whatever happened: this one
        runs only when a validate_suite failed, so the run is red (and backfill/clear of failed runs finds it)."""
        from notifiers.callbacks import ToldElsewhere

        raise ToldElsewhere("validate_suite failed for this interval; its log names the checks, days and counts "
                            "(or why the suite could not be validated)")

    validated >> fail_run_when_validation_failed()
    report_broken_suites()


data_quality()
