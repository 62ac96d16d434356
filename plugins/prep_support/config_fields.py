"""Field types shared by every config model: e-mail addresses, chat channels, URLs without credentials.

Each refuses what would be accepted silently and go wrong later: an owner that is not an address,
a channel of ``<!here>`` that pings everyone, a URL whose ``user:password@`` would reach the stored
definition, the task log and the incident evidence. A refusal never repeats the secret it found.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
# Slack: lower-case letters, digits, '-' and '_', at most 80 (https://api.slack.com/methods/conversations.create,
# "name"), written with or without '#'; or a channel id (C…, G…).
_SLACK_CHANNEL = re.compile(r"^(#?[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{8,20})$")


def check_email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError(f"{value[:100]!r} is not an e-mail address such as team@example.com")
    return value


def check_channel(value: str) -> str:
    if not _SLACK_CHANNEL.match(value):
        raise ValueError(f"{value[:100]!r} is not a Slack channel: write '#name' (lower-case letters, digits, "
                         "'-' and '_') or a channel id")
    return value


def check_distinct_people(names: list[str]) -> list[str]:
    """``names`` unchanged when no one is listed twice, whatever the case: identities compare without it."""
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise ValueError(f"{name!r} is listed twice (as {seen[name.lower()]!r}); usernames ignore case")
        seen[name.lower()] = name
    return names


def check_url(value: str) -> str:
    """An absolute http(s) URL or a path, with no credentials in it (they belong in a Connection)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as error:
        raise ValueError("is not a URL") from error
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or "the host"
        raise ValueError(f"holds credentials before {host!r} (user:password@): put them in the check's "
                         "Connection instead; they would reach the stored check, the task log and the ticket")
    if parts.scheme and parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme[:20]!r} is not http or https")
    if any(character.isspace() or ord(character) < 32 for character in value):
        raise ValueError("has blanks or control characters in it")
    return value


Email = Annotated[str, AfterValidator(check_email)]
People = AfterValidator(check_distinct_people)  # on a list of usernames: Annotated[list[Username], People]
SlackChannel = Annotated[str, AfterValidator(check_channel)]
Url = Annotated[str, AfterValidator(check_url)]
