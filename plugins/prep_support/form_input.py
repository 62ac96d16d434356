"""Checking what a person typed into a form (or a run's conf), so bad input fails once, naming the field.

Airflow validates a form against its Params' JSON schema before the run starts, but a schema's
``format: date-time`` and ``pattern`` let ``2030-02-30T10:00Z`` through, and a run triggered with
``conf`` through the API can carry anything. Each workflow's first task therefore reads its input
through these helpers: a :class:`BadInput` names the field and what is wrong, quotes at most a
short prefix of the value (a 5 MB paste is not echoed into the task log, the Slack alert or the
UI), and the operator turns it into a failure that is not retried (``operators.bad_input``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

# Longer than any release name, plan, impact statement or comment a person types; a paste of a log is not.
MAX_TEXT = 10_000
QUOTE_CHARS = 60
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:?\d{2})?$")


class BadInput(ValueError):
    """A form value that no retry can fix; the message starts with the field's name."""


def quoted(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of a value, cut to ``limit`` characters with its full length said when longer."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def check_sizes(params: Mapping[str, Any], max_chars: int = MAX_TEXT) -> None:
    """BadInput for the first text value (or list item) longer than ``max_chars``, without echoing it."""
    for name, value in params.items():
        items = value if isinstance(value, list | tuple) else [value]
        for index, item in enumerate(items):
            if isinstance(item, str) and len(item) > max_chars:
                where = name if items is not value else f"{name}[{index}]"
                raise BadInput(f"{where}: {len(item):,} characters, more than the {max_chars:,} a form field "
                               f"takes (it starts {quoted(item, 40)})")


def form_datetime(value: Any, field: str, *, default_zone: bool = False) -> datetime:
    """An aware UTC datetime from ISO text; BadInput naming ``field`` for a malformed or impossible one.

    Without a zone the text is refused, unless ``default_zone`` (then it is UTC).
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if not _DATE_TIME.match(text):
            raise BadInput(f"{field}: {quoted(text)} is not a date-time such as 2030-02-28T10:00Z")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError as error:  # 2030-02-30, 25:00: the pattern cannot tell
            raise BadInput(f"{field}: {quoted(text)} is not a real date and time ({error})") from error
    if parsed.tzinfo is None:
        if not default_zone:
            raise BadInput(f"{field}: {quoted(value)} needs a time zone (e.g. ...T17:00Z)")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def form_date(value: Any, field: str) -> date:
    """A date from ``YYYY-MM-DD``; BadInput naming ``field`` for a malformed or impossible one."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise BadInput(f"{field}: {quoted(text)} is not a real date such as 2030-02-28 ({error})") from error
