"""Which columns of a query's result carry a sensitive column's values, so a sample masks them by lineage.

Masking by result name alone lets ``SELECT email AS contact`` (or ``lower(email)``) show the raw
value. A result column is masked when its name is sensitive, or when its select-list expression
mentions a sensitive column. The select list is read only for a flat ``SELECT ... FROM``: a query
with a subquery, a CTE or a set operation can rename a value on the way out, so there every
result column is masked as soon as the query mentions a sensitive column anywhere. Mentioning a
sensitive column only in WHERE of a flat query masks nothing: filtering does not output it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlparse
from sqlparse import tokens as T

_SET_OPERATIONS = {"UNION", "UNION ALL", "INTERSECT", "EXCEPT", "MINUS"}


def hidden_columns(columns: Sequence[str], sensitive: Iterable[str], query: str | None = None) -> list[bool]:
    """For each result column, whether its values must be masked."""
    hidden = {name.lower() for name in sensitive}
    by_name = [name.lower() in hidden for name in columns]
    if query is None or not hidden:
        return by_name
    items = _select_list(query)
    if items is None:  # not a flat SELECT: anything mentioning a sensitive column may reach any column
        return [True] * len(columns) if _names(sqlparse.parse(query)[0].flatten()) & hidden else by_name
    stars = [i for i, item in enumerate(items) if _is_star(item)]
    if stars:
        # '*' expands to columns under their own names; the other items cannot be aligned with the result.
        explicit = [item for i, item in enumerate(items) if i not in stars]
        if any(_names(item) & hidden for item in explicit):
            return [True] * len(columns)
        return by_name
    if len(items) != len(columns):
        return [True] * len(columns) if any(_names(item) & hidden for item in items) else by_name
    return [named or bool(_names(item) & hidden) for named, item in zip(by_name, items, strict=True)]


def _select_list(query: str) -> list[list[sqlparse.sql.Token]] | None:
    """The top-level select list's items (tokens each), or None when the query is not a flat SELECT."""
    statements = [s for s in sqlparse.parse(query) if s.token_first(skip_cm=True) is not None]
    if len(statements) != 1:
        return None
    tokens = [t for t in statements[0].flatten() if not t.is_whitespace and t.ttype not in T.Comment]
    dml = [t for t in tokens if t.ttype is T.Keyword.DML]
    if len(dml) != 1 or dml[0].normalized != "SELECT" or tokens[0] is not dml[0]:
        return None
    if any(t.ttype is T.Keyword.CTE or (t.is_keyword and t.normalized in _SET_OPERATIONS) for t in tokens):
        return None
    items: list[list[sqlparse.sql.Token]] = [[]]
    depth = 0
    for token in tokens[1:]:
        if token.ttype is T.Punctuation and token.value == "(":
            depth += 1
        elif token.ttype is T.Punctuation and token.value == ")":
            depth -= 1
        elif depth == 0 and token.is_keyword and token.normalized == "FROM":
            break
        elif depth == 0 and token.ttype is T.Punctuation and token.value == ",":
            items.append([])
            continue
        elif depth == 0 and token.is_keyword and token.normalized in ("DISTINCT", "ALL") and not any(items[0]):
            continue
        items[-1].append(token)
    return items if all(items) else None


def _is_star(item: list[sqlparse.sql.Token]) -> bool:
    return item[-1].ttype is T.Wildcard


def _names(tokens: Iterable[sqlparse.sql.Token]) -> set[str]:
    """Every identifier-like word (names, quoted names, keywords that may be column names), lower-cased."""
    found = set()
    for token in tokens:
        if token.ttype in T.Name or token.ttype in T.Literal.String.Symbol or token.is_keyword:
            found.add(token.value.strip('"`[]').lower())
    return found
