"""A small table with every kind of flaw the built-in expectations look for, on SQLite and PostgreSQL.

NULLs in every column, a duplicated id, negative and out-of-range amounts, lower-case and unknown
currencies, codes that break the pattern, pairs with one or both sides missing or equal, compound
keys duplicated with and without NULL parts, and a column that is entirely NULL.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import sqlalchemy as sa

COLUMNS = ("id", "amount", "currency", "code", "a", "b", "k1", "k2", "blank", "created_at")
ROWS: list[tuple[Any, ...]] = [
    (1, 10.5, "EUR", "AB-1", 5, 3, "x", 1, None, "2026-03-01 00:10:00"),
    (2, -3.0, "USD", "AB-2", 2, 2, "x", 1, None, "2026-03-01 01:00:00"),
    (3, 0.0, "usd", "ab-3", 1, 4, "y", 2, None, "2026-03-01 02:00:00"),
    (3, 250.0, "GBP", "ZZ", None, 1, "y", None, None, "2026-03-01 03:00:00"),
    (4, None, None, None, None, None, "y", None, None, "2026-03-01 04:00:00"),
    (5, 99.99, "JPY", "AB-55", 7, None, None, None, None, "2026-03-01 05:00:00"),
    (6, 1000.0, "EUR", "AB-6", 3, 3, None, None, None, "2026-03-01 06:00:00"),
    (None, 5.0, "EUR", "AB-7", 4, 1, "z", 3, None, "2026-03-01 07:00:00"),
    (7, 42.0, "EUR", "", 0, -1, "z", 3, None, "2026-03-01 08:00:00"),
    (8, 0.01, "GBP", "AB-8", -5, -5, "w", 9, None, "2026-03-01 23:59:59"),
    (9, 12.0, "XXX", "AB-9", 6, 2, "w", 10, None, "2026-03-02 00:00:00"),
    (10, 7.25, "EUR", "AB-10", 8, 8, "v", 11, None, None),
]
TABLE = "seeded"


def create_table(engine: sa.Engine, table: str = TABLE, rows: list[tuple[Any, ...]] = ROWS) -> None:
    """The seeded table with the dialect's natural types (text timestamps on SQLite, as in the estate)."""
    postgres = engine.dialect.name == "postgresql"
    created_at = "TIMESTAMP" if postgres else "TEXT"
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        connection.exec_driver_sql(
            f"CREATE TABLE {table} (id INTEGER, amount NUMERIC(10, 2), currency TEXT, code TEXT, a INTEGER, "
            f"b INTEGER, k1 TEXT, k2 INTEGER, blank NUMERIC, created_at {created_at})"
        )
        statement = sa.text(f"INSERT INTO {table} VALUES ({', '.join(':' + c for c in COLUMNS)})")
        connection.execute(statement, [dict(zip(COLUMNS, row, strict=True)) for row in rows])


def write_csv(path: Path, rows: list[tuple[Any, ...]] = ROWS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([["" if value is None else value for value in row] for row in rows])
    return path
