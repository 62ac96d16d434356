"""Fold a sweep's results into health: hourly rollups, performance trends, check and service states."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from operators.probe_checks import is_live_run

if TYPE_CHECKING:
    from airflow.sdk import Context


class EvaluateHealthOperator(BaseOperator):
    """Update the support database's health from this run's results (one transaction, safe to retry)."""

    template_fields = ("support_db_conn_id",)

    def __init__(self, *, catalog_path: str | None = None, routing_path: str | None = None,
                 support_db_conn_id: str = "support_db", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalog_path = catalog_path
        self.routing_path = routing_path
        self.support_db_conn_id = support_db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.database import DatabaseHook
        from prep_support.catalog import load_catalog
        from prep_support.monitoring import evaluate_sweep
        from prep_support.routing import load_routing

        catalog = load_catalog(self.catalog_path)
        routing = load_routing(catalog, self.routing_path)
        now = datetime.now(UTC)
        start = context.get("data_interval_start") or now
        end = context.get("data_interval_end") or now
        live = is_live_run(context["dag_run"].run_type, end, now)
        evaluation = evaluate_sweep(DatabaseHook(conn_id=self.support_db_conn_id).engine, catalog,
                                    routing.thresholds, context["run_id"], start, end, now, live)
        for transition in evaluation.transitions:
            self.log.info("%s: %s -> %s%s (%s)", transition.check_id, transition.before, transition.after,
                          " [flapping]" if transition.flapping else "", transition.detail)
        summary = evaluation.summary() | {"live": live}
        self.log.info("Health: %s", summary)
        return summary
