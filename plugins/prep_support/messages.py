"""Rendering messages, tickets and reports from the Jinja templates in include/templates/."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from prep_support import paths


@cache
def environment() -> Environment:
    # HTML templates are autoescaped; a missing variable is an error, not an empty string.
    return Environment(
        loader=FileSystemLoader(str(paths.TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "html.j2", "xml"]),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context).strip()


def human_duration(delta: timedelta) -> str:
    """'2 h 05 min', '12 min', '40 s'."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours:02d} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
