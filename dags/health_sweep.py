"""
### Health sweep

Every five minutes, probe every check in the service catalog
(`include/config/services.yaml`) and record one result per check in the support
database (`support_db`).

- **http** and **tcp** checks are live probes, run concurrently in a few mapped
  batches with a timeout each, so one dead endpoint delays nobody. In a run for a
  past interval (a backfill, or a run cleared long after) they are recorded as
  *not evaluable*: the past cannot be probed now.
- **sql** checks evaluate the run's data interval, so a backfill fills history.
- An application being down is a result, not a task failure; a task fails only on
  its own errors (support database or Connection missing), and is retried.
- Re-running a run replaces its results (keyed on check and run id).

A bad catalog fails this DAG's import with the file, entry, field and line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from operators.probe_checks import ProbeChecksOperator
from prep_support.catalog import load_catalog
from prep_support.paths import catalog_path

CATALOG_PATH = str(catalog_path())
BATCH_SIZE = 250  # a mapped task costs seconds to schedule, a probe milliseconds

# Validated while parsing, from a cache keyed on the file's hash: a broken catalog is this DAG's import error.
load_catalog(CATALOG_PATH)


@dag(
    # Each run covers the five minutes before it: results are stored with that data interval.
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    default_args={"owner": "production-support", "retries": 2, "retry_delay": timedelta(seconds=20)},
    tags=["monitoring", "prep-support"],
    doc_md=__doc__,
)
def health_sweep():
    @task
    def register_catalog() -> list[list[str]]:
        """Store services and checks as loaded, and split the checks into probe batches."""
        from hooks.database import DatabaseHook
        from prep_support.results import sync_catalog

        catalog = load_catalog(CATALOG_PATH)
        print(sync_catalog(DatabaseHook(conn_id="support_db").engine, catalog))
        keys = sorted(catalog.checks_by_key)
        return [keys[first : first + BATCH_SIZE] for first in range(0, len(keys), BATCH_SIZE)]

    @task
    def summarize(run_id: str | None = None) -> dict[str, int]:
        """Count this run's results by status (the sweep's one-line report)."""
        from hooks.database import DatabaseHook
        from prep_support.results import status_counts

        counts = status_counts(DatabaseHook(conn_id="support_db").engine, run_id)
        print(f"Sweep {run_id}: {counts}")
        return counts

    probes = ProbeChecksOperator.partial(task_id="probe_checks", catalog_path=CATALOG_PATH).expand(
        check_keys=register_catalog()
    )
    probes >> summarize()


health_sweep()
