"""Which result columns of a custom query carry a sensitive column (prep_support.quality.lineage)."""

from __future__ import annotations

import pytest

from prep_support.quality.lineage import hidden_columns


@pytest.mark.parametrize(("columns", "query", "hidden"), [
    pytest.param(["id", "contact"], "SELECT id, email AS contact FROM customers", [False, True], id="alias"),
    pytest.param(["id", "e"], 'SELECT id, lower("EMAIL") e FROM customers', [False, True], id="expression"),
    pytest.param(["id", "total"], "SELECT id, total FROM orders WHERE email IS NULL", [False, False],
                 id="filter-only"),
    pytest.param(["id", "email", "note"], "SELECT * FROM customers", [False, True, False], id="star-by-name"),
    pytest.param(["id", "x"], "SELECT *, email AS x FROM customers", [True, True], id="star-and-alias"),
    pytest.param(["contact"], "SELECT contact FROM (SELECT email AS contact FROM customers) t", [True],
                 id="subquery"),
    pytest.param(["a", "b"], "WITH c AS (SELECT email FROM customers) SELECT email AS a, 1 AS b FROM c",
                 [True, True], id="cte"),
    pytest.param(["id", "c"], "SELECT id, email c FROM customers UNION SELECT 1, 'x'", [True, True], id="union"),
    pytest.param(["id", "n"], "SELECT DISTINCT id, count(*) AS n FROM customers GROUP BY id", [False, False],
                 id="no-sensitive-column"),
])
def test_hidden_columns(columns: list[str], query: str, hidden: list[bool]) -> None:
    assert hidden_columns(columns, ["email"], query) == hidden


def test_without_a_query_columns_are_masked_by_name() -> None:
    assert hidden_columns(["id", "EMAIL"], ["email"]) == [False, True]
