"""A SQLAlchemy engine for a database Connection (the support database, the estate's databases)."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL

_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+mysqldb",
}
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


class DatabaseHook(BaseHook):
    """SQLAlchemy access to a ``sqlite`` (host = file path) or ``postgres`` Connection.

    Engines are shared per URL within a process, so the tasks of a sweep reuse their pools.
    """

    conn_name_attr = "conn_id"
    default_conn_name = "support_db"
    conn_type = "sqlite"
    hook_name = "Prep Support database"

    def __init__(self, *, conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    @cached_property
    def url(self) -> URL:
        conn = self.get_connection(self.conn_id)
        return connection_url(self.conn_id, conn.conn_type, conn.host, conn.port, conn.login,
                              conn.password, conn.schema, conn.extra_dejson)

    @property
    def engine(self) -> Engine:
        key = self.url.render_as_string(hide_password=False)
        with _engines_lock:
            if key not in _engines:
                _engines[key] = _create_engine(self.url)
            return _engines[key]

    def test_connection(self) -> tuple[bool, str]:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Connected to {self.url.render_as_string()}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"host": "Host (or the database file's path for SQLite)", "schema": "Database"},
        }


def connection_url(conn_id: str, conn_type: str | None, host: str | None, port: int | None,
                   login: str | None, password: str | None, schema: str | None,
                   extra: dict[str, Any]) -> URL:
    """The SQLAlchemy URL of a Connection's fields; a missing field is named in the error."""
    if conn_type == "sqlite":
        if not host:
            raise ValueError(f"Connection {conn_id!r} (sqlite) needs host = the database file's path")
        return URL.create("sqlite", database=host)
    driver = _DRIVERS.get(conn_type or "")
    if driver is None:
        raise ValueError(
            f"Connection {conn_id!r} has conn_type {conn_type!r}; expected one of sqlite, {', '.join(_DRIVERS)}"
        )
    if not host:
        raise ValueError(f"Connection {conn_id!r} needs a host")
    query = {k: str(v) for k, v in extra.items() if k in ("sslmode", "options", "application_name")}
    return URL.create(driver, username=login or None, password=password or None, host=host,
                      port=port or None, database=schema or None, query=query)


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the UI and the dashboard read while a sweep writes; foreign keys are off by default.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
