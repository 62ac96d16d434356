"""Open, update and resolve data-quality incidents; queue warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from operators.support_state import SupportStateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReconcileQualityOperator(SupportStateOperator):
    """One incident per failing (dataset, check), with its failing-row sample attached; see
    ``prep_support.quality.tracking``. Safe to retry and to run for any interval (backfills included)."""

    def __init__(self, *, quality_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quality_dir = quality_dir

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.trackers import Trackers
        from prep_support.quality.config import load_suites
        from prep_support.quality.tracking import reconcile_quality
        from prep_support.results import sync_catalog

        catalog, routing = self.load_config()
        suites, _errors = load_suites(self.quality_dir, catalog=catalog)
        engine = self.support_engine()
        sync_catalog(engine, catalog)  # incidents name their service; it must be registered
        done = reconcile_quality(engine, suites, catalog, routing, Trackers(), context["run_id"], datetime.now(UTC))
        self.log.info("Data-quality incidents: %s", done)
        return done
