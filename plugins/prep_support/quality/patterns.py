"""Regular expressions under a deadline, for the regex checks that run in Python (SQLite, pandas).

Python's ``re`` cannot be interrupted: a pattern such as ``^(a+)+$`` against a long non-matching
value backtracks for hours inside one C call, where neither SQLite's progress handler nor a
thread can stop it. The ``regex`` package (same syntax as ``re`` for our patterns) takes a
``timeout`` and raises TimeoutError from inside its matching loop, so a suite's ``timeout_s``
holds for the regex check too. PostgreSQL's ``~`` is stopped by ``statement_timeout`` instead.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import regex


class RegexTimedOut(TimeoutError):
    """The suite's deadline passed while a regex was matching."""


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> Any:
    return regex.compile(pattern)


def search_before(pattern: str, text: str, deadline: float) -> bool:
    """``re.search(pattern, text) is not None``, or RegexTimedOut once ``time.monotonic()`` passes ``deadline``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise RegexTimedOut(f"regex {pattern!r} did not finish before the deadline")
    try:
        return _compiled(pattern).search(text, timeout=remaining) is not None
    except TimeoutError as error:
        raise RegexTimedOut(f"regex {pattern!r} did not finish before the deadline") from error


def timed_out(timeout_s: float) -> str:
    """The cause a suite reports when its deadline passed, whichever engine ran out of time."""
    return f"query timed out (the suite's timeout_s is {timeout_s:g} s)"
