"""Fold a sweep's results into health: hourly rollups, performance trends, check and service states."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from operators.probe_checks import is_live_run
from operators.support_state import SupportStateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class EvaluateHealthOperator(SupportStateOperator):
    """Update the support database's health from this run's results (one transaction, safe to retry)."""

    def execute(self, context: Context) -> dict[str, Any]:
        from prep_support.monitoring import evaluate_sweep

        catalog, routing = self.load_config()
        now = datetime.now(UTC)
        start = context.get("data_interval_start") or now
        end = context.get("data_interval_end") or now
        live = is_live_run(context["dag_run"].run_type, end, now)
        evaluation = evaluate_sweep(self.support_engine(), catalog, routing.thresholds, context["run_id"],
                                    start, end, now, live)
        for transition in evaluation.transitions:
            self.log.info("%s: %s -> %s%s (%s)", transition.check_id, transition.before, transition.after,
                          " [flapping]" if transition.flapping else "", transition.detail)
        summary = evaluation.summary() | {"live": live}
        self.log.info("Health: %s", summary)
        return summary
