"""How the dashboard reads the support database: few round trips, the page's statements two at a time,
and a dropped connection retried once.

A page runs a handful of short SELECTs. On a network database every round trip counts, so the pool for
PostgreSQL keeps its connections in autocommit (no BEGIN and ROLLBACK around each page; under READ
COMMITTED each statement reads its own snapshot either way) and does not ping before each use. A
connection the server closed meanwhile (a restart, an idle timeout) makes that one attempt fail; SQLAlchemy
then discards the pool's stale connections and the page is read again once, on a fresh one.

A page's statements are independent reads, so :func:`read_together` runs them in groups at the same time,
each group on its own pooled connection: the page waits for its slowest group, not for the sum of all.
The drivers release the GIL while the server works, so plain threads are enough.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
READERS = 8  # threads reading for pages at the same time, beside the request's own
_readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="dashboard-read")


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


def read_together(engine: Engine, *loads: Callable[[Connection], Any]) -> list[Any]:
    """Each of ``loads`` on its own pooled connection (see :func:`read`), all at once; their results in order.

    The first runs on the calling thread, the others on the dashboard's reader threads. If one fails, its
    error is raised after the others have finished, so no connection is left busy behind the request.
    """
    others = [_readers.submit(read, engine, load) for load in loads[1:]]
    try:
        first = read(engine, loads[0])
    finally:
        wait(others)
    return [first, *(future.result() for future in others)]
