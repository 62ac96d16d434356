"""Rendering messages, tickets and reports from the Jinja templates in include/templates/.

HTML templates are autoescaped. A text for Slack is rendered with :func:`render_slack`, which escapes
every value it interpolates as Slack asks: evidence quotes what monitored systems answered, and a
``<!channel>`` or ``<https://x|login>`` in it must show as typed, not ping or link.
"""

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


@cache
def slack_environment() -> Environment:
    """Like :func:`environment`, every interpolated value escaped for Slack mrkdwn."""
    return environment().overlay(finalize=lambda value: value if value is None else slack_text(value))


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context).strip()


def render_slack(template: str, **context: Any) -> str:
    return slack_environment().get_template(template).render(**context).strip()


_SLACK_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def slack_text(value: Any) -> str:
    """Text Slack shows as typed: ``&``, ``<`` and ``>`` escaped as Slack asks, so no mention, channel
    ping or link can be injected (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return "".join(_SLACK_SPECIAL.get(char, char) for char in str(value))


def human_duration(delta: timedelta) -> str:
    """'2 h 05 min', '12 min', '40 s', '1 d 03 h' (never negative)."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours:02d} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
