"""The support dashboard inside Airflow: a FastAPI app mounted by the API server at ``/support-dashboard``,
and a "Support dashboard" entry in the UI's Browse menu that shows it in the UI (an external view).

Registering it costs nothing: the app (FastAPI, Jinja, the queries) is built on its first request, and
the support database's engine, from the ``support_db`` Connection, on the first request that reads it.
Airflow does not guard plugin apps, so every page asks Airflow's auth manager first: the caller needs a
valid Airflow session (the UI's ``_token`` cookie, which the embedded view sends, or a bearer token) and
access to the UI (``AccessView.WEBSITE``, which every role has, viewers included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.plugins_manager import AirflowPlugin

from prep_support.dashboard.lazy import ASGIApp, LazyASGIApp

if TYPE_CHECKING:
    from sqlalchemy import Engine

URL_PREFIX = "/support-dashboard"
SUPPORT_DB_CONN_ID = "support_db"


def support_db_engine() -> Engine:
    """The support database from the ``support_db`` Connection: PostgreSQL through the dashboard's own
    reading pool (see ``prep_support.dashboard.database``), SQLite through the hook's shared engine."""
    from hooks.database import DatabaseHook
    from prep_support.dashboard.database import reader_engine

    hook = DatabaseHook(conn_id=SUPPORT_DB_CONN_ID)
    return hook.engine if hook.url.get_backend_name() == "sqlite" else reader_engine(hook.url)


def build_dashboard() -> ASGIApp:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends

    from prep_support.dashboard.app import create_app

    return create_app(support_db_engine, dependencies=[Depends(requires_access_view(AccessView.WEBSITE))])


dashboard_app = LazyASGIApp(build_dashboard)


class SupportDashboardPlugin(AirflowPlugin):
    name = "prep_support_dashboard"
    fastapi_apps = [{"app": dashboard_app, "url_prefix": URL_PREFIX, "name": "Prep Support dashboard"}]
    external_views = [
        {
            "name": "Support dashboard",
            # Relative to the UI's base URL (no leading slash), so a deployment under a sub-path works;
            # the trailing slash keeps the dashboard's own relative links inside the prefix.
            "href": f"{URL_PREFIX.lstrip('/')}/",
            # Shown inside the UI (an iframe at /plugin/support-dashboard) rather than in a new tab.
            "url_route": "support-dashboard",
            "destination": "nav",
            "category": "browse",
        }
    ]
