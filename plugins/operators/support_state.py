"""The base of the operators that read the service catalog and its routing and keep state in the support database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from prep_support.catalog import Catalog
    from prep_support.routing import Routing


class SupportStateOperator(BaseOperator):
    """Holds where the catalog, the routing and the support database are; loads them inside ``execute``.

    A path left out means the default file (``prep_support.paths``); both files are read only when the
    task runs, so a DAG file that builds these operators stays cheap to parse.
    """

    template_fields: Sequence[str] = ("support_db_conn_id",)

    def __init__(self, *, catalog_path: str | None = None, routing_path: str | None = None,
                 support_db_conn_id: str = "support_db", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalog_path = catalog_path
        self.routing_path = routing_path
        self.support_db_conn_id = support_db_conn_id

    def load_config(self) -> tuple[Catalog, Routing]:
        """The validated catalog and the routing of its services."""
        from prep_support.catalog import load_catalog
        from prep_support.routing import load_routing

        catalog = load_catalog(self.catalog_path)
        return catalog, load_routing(catalog, self.routing_path)

    def support_engine(self) -> Engine:
        from hooks.database import DatabaseHook

        return DatabaseHook(conn_id=self.support_db_conn_id).engine
