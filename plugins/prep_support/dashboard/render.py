"""Pages from the Jinja templates in ``include/templates/dashboard/``, autoescaped throughout.

Names, details, evidence and URLs come from the catalog and from trackers, so none of it is trusted:
every value is escaped, and a link is only made of an http(s) URL (:func:`safe_url`); anything else
(``javascript:``, ``data:``, a relative path) is shown as text.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from prep_support import paths

LINK_SCHEMES = frozenset({"http", "https"})
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]+")


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else None. Browsers drop tabs and newlines
    inside a scheme (``java\tscript:``), so any control character or space disqualifies a URL."""
    if not url:
        return None
    url = url.strip()
    if _CONTROL_OR_SPACE.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket or a bad port
        return None
    return url if parts.scheme.lower() in LINK_SCHEMES and host else None


def utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def percent(value: float | None) -> str:
    """Truncated, not rounded, to two decimals, as the weekly report shows it: 99.996 % is not 100.00 %."""
    return "no data" if value is None else f"{math.floor(value * 100 + 1e-9) / 100:.2f} %"


def milliseconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


def path_segment(value: str) -> str:
    """A value quoted to be one segment of a relative link (``/`` included)."""
    return value if _PLAIN_SEGMENT.fullmatch(value) else quote(value, safe="")


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(paths.TEMPLATES_DIR / "dashboard")),
        autoescape=True,  # HTML and SVG only: everything interpolated is escaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(safe_url=safe_url, utc=utc, segment=path_segment, percent=percent, ms=milliseconds)
    return env


def render_page(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
