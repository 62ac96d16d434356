"""Rendering the review's documents from ``include/templates/access/``: packets, summary, messages.

HTML is autoescaped (a display name ``<script>...`` shows as text). CSV cells are quoted by the
``csv_row`` filter, and a cell starting with ``= + - @`` (or a tab / carriage return) gets a leading
apostrophe so a spreadsheet shows it instead of running it as a formula (CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from prep_support import paths

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([csv_cell(v) for v in values])
    return buffer.getvalue()


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(paths.TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "html.j2", "xml"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["csv_row"] = csv_row
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def packet(campaign_id: str, reviewer: str, items: list[dict[str, Any]], *, due: str,
           default_decision: str) -> dict[str, str]:
    """A reviewer's packet: ``{"html": ..., "csv": ...}``."""
    context = {"campaign_id": campaign_id, "reviewer": reviewer, "items": items, "due": due,
               "default_decision": default_decision}
    return {"html": render("access/packet.html.j2", **context), "csv": render("access/packet.csv.j2", **context)}
