"""Open, update and resolve data-quality incidents; queue warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReconcileQualityOperator(BaseOperator):
    """One incident per failing (dataset, check), with its failing-row sample attached; see
    ``prep_support.quality.tracking``. Safe to retry and to run for any interval (backfills included)."""

    template_fields = ("support_db_conn_id",)

    def __init__(self, *, quality_dir: str | None = None, catalog_path: str | None = None,
                 support_db_conn_id: str = "support_db", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quality_dir = quality_dir
        self.catalog_path = catalog_path
        self.support_db_conn_id = support_db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.database import DatabaseHook
        from hooks.trackers import Trackers
        from prep_support.catalog import load_catalog
        from prep_support.quality.config import load_suites
        from prep_support.quality.tracking import reconcile_quality
        from prep_support.results import sync_catalog
        from prep_support.routing import load_routing

        catalog = load_catalog(self.catalog_path)
        suites, _errors = load_suites(self.quality_dir, catalog=catalog)
        engine = DatabaseHook(conn_id=self.support_db_conn_id).engine
        sync_catalog(engine, catalog)  # incidents name their service; it must be registered
        done = reconcile_quality(engine, suites, catalog, load_routing(catalog), Trackers(), context["run_id"],
                                 datetime.now(UTC))
        self.log.info("Data-quality incidents: %s", done)
        return done
