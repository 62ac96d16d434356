"""How the dashboard reads the support database: few round trips, and a dropped connection retried once.

A page runs a handful of short SELECTs. On a network database every round trip counts, so the pool for
PostgreSQL keeps its connections in autocommit (no BEGIN and ROLLBACK around each page; under READ
COMMITTED each statement reads its own snapshot either way) and does not ping before each use. A
connection the server closed meanwhile (a restart, an idle timeout) makes that one attempt fail; SQLAlchemy
then discards the pool's stale connections and the page is read again once, on a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")


def reader_engine(url: URL, pool_size: int = 5) -> Engine:
    """A pool for reading pages from a server database (not SQLite: use the shared engine there)."""
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=pool_size, max_overflow=pool_size,
                         pool_pre_ping=False)


def read(engine: Engine, load: Callable[[Connection], T]) -> T:
    """``load(connection)`` on a pooled connection, again on a fresh one if the first had been dropped."""
    try:
        with engine.connect() as connection:
            return load(connection)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    with engine.connect() as connection:
        return load(connection)
