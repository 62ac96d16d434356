"""Benchmark the data-quality SQL engine against its floor, hand-written SQL and Great Expectations.

On a throwaway PostgreSQL database (127.0.0.1:5432, user postgres) a table of N rows (10,000,000
by default) is generated server-side with generate_series, with planted issues (NULLs, duplicated
ids, out-of-range amounts, unknown currencies, malformed codes). One suite of 12 checks (not-null
on three columns, uniqueness, two ranges, a value set, a regex, row count, min, max, mean) is
timed, each once, in this order:

1. ``SELECT count(*)``: the physical floor (after one untimed scan that warms the cache);
2. the best hand-written SQL: one pass with ``count(*) FILTER (WHERE ...)`` per check, plus the
   uniqueness GROUP BY;
3. our suite (``validate_sql``, samples of failing rows included), with the peak RSS of this
   process measured before anything heavier is imported;
4. Great Expectations as it comes on its SQL engine (import time printed apart).

Targets (issue 4): ours <= 1.25x the hand-written SQL, >= 3x faster than GX, peak RSS < 1 GB.
Each measurement is the best of ``--repeat`` runs (3): the machine is shared. Run
``python bench/data_quality.py`` or ``--rows 1000000`` for a quick check; the database is dropped
at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import sqlalchemy as sa  # noqa: E402 - after the path is set, like the DAGs see it

from prep_support.quality.config import Suite  # noqa: E402
from prep_support.quality.sql_engine import validate_sql  # noqa: E402

ADMIN_URL = os.environ.get("PREP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TABLE = "bench_orders"
CURRENCIES = ["EUR", "USD", "GBP"]
CODE_REGEX = r"^ORD-[0-9]{9}$"

# Every 1,000th customer_id is NULL, every 997th amount negative, every 100,000th id repeats the
# previous one, every 5,003rd currency is lower case, every 10,007th code is malformed.
GENERATE = f"""
CREATE TABLE {TABLE} AS
SELECT CASE WHEN g % 100000 = 0 THEN g - 1 ELSE g END AS id,
       CASE WHEN g % 1000 = 0 THEN NULL ELSE (1 + (g::bigint * 7919) % 50000)::int END AS customer_id,
       CASE WHEN g % 997 = 0 THEN -1 - (g % 500)
            WHEN g % 1999 = 0 THEN NULL
            ELSE round(((g::bigint * 104729) % 100000)::numeric / 100, 2) END AS amount,
       CASE WHEN g % 5003 = 0 THEN 'usd' WHEN g % 7001 = 0 THEN NULL
            ELSE (ARRAY['EUR', 'USD', 'GBP'])[1 + g % 3] END AS currency,
       CASE WHEN g % 10007 = 0 THEN 'ord-' || g ELSE 'ORD-' || lpad(g::text, 9, '0') END AS code,
       timestamp '2026-03-01' + (g % 86400) * interval '1 second' AS created_at
FROM generate_series(1, :rows) AS g
"""

CHECKS: list[dict[str, Any]] = [
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_id"}},
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount", "mostly": 0.99}},
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "currency", "mostly": 0.99}},
    {"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0,
                                                                     "max_value": 1000}},
    {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "customer_id", "min_value": 1,
                                                                     "max_value": 50000}},
    {"expectation": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency",
                                                                    "value_set": CURRENCIES}},
    {"expectation": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": CODE_REGEX}},
    {"expectation": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    {"expectation": "expect_column_min_to_be_between", "kwargs": {"column": "amount", "min_value": -1000}},
    {"expectation": "expect_column_max_to_be_between", "kwargs": {"column": "amount", "max_value": 1000}},
    {"expectation": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 0,
                                                                   "max_value": 1000}},
]

HAND_WRITTEN_PASS = f"""
SELECT count(*) AS row_count,
       count(*) FILTER (WHERE customer_id IS NULL) AS null_customer_id,
       count(*) FILTER (WHERE amount IS NULL) AS null_amount,
       count(*) FILTER (WHERE currency IS NULL) AS null_currency,
       count(amount) AS amount_count,
       count(customer_id) AS customer_id_count,
       count(currency) AS currency_count,
       count(code) AS code_count,
       count(*) FILTER (WHERE amount < 0 OR amount > 1000) AS amount_out_of_range,
       count(*) FILTER (WHERE customer_id < 1 OR customer_id > 50000) AS customer_out_of_range,
       count(*) FILTER (WHERE currency NOT IN ('EUR', 'USD', 'GBP')) AS bad_currency,
       count(*) FILTER (WHERE code !~ '{CODE_REGEX}') AS bad_code,
       min(amount) AS min_amount, max(amount) AS max_amount, avg(amount) AS mean_amount
