"""Rendering messages, tickets and reports from the Jinja templates in include/templates/.

HTML templates are autoescaped. A text for Slack is rendered with :func:`render_slack`, which escapes
every value it interpolates as Slack asks: evidence quotes what monitored systems answered, and a
``<!channel>`` or ``<https://x|login>`` in it must show as typed, not ping or link. Trackers and
pages get plain text escaped for their own markup where it goes out: :func:`jira_text` (Jira wiki
markup, in hooks.trackers) and :func:`statuspage_text` (Markdown and HTML, in hooks.statuspage).
"""

from __future__ import annotations

import re
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


# Jira wiki markup: links [text|url], images !url!, macros {code}, mentions [~user], tables |, and
# effects, lists and headings (*bold*, _em_, -strike-, +ins+, ^sup^, ~sub~, ??cite??, # item, h1.)
# (https://jira.atlassian.com/secure/WikiRendererHelpAction.jspa?section=all). A backslash makes a
# character show as typed (same page, "Misc": \\X). Effect characters only act next to a space or
# punctuation, so inside a word ("orders-api", "customer_id") they are left as they are.
_JIRA_ALWAYS = re.compile(r"[\\\[\]{}|!]")
_JIRA_EFFECT = re.compile(r"(?<![A-Za-z0-9])[*_\-+^~?#]|[*_\-+^~?#](?![A-Za-z0-9])")
_JIRA_LINE_MACRO = re.compile(r"^(\s*)(h[1-6]|bq)\.", re.MULTILINE)


def jira_text(value: Any) -> str:
    """Plain text that Jira's wiki renderer shows as typed: no link, image, macro, mention, effect or heading."""
    escaped = _JIRA_ALWAYS.sub(lambda m: "\\" + m.group(), str(value))
    escaped = _JIRA_EFFECT.sub(lambda m: "\\" + m.group(), escaped)
    return _JIRA_LINE_MACRO.sub(lambda m: f"{m.group(1)}{m.group(2)}\\.", escaped)


# Statuspage shows an incident update's body as Markdown (links, emphasis, lists) and lets some HTML
# through. Every punctuation mark that starts an inline Markdown construct is backslash-escaped
# (CommonMark, https://spec.commonmark.org/0.31.2/#backslash-escapes), as is a list marker or heading
# at the start of a line, and <, > and & become entities.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#!|~")
_MARKDOWN_LINE_START = re.compile(r"^(\s*\d*)([-+.)])(?=\s|$)", re.MULTILINE)
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def statuspage_text(value: Any) -> str:
    """Plain text that a Statuspage incident shows as typed: no Markdown link, emphasis, list or HTML."""
    text = "".join(_HTML_SPECIAL.get(char) or ("\\" + char if char in _MARKDOWN_SPECIAL else char)
                   for char in str(value))
    return _MARKDOWN_LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", text)


# ServiceNow journal fields (work notes, comments) render what is between [code] and [/code] as HTML
# ("Journal field type", https://www.servicenow.com/docs/r/washingtondc/platform-administration/c_JournalFields.html);
# plain text has no other markup there. The tags are broken with a zero-width space so they show as typed.
_SERVICENOW_CODE_TAG = re.compile(r"\[(/?code)\]", re.IGNORECASE)


def servicenow_text(value: Any) -> str:
    """Plain text that a ServiceNow journal field shows as typed: no [code] HTML."""
    return _SERVICENOW_CODE_TAG.sub(lambda m: f"[\u200b{m.group(1)}]", str(value))


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
