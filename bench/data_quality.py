"""Benchmark the data-quality SQL engine against its floor, hand-written SQL and Great Expectations.

On a PostgreSQL database of its own (127.0.0.1:5432, user postgres) a table of N rows (10,000,000
by default) spread evenly over 365 days in insertion order, with an index on ``created_at``, is
generated server-side with generate_series, with planted issues (NULLs, duplicated ids,
out-of-range amounts, unknown currencies, malformed codes). Generating 10M rows takes minutes, so
the database (``prep_dq_bench_<rows>``) is kept and reused while its table matches this script's
definition; ``--fresh`` rebuilds it, ``--drop`` removes it at the end.

One suite of 12 checks (not-null on three columns, uniqueness, two ranges, a value set, a regex,
row count, min, max, mean) is measured in two cases:

- **day**: what a daily run does, the suite with ``partition_column: created_at`` on one day
  (~27,400 rows of 10M, a day that holds a duplicated id so every kind of failing sample is fetched);
- **whole table**: the suite without ``partition_column``.

Each case measures, side by side in rounds (so that the machine's load hits all alike):
1. ``SELECT count(*)`` of the case's rows: the physical floor (after one untimed warm-up);
2. the best hand-written SQL: one pass with ``count(*) FILTER (WHERE ...)`` per check, plus the
   uniqueness GROUP BY, with the day's WHERE in the day case;
3. our suite (``validate_sql``, samples of failing rows included), with the statements it issues.
Medians of ``--repeat`` rounds are printed, and the median of the per-round ratios.
Then Great Expectations as it comes, on the whole table (import time printed apart).

Targets (issues 4 and 11): ours <= 1.25x the hand-written SQL in both cases, >= 3x faster than
GX, peak RSS < 1 GB. ``--rows 1000000`` gives a quicker look; ``--trace`` prints every statement
of one run of ours with its time and, for the data statements, PostgreSQL's EXPLAIN ANALYZE.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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
FIRST_DAY = datetime(2025, 3, 2, tzinfo=UTC)
DAYS = 365

# Every 1,000th customer_id is NULL, every 997th amount negative, every 100,000th id repeats the
# previous one, every 5,003rd currency is lower case, every 10,007th code is malformed. Rows are
# in created_at order over 365 days, as an append-only table fills.
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
       timestamp '{FIRST_DAY:%Y-%m-%d}' + ((g - 1)::bigint * {DAYS * 86400} / :rows) * interval '1 second'
           AS created_at
FROM generate_series(1, :rows) AS g;
CREATE INDEX {TABLE}_created_at ON {TABLE} (created_at)
"""
# The table's comment says which definition built it: a cached table is reused only when it matches.
VERSION = hashlib.sha256(GENERATE.encode()).hexdigest()[:16]

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
FROM {TABLE} WHERE {{where}}
"""
HAND_WRITTEN_UNIQUE = f"""
SELECT coalesce(sum(n), 0) FROM (
    SELECT count(*) AS n FROM {TABLE} WHERE id IS NOT NULL AND {{where}} GROUP BY id HAVING count(*) > 1
) AS duplicated
"""
FLOOR = f"SELECT count(*) FROM {TABLE} WHERE {{where}}"
DAY_WHERE = "created_at >= %(start)s AND created_at < %(end)s"


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cached_database(admin: sa.Engine, rows: int, fresh: bool) -> tuple[str, sa.Engine]:
    """The benchmark's database for ``rows`` rows, generated unless a matching one is kept from a previous run."""
    name = f"prep_dq_bench_{rows}"
    with admin.connect() as connection:
        exists = connection.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(name)s",
                                            {"name": name}).scalar()
        if exists and fresh:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or fresh:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(admin.url.set(database=name))
    with engine.connect() as connection:
        comment = connection.exec_driver_sql(f"SELECT obj_description(to_regclass('{TABLE}'), 'pg_class')").scalar()
    if comment == f"{VERSION} rows={rows}":
        print(f"reusing {rows:,} rows in database {name} (--fresh rebuilds it)")
        return name, engine
    try:
        seconds, _ = timed(lambda: _generate(engine, rows))
    except BaseException:
        drop_database(admin, name, engine)
        raise
    print(f"generated {rows:,} rows server-side in {seconds:.1f} s, kept in database {name}")
    return name, engine


