"""Taking secrets out of text before it is stored, logged, or sent to a ticket or a channel.

Client libraries put URLs in their error messages, and a URL may carry credentials
(``http://user:secret@host/``); a path built from ``$AIRFLOW_CONN_...`` carries a whole Connection.
Every run-time error text and every stored definition goes through :func:`redact`, which hides

- the password (or token) of any ``scheme://user:password@`` / ``scheme://token@`` in the text, and
- every secret the deployment's Connections hold in the environment (``AIRFLOW_CONN_*``, as a URI
  or JSON): their passwords, secret-looking extras, and the whole variable's value.

Config validation refuses credentials in URLs up front; this is the second line, for what comes
back from libraries and from the environment at run time.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s:@/?#\[\]]*)"
                           r"(?P<password>:[^\s@/?#]*)?@")
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|auth|private", re.IGNORECASE)
_MIN_SECRET = 4  # shorter values ("db", "1") would mask ordinary words


def _userinfo(match: re.Match[str]) -> str:
    # 'user:password@' keeps the user; a lone 'token@' is the credential itself.
    if match.group("password") is not None:
        return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
    return f"{match.group('scheme')}{MASK}@"


def connection_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret held by an ``AIRFLOW_CONN_*`` variable, longest first (so a longer one is masked whole)."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if not name.startswith("AIRFLOW_CONN_") or not value:
            continue
        found.add(value)
        found.update(_secrets_of(value))
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


def _secrets_of(value: str) -> set[str]:
    if value.lstrip().startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            return set()
        return _secret_fields(document)
    parts = urlsplit(value)
    found = {unquote(parts.password)} if parts.password else set()
    for pair in parts.query.split("&"):
        key, _, item = pair.partition("=")
        if item and _SECRET_KEY.search(key):
            found.add(unquote(item))
    return found


def _secret_fields(document: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(document, Mapping):
        for key, item in document.items():
            if isinstance(item, str) and _SECRET_KEY.search(str(key)):
                found.add(item)
            elif isinstance(item, Mapping | list):
                found |= _secret_fields(item)
            elif str(key) == "extra" and isinstance(item, str):
                try:
                    found |= _secret_fields(json.loads(item))
                except ValueError:
                    pass
    elif isinstance(document, list):
        for item in document:
            found |= _secret_fields(item)
    return found


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with URL credentials and the Connections' secrets replaced by ``***``."""
    text = _URL_USERINFO.sub(_userinfo, str(text))
    for secret in connection_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any, secrets: list[str] | None = None) -> Any:
    """A JSON-like value (a stored definition) with every string in it redacted."""
    secrets = connection_secrets() if secrets is None else secrets
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {key: redact_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item, secrets) for item in value]
    return value
