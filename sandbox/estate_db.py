"""The sample estate's SQLite database: nightly batch runs, orders and customers.

The orders table carries known data issues on purpose, so data-quality checks have something
to find. Everything is deterministic (``random.Random(42)``) apart from the timestamps, which
are relative to the moment the database is created so "the last 10 days" always has data.
"""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

DB_FILENAME = "estate.db"
SEED = 42
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

BATCH_JOB = "nightly_settlement"
BATCH_DAYS = 10
BATCH_START = time(1, 0)
BATCH_FINISH = time(1, 30)

ORDER_DAYS = 10
ORDER_COUNT = 200
CUSTOMER_COUNT = 50
VALID_CURRENCIES = ("EUR", "USD", "GBP")
ORDER_STATUSES = ("paid", "paid", "paid", "shipped", "shipped", "pending", "refunded")
COUNTRIES = ("DE", "FR", "GB", "NL", "US", "IE")

# Planted data issues, each on its own rows (no row has two issues), so counts are exact.
BAD_CURRENCIES = ("usd", "JPY", "XXX")
MISSING_CUSTOMER_IDS = (901, 902, 903)
NULL_CUSTOMER_ROWS = 4
NEGATIVE_AMOUNT_ROWS = 3
DUPLICATE_PAIR_ROWS = 2  # rows that repeat another row's (customer_id, created_at)
KNOWN_ISSUES = {
    "null_customer_id": NULL_CUSTOMER_ROWS,
    "duplicate_customer_created_at": DUPLICATE_PAIR_ROWS,
    "negative_amount": NEGATIVE_AMOUNT_ROWS,
    "invalid_currency": len(BAD_CURRENCIES),
    "missing_customer": len(MISSING_CUSTOMER_IDS),
}

SCHEMA = """
CREATE TABLE batch_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT,
    country TEXT
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER,
    amount NUMERIC,
    currency TEXT,
    status TEXT,
    created_at TEXT
);
"""

BatchRun = tuple[int, str, str, str, str]
Customer = tuple[int, str, str]


def ensure_estate_db(state_dir: Path, now: datetime | None = None) -> Path:
    """Create ``{state_dir}/estate.db`` if it does not exist yet and return its path.

    The file is built under a temporary name and renamed, so a half-written database is never
    mistaken for a finished one.
    """
    path = state_dir / DB_FILENAME
    if path.exists():
        return path
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    tmp = path.with_name(f"{DB_FILENAME}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    rng = random.Random(SEED)
    with sqlite3.connect(tmp) as conn:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO batch_runs VALUES (?, ?, ?, ?, ?)", batch_runs(now))
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?)", customers(rng))
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", orders(rng, now))
    conn.close()
    os.replace(tmp, path)
    return path


def batch_runs(now: datetime) -> list[BatchRun]:
    """One successful ``nightly_settlement`` run per night, 01:00-01:30 UTC, the last 10 nights.

    The most recent run is today's if it has already finished, otherwise yesterday's.
    """
    today = now.date()
    latest = today if now >= _utc(today, BATCH_FINISH) else today - timedelta(days=1)
    first = latest - timedelta(days=BATCH_DAYS - 1)
    rows = []
    for offset in range(BATCH_DAYS):
        day = first + timedelta(days=offset)
        started, finished = _utc(day, BATCH_START), _utc(day, BATCH_FINISH)
        rows.append((offset + 1, BATCH_JOB, _fmt(started), _fmt(finished), "success"))
    return rows


def customers(rng: random.Random) -> list[Customer]:
    """Customers 1..50; orders may reference ids beyond these (see ``MISSING_CUSTOMER_IDS``)."""
    return [
        (customer_id, f"customer{customer_id:03d}@example.com", rng.choice(COUNTRIES))
        for customer_id in range(1, CUSTOMER_COUNT + 1)
    ]


def orders(rng: random.Random, now: datetime) -> list[tuple[object, ...]]:
    """200 orders over the last 10 days, ids in time order (bar the duplicates), with the planted issues."""
    offsets: set[int] = set()
    while len(offsets) < ORDER_COUNT:
        offsets.add(rng.randrange(ORDER_DAYS * 86_400))
    rows = [
        [
            order_id,
            rng.randint(1, CUSTOMER_COUNT),
            round(rng.uniform(5, 500), 2),
            rng.choice(VALID_CURRENCIES),
            rng.choice(ORDER_STATUSES),
            _fmt(now - timedelta(seconds=offset)),
        ]
        for order_id, offset in enumerate(sorted(offsets, reverse=True), start=1)
    ]
    _plant_issues(rng, rows)
    return [tuple(row) for row in rows]


def _plant_issues(rng: random.Random, rows: list[list[Any]]) -> None:
    """Spoil distinct, randomly chosen rows in place; every other row stays clean."""
    issue_rows = NULL_CUSTOMER_ROWS + NEGATIVE_AMOUNT_ROWS + DUPLICATE_PAIR_ROWS
    issue_rows += len(BAD_CURRENCIES) + len(MISSING_CUSTOMER_IDS)
    picked = rng.sample(range(len(rows)), issue_rows + DUPLICATE_PAIR_ROWS)
    spoiled = iter(picked[:issue_rows])
    duplicate_sources = picked[issue_rows:]  # clean rows whose pair gets copied
    for _ in range(NULL_CUSTOMER_ROWS):
        rows[next(spoiled)][1] = None
    for _ in range(NEGATIVE_AMOUNT_ROWS):
        row = rows[next(spoiled)]
        row[2] = -row[2]
    for currency in BAD_CURRENCIES:
        rows[next(spoiled)][3] = currency
    for customer_id in MISSING_CUSTOMER_IDS:
        rows[next(spoiled)][1] = customer_id
    for source in duplicate_sources:
        row = rows[next(spoiled)]
        row[1], row[5] = rows[source][1], rows[source][5]


def _utc(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=UTC)


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