def drop_database(admin: sa.Engine, name: str, engine: sa.Engine) -> None:
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _generate(engine: sa.Engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        for statement in GENERATE.split(";"):
            connection.execute(sa.text(statement), {"rows": rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM (FREEZE, ANALYZE) {TABLE}")  # hint bits set: no scan pays for them
        connection.exec_driver_sql(f"COMMENT ON TABLE {TABLE} IS '{VERSION} rows={rows}'")
        size = connection.exec_driver_sql(f"SELECT pg_size_pretty(pg_table_size('{TABLE}'))").scalar()
    print(f"table size {size}")


def checked_day(rows: int) -> datetime:
    """The day holding the middle duplicated id (every 100,000th row repeats the id before it)."""
    row = max(100_000, rows // 2 // 100_000 * 100_000) if rows >= 100_000 else rows // 2
    return FIRST_DAY + timedelta(days=(row - 1) * DAYS * 86400 // rows // 86400)


def bench_suite(partitioned: bool) -> Suite:
    extra = {"partition_column": "created_at"} if partitioned else {}
    return Suite.model_validate({"id": "bench_orders", "conn_id": "bench", "table": TABLE, "service": "orders-api",
                                 "timeout_s": 3600, "checks": CHECKS, **extra})


class StatementLog:
    """The statements an engine runs, with their parameters and wall time."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.entries: list[tuple[str, Any, float]] = []
        self._started = 0.0

    def __enter__(self) -> StatementLog:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        sa.event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        self.entries.append((statement, parameters, time.perf_counter() - self._started))

    @property
    def data_statements(self) -> list[tuple[str, Any, float]]:
        """The statements reading the table, without the statement_timeout that rides with them."""
        return [(re.sub(r"^SET LOCAL statement_timeout = \d+; ", "", statement), parameters, seconds)
                for statement, parameters, seconds in self.entries
                if f"FROM {TABLE}" in statement and "EXPLAIN" not in statement]


class Case:
    """One case (day or whole table): its floor, the hand-written SQL and ours, measured round by round."""

    def __init__(self, name: str, engine: sa.Engine, suite: Suite, start: datetime, end: datetime,
                 where: str) -> None:
        self.name, self.engine, self.suite, self.start, self.end, self.where = name, engine, suite, start, end, where
        self.params = {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)}
        self.times: dict[str, list[float]] = {"floor": [], "pass": [], "unique": [], "ours": []}
        self.outcomes: list = []
        self.statements: list[int] = []
        self.data_statements: list[int] = []

    def round(self) -> None:
        with self.engine.connect() as connection:
            for key, sql in (("floor", FLOOR), ("pass", HAND_WRITTEN_PASS), ("unique", HAND_WRITTEN_UNIQUE)):
                seconds, _ = timed(lambda sql=sql: connection.exec_driver_sql(sql.replace("{where}", self.where),
                                                                              self.params).all())
                self.times[key].append(seconds)
        with StatementLog(self.engine) as log:
            seconds, self.outcomes = timed(lambda: validate_sql(self.engine, self.suite, self.start, self.end))
        self.times["ours"].append(seconds)
        self.statements.append(len(log.entries))
        self.data_statements.append(len(log.data_statements))

    def hand(self, index: int) -> float:
        return self.times["pass"][index] + self.times["unique"][index]

    def report(self) -> float:
        median = {key: statistics.median(values) for key, values in self.times.items()}
        rounds = range(len(self.times["ours"]))
        hand = statistics.median(self.hand(i) for i in rounds)
        ratio = statistics.median(self.times["ours"][i] / self.hand(i) for i in rounds)
        floor_ratio = statistics.median(self.times["ours"][i] / self.times["floor"][i] for i in rounds)
        failing = [o for o in self.outcomes if not o.success]
        samples = sum(len(o.sample_rows) for o in failing)
        print(f"\n{self.name}: {self.outcomes[0].element_count:,} rows, 12 checks, medians of {len(rounds)} rounds")
        print(f"  SELECT count(*)           {median['floor'] * 1000:9.1f} ms  (floor)")
        print(f"  hand-written SQL          {hand * 1000:9.1f} ms  (one pass {median['pass'] * 1000:.1f} ms "
              f"+ uniqueness {median['unique'] * 1000:.1f} ms)")
        print(f"  our suite                 {median['ours'] * 1000:9.1f} ms  ({len(failing)} failing, "
              f"{samples} sample rows included)")
        print(f"  statements per run        {statistics.median(self.statements):9.0f}     "
              f"({statistics.median(self.data_statements):.0f} reading {TABLE})")
        each = ", ".join(f"{self.times['ours'][i] / self.hand(i):.2f}" for i in rounds)
        print(f"  ours / hand-written       {ratio:9.2f}x    (median of per-round ratios {each}; target <= 1.25)")
        print(f"  ours / count(*)           {floor_ratio:9.2f}x")
        return ratio


def trace(case: Case) -> None:
    """Every statement of one run of ours with its time, and EXPLAIN ANALYZE of those reading the table."""
    with StatementLog(case.engine) as log:
        validate_sql(case.engine, case.suite, case.start, case.end)
    print(f"\n{case.name}: {len(log.entries)} statements, {sum(e[2] for e in log.entries) * 1000:.1f} ms in the "
          "database driver")
    for statement, _parameters, seconds in log.entries:
        print(f"  {seconds * 1000:8.2f} ms  {' '.join(statement.split())[:150]}")
    with case.engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        for statement, parameters, _seconds in log.data_statements:
            print(f"\n  EXPLAIN ANALYZE {' '.join(statement.split())[:300]}")
            plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).scalars()
            print("\n".join(f"    {line}" for line in plan))


def run_gx(url: str, repeat: int) -> tuple[float, float, dict[str, tuple[bool, Any]]]:
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

    runs = [timed(validate) for _ in range(repeat)]
    result = runs[-1][1]
    found = {}
    for item in result.results:
        key = f"{item.expectation_config.type}:{item.expectation_config.kwargs.get('column', '')}"
        found[key] = (item.success, item.result.get("unexpected_count"))
    return import_seconds, statistics.median(seconds for seconds, _ in runs), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each case; medians are shown")
    parser.add_argument("--skip-gx", action="store_true", help="leave Great Expectations out")
    parser.add_argument("--trace", action="store_true", help="print ours' statements, their times and plans")
    parser.add_argument("--fresh", action="store_true", help="generate the table again even if one is kept")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark's database at the end")
    parser.add_argument("--only", choices=["day", "whole"], help="measure one case (GX needs the whole table)")
    args = parser.parse_args()

    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name, engine = cached_database(admin, args.rows, args.fresh)
    try:
        day = checked_day(args.rows)
        start, end = day, day + timedelta(days=1)
        cases = [Case(f"day {day:%Y-%m-%d}", engine, bench_suite(True), start, end, DAY_WHERE),
                 Case("whole table", engine, bench_suite(False), start, end, "true")]
        cases = [case for case in cases if args.only is None or case.name.startswith(args.only)]
        with engine.connect() as connection:
            connection.exec_driver_sql(f"SELECT count(*) FROM {TABLE}").scalar()  # warm the cache
        rss_before = peak_rss_mb()
        for case in cases:
            case.round()  # warm-up, not counted
            for values in case.times.values():
                values.clear()
            case.statements.clear()
            case.data_statements.clear()
        for _ in range(args.repeat):
            for case in cases:
                case.round()
        rss = peak_rss_mb()
        ratios = [case.report() for case in cases]
        print(f"\n  peak RSS of our process   {rss:8.0f} MB (before validating: {rss_before:.0f} MB)")
        verdict = "met" if max(ratios) <= 1.25 else "NOT met"
        each = ", ".join(f"{case.name} {ratio:.2f}x" for case, ratio in zip(cases, ratios, strict=True))
        print(f"  ours / hand-written: {each} (target <= 1.25: {verdict})")
        if args.trace:
            for case in cases:
                trace(case)
        if not args.skip_gx and cases[-1].name == "whole table":
            whole = cases[-1]
            url = engine.url.render_as_string(hide_password=False)
            gx_import, gx_seconds, gx_found = run_gx(url, min(args.repeat, 3))
            ours = statistics.median(whole.times["ours"])
            print(f"\n  GX import                 {gx_import:8.2f} s")
            print(f"  GX as it comes (validate) {gx_seconds:8.2f} s (whole table)")
            print(f"  GX / ours                 {gx_seconds / ours:8.2f}x (target >= 3)")
            ours_found = {f"{o.expectation}:{CHECKS[i]['kwargs'].get('column', '')}": (o.success, o.unexpected_count)
                          for i, o in enumerate(whole.outcomes)}
            agree = all(gx_found.get(key) == value for key, value in ours_found.items())
            print(f"  same success and unexpected counts as GX: {'yes' if agree else 'NO'}")
            if not agree:
                for key, value in ours_found.items():
                    print(f"    {key}: ours {value}, GX {gx_found.get(key)}")
    finally:
        if args.drop:
            drop_database(admin, name, engine)
        else:
            engine.dispose()
        admin.dispose()


if __name__ == "__main__":
    main()
