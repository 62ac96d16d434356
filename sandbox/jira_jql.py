"""The subset of JQL the Jira stand-in understands, parsed into clauses joined by AND.

``field = value``, ``field != value``, ``field in (a, b)`` and ``field not in (a, b)`` for
``project``, ``labels``, ``status``, ``statusCategory``, ``issuetype`` (or ``type``), ``key``
(or ``issuekey``) and ``parent``; values bare or quoted; keywords in any case; an optional
``ORDER BY created|updated|key [ASC|DESC], ...``. As in Jira, ``!=`` and ``not in`` never match
an issue whose field is empty. Anything else is a :class:`JqlError`, which the stand-in answers
with HTTP 400 like Jira does.

JQL reference: https://support.atlassian.com/jira-software-cloud/docs/use-advanced-search-with-jira-query-language-jql/
and its operators page https://support.atlassian.com/jira-software-cloud/docs/jql-operators/.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

FIELDS = {
    "project": "project",
    "labels": "labels",
    "status": "status",
    "statuscategory": "statusCategory",
    "issuetype": "issuetype",
    "type": "issuetype",
    "key": "key",
    "issuekey": "key",
    "parent": "parent",
}
SORT_FIELDS = ("created", "updated", "key")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<symbol>!=|=|\(|\)|,)
      | (?P<word>[^\s=!(),"'<>~]+)
    )""",
    re.VERBOSE,
)


class JqlError(ValueError):
    """The query is not valid, or not in the subset; the message is shown to the caller."""


@dataclass(frozen=True)
class Clause:
    field: str
    negated: bool
    values: tuple[str, ...]

    def matches(self, actual: Iterable[str]) -> bool:
        """Whether an issue whose field shows ``actual`` (its names, keys and ids) satisfies the clause."""
        shown = {value.lower() for value in actual}
        hit = any(value.lower() in shown for value in self.values)
        return bool(shown) and not hit if self.negated else hit


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int

    def keyword(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def _tokens(jql: str) -> list[_Token]:
    tokens, position = [], 0
    while jql[position:].strip():
        match = _TOKEN.match(jql, position)
        if match is None:
            offending = jql[position:].lstrip()[0]
            raise JqlError(f"Error in the JQL Query: the character '{offending}' is not supported here "
                           f"(character {len(jql) - len(jql[position:].lstrip()) + 1}).")
        kind = match.lastgroup or "word"
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Token(kind, text, match.start(kind) + 1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, jql: str) -> None:
        self.tokens = _tokens(jql)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            raise JqlError(f"Error in the JQL Query: expecting {expected} but reached the end of the query.")
        self.index += 1
        return token

    def fail(self, expected: str, token: _Token) -> JqlError:
        return JqlError(f"Error in the JQL Query: Expecting {expected} but got '{token.text}'. "
                        f"(character {token.position})")

    def query(self) -> Query:
        clauses: list[Clause] = []
        token = self.peek()
        if token is not None and token.keyword() != "ORDER":
            clauses.append(self.clause())
            while (token := self.peek()) is not None and token.keyword() == "AND":
                self.index += 1
                clauses.append(self.clause())
        order: tuple[tuple[str, bool], ...] = ()
        if token is not None and token.keyword() == "ORDER":
            self.index += 1
            order = self.order_by()
        token = self.peek()
        if token is not None:
            if token.keyword() == "OR":
                raise JqlError("Error in the JQL Query: the sandbox joins clauses only with AND, "
                               f"'OR' is not supported (character {token.position}).")
            raise self.fail("either 'AND' or 'ORDER BY'", token)
        return Query(tuple(clauses), order)

    def clause(self) -> Clause:
        token = self.take("a field name")
        if token.kind == "symbol" or token.keyword() == "NOT":
            raise JqlError(f"Error in the JQL Query: the sandbox supports no grouping or negated clauses, "
                           f"got '{token.text}' (character {token.position}).")
        field = FIELDS.get(token.text.lower())
        if field is None:
            raise JqlError(f"Field '{token.text}' does not exist or is not supported by the sandbox "
                           f"(supported: {', '.join(sorted(set(FIELDS.values())))}).")
        operator = self.take("an operator")
        if operator.text in ("=", "!="):
            return Clause(field, operator.text == "!=", (self.value(),))
        negated = operator.keyword() == "NOT"
        if negated:
            operator = self.take("'in'")
        if operator.keyword() != "IN":
            raise self.fail("operator '=', '!=', 'in' or 'not in'", operator)
        return Clause(field, negated, self.values())

    def value(self) -> str:
        token = self.take("a value")
        if token.kind == "symbol" or (token.kind == "word" and token.keyword() in ("EMPTY", "NULL")):
            raise self.fail("a value", token)
        return token.text

    def values(self) -> tuple[str, ...]:
        opening = self.take("'('")
        if opening.text != "(" or opening.kind != "symbol":
            raise self.fail("'('", opening)
        values = [self.value()]
        while (token := self.take("',' or ')'")).text == ",":
            values.append(self.value())
        if token.text != ")":
            raise self.fail("',' or ')'", token)
        return tuple(values)

    def order_by(self) -> tuple[tuple[str, bool], ...]:
        by = self.take("'by'")
        if by.keyword() != "BY":
            raise self.fail("'by'", by)
        order = []
        while True:
            field = self.take("a field to order by")
            if field.text.lower() not in SORT_FIELDS:
                raise JqlError(f"Error in the JQL Query: the sandbox orders only by {', '.join(SORT_FIELDS)}, "
                               f"not '{field.text}'.")
            descending = False
            token = self.peek()
            if token is not None and token.keyword() in ("ASC", "DESC"):
                descending = token.keyword() == "DESC"
                self.index += 1
                token = self.peek()
            order.append((field.text.lower(), descending))
            if token is None or token.text != ",":
                return tuple(order)
            self.index += 1


def parse(jql: str | None) -> Query:
    """Parse a query; an empty one matches every issue."""
    return _Parser(jql or "").query()
