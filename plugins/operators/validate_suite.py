"""Validate one data-quality suite for the run's data interval and record every outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from notifiers.callbacks import ToldElsewhere

if TYPE_CHECKING:
    from airflow.sdk import Context


class DataChecksFailed(ToldElsewhere):
    """``fail``-severity checks failed on the data: the results are recorded and the incident is
    reconciliation's to tell, so the support channel is not told again and no retry re-runs the checks."""


class ValidateSuiteOperator(BaseOperator):
    """Run a suite's checks on its dataset's slice for the data interval (SQL pushdown, or pandas for files).

    The outcomes are upserted per (suite, check, interval) in one transaction, so re-running a day
    replaces that day and a failure leaves nothing half recorded. After recording, a failed ``fail``
    check ends the task failed without retry (:class:`DataChecksFailed`, naming the checks, the day and
    the counts), like Airflow's SQL check operators: the run is red in the grid, so a backfill of
    failed runs or "clear failed" re-checks exactly the failing days. A suite that cannot be validated
    (database unreachable, table or column missing, timeout) raises a plain error and is retried.
    """

    template_fields = ("suite_id", "support_db_conn_id")
    ui_color = "#fdf2e9"

    def __init__(self, *, suite_id: str, quality_dir: str | None = None, support_db_conn_id: str = "support_db",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite_id = suite_id
        self.quality_dir = quality_dir
        self.support_db_conn_id = support_db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.database import DatabaseHook
        from prep_support.quality.config import load_suites
        from prep_support.quality.store import record_outcomes, volume_history

        suites, errors = load_suites(self.quality_dir)
        suite = next((s for s in suites if s.id == self.suite_id), None)
        if suite is None:
            broken = [str(e) for e in errors if e.suite_id == self.suite_id]
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(broken[0] if broken else f"suite {self.suite_id!r} no longer exists")
        now = datetime.now(UTC)
        start = context.get("data_interval_start") or now
        end = context.get("data_interval_end") or now
        support = DatabaseHook(conn_id=self.support_db_conn_id).engine
        history = volume_history(support, suite, start)
        if suite.files is not None:
            from prep_support.quality.file_engine import validate_files

            outcomes = validate_files(suite, start, end, history)
        else:
            from prep_support.quality.sql_engine import validate_sql

            outcomes = validate_sql(DatabaseHook(conn_id=suite.conn_id).engine, suite, start, end, history)
        record_outcomes(support, suite, outcomes, start, end, context["run_id"], now)
        summary = {"suite": suite.id, "interval": f"{start.isoformat()}/{end.isoformat()}",
                   "passed": sum(o.success for o in outcomes),
                   "failed": [o.check_id for o in outcomes if o.status == "fail"],
                   "warned": [o.check_id for o in outcomes if o.status == "warn"]}
        for outcome in outcomes:
            if not outcome.success:
                self.log.info("%s %s: %s unexpected of %s, observed %r", outcome.status.upper(), outcome.check_id,
                              outcome.unexpected_count, outcome.element_count, outcome.observed_value)
        self.log.info("Suite %s: %s", suite.id, summary)
        failed = [o for o in outcomes if o.status == "fail"]
        if failed:
            from prep_support.quality.incident_plan import failed_checks_summary

            raise DataChecksFailed(failed_checks_summary(suite.id, suite.dataset, start, failed))
        return summary