FROM {TABLE}
"""
HAND_WRITTEN_UNIQUE = f"""
SELECT coalesce(sum(n), 0) FROM (
    SELECT count(*) AS n FROM {TABLE} WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1
) AS duplicated
"""


def timed(action: Any, repeat: int = 1) -> tuple[float, Any]:
    """The best wall time of ``repeat`` runs (the machine is shared: the minimum is the least noisy)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def create_database(admin: sa.Engine, rows: int) -> tuple[str, sa.Engine]:
    name = f"prep_dq_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(admin.url.set(database=name))
    try:
        seconds, _ = timed(lambda: _generate(engine, rows))
    except BaseException:
        drop_database(admin, name, engine)
        raise
    print(f"generated {rows:,} rows server-side in {seconds:.1f} s")
    return name, engine


def drop_database(admin: sa.Engine, name: str, engine: sa.Engine) -> None:
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _generate(engine: sa.Engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(GENERATE), {"rows": rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM (FREEZE, ANALYZE) {TABLE}")  # hint bits set: no scan pays for them
        size = connection.exec_driver_sql(f"SELECT pg_size_pretty(pg_table_size('{TABLE}'))").scalar()
    print(f"table size {size}")


def run_ours(engine: sa.Engine, repeat: int = 1) -> tuple[float, list]:
    suite = Suite.model_validate({"id": "bench_orders", "conn_id": "bench", "table": TABLE, "service": "orders-api",
                                  "timeout_s": 3600, "checks": CHECKS})
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    return timed(lambda: validate_sql(engine, suite, start, end), repeat)


def run_gx(url: str, repeat: int = 1) -> tuple[float, float, dict[str, tuple[bool, Any]]]:
    import_seconds, gx = timed(lambda: __import__("great_expectations"))
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    def validate() -> Any:
        context = gx.get_context(mode="ephemeral")
        source = context.data_sources.add_postgres(name="bench", connection_string=url)
        batch_definition = source.add_table_asset(name=TABLE, table_name=TABLE).add_batch_definition_whole_table("all")
        suite = context.suites.add(gx.ExpectationSuite(name="bench"))
        for check in CHECKS:
            suite.add_expectation(ExpectationConfiguration(type=check["expectation"], kwargs=check["kwargs"])
                                  .to_domain_obj())
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="bench", data=batch_definition, suite=suite))
        return definition.run()

    seconds, result = timed(validate, repeat)
    found = {}
    for item in result.results:
        key = f"{item.expectation_config.type}:{item.expectation_config.kwargs.get('column', '')}"
        found[key] = (item.success, item.result.get("unexpected_count"))
    return import_seconds, seconds, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is shown")
    parser.add_argument("--skip-gx", action="store_true", help="leave Great Expectations out")
    args = parser.parse_args()

    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name, engine = create_database(admin, args.rows)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"SELECT count(*) FROM {TABLE}").scalar()  # warm the cache
            floor, _ = timed(lambda: connection.exec_driver_sql(f"SELECT count(*) FROM {TABLE}").scalar(), args.repeat)
            one_pass, _ = timed(lambda: connection.exec_driver_sql(HAND_WRITTEN_PASS).one(), args.repeat)
            unique, _ = timed(lambda: connection.exec_driver_sql(HAND_WRITTEN_UNIQUE).scalar(), args.repeat)
        hand = one_pass + unique
        rss_before = peak_rss_mb()
        ours, outcomes = run_ours(engine, args.repeat)
        rss = peak_rss_mb()
        print(f"\n{args.rows:,} rows, 12 checks, PostgreSQL, best of {args.repeat} run(s) each")
        print(f"  SELECT count(*)           {floor:8.2f} s  (floor)")
        print(f"  hand-written SQL          {hand:8.2f} s  (one pass {one_pass:.2f} s + uniqueness {unique:.2f} s)")
        print(f"  our suite                 {ours:8.2f} s  ({sum(not o.success for o in outcomes)} failing, "
              "samples included)")
        print(f"  peak RSS of our process   {rss:8.0f} MB (before validating: {rss_before:.0f} MB)")
        print(f"  ours / hand-written       {ours / hand:8.2f}x (target <= 1.25)")
        print(f"  ours / count(*)           {ours / floor:8.2f}x")
        if not args.skip_gx:
            url = engine.url.render_as_string(hide_password=False)
            gx_import, gx_seconds, gx_found = run_gx(url, args.repeat)
            print(f"  GX import                 {gx_import:8.2f} s")
            print(f"  GX as it comes (validate) {gx_seconds:8.2f} s")
            print(f"  GX / ours                 {gx_seconds / ours:8.2f}x (target >= 3)")
            ours_found = {f"{o.expectation}:{CHECKS[i]['kwargs'].get('column', '')}": (o.success, o.unexpected_count)
                          for i, o in enumerate(outcomes)}
            agree = all(gx_found.get(key) == value for key, value in ours_found.items())
            print(f"  same success and unexpected counts as GX: {'yes' if agree else 'NO'}")
            if not agree:
                for key, value in ours_found.items():
                    print(f"    {key}: ours {value}, GX {gx_found.get(key)}")
    finally:
        drop_database(admin, name, engine)
        admin.dispose()


if __name__ == "__main__":
    main()
