"""The exchange recorder: every call a stand-in system receives, with what came back.

Each exchange (system, method, path, query, request headers minus secrets, request and response
bodies, status) is appended as one JSON line to ``{state_dir}/exchanges.jsonl`` for the whole life
of the sandbox, so a test at the end of a session can check every request our hooks made, and
every answer the stand-ins gave, against the vendors' published specifications
(``tests/specs/``). ``GET /sandbox/exchanges`` reads them back (``?system=slack`` narrows).

Secrets are not written: credential headers and cookies show as ``<redacted>``, as do the
secret fields of a form or JSON body (an OAuth client secret or assertion, an issued token). Bodies larger than
:data:`BODY_LIMIT` keep their first bytes and are marked ``truncated``; bodies that are neither
JSON, a form nor text (an uploaded file) keep only their size and content type.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

FILENAME = "exchanges.jsonl"
BODY_LIMIT = 256 * 1024
REDACTED = "<redacted>"
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key",
                            "api-key", "x-splunk-token"})
SECRET_FIELDS = frozenset({"client_secret", "client_assertion", "password", "token", "refresh_token",
                           "access_token", "assertion"})


def clean_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request or response headers by lower-case name, credentials replaced by ``<redacted>``."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        shown = REDACTED if key in SECRET_HEADERS else value.decode("latin-1")
        headers[key] = f"{headers[key]}, {shown}" if key in headers else shown
    return headers


def body_record(body: bytes, content_type: str) -> dict[str, Any] | None:
    """How a body is recorded: parsed JSON, a form as a dict, text, or only its size."""
    if not body:
        return None
    kind = content_type.split(";")[0].strip().lower()
    if len(body) > BODY_LIMIT:
        return {"size": len(body), "content_type": kind, "truncated": True,
                "text": body[:BODY_LIMIT].decode("utf-8", "replace")}
    if kind.endswith("json"):
        try:
            return {"json": _without_secrets(json.loads(body))}
        except ValueError:
            pass
    if kind == "application/x-www-form-urlencoded":
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {"form": [[k, REDACTED if k in SECRET_FIELDS else v] for k, v in fields]}
    if kind.startswith("text/") or kind.endswith(("json", "xml")):
        return {"text": body.decode("utf-8", "replace")}
    return {"size": len(body), "content_type": kind}


def _without_secrets(value: Any) -> Any:
    """A JSON value whose secret fields (an issued access token, say) read ``<redacted>``; types stay."""
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_FIELDS and isinstance(v, str) else _without_secrets(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


class Recorder:
    """Appends exchanges to the session's JSON-lines file; safe to call from the server's one event loop."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FILENAME
        self.path.write_text("")
        self._lock = threading.Lock()

    def record(self, exchange: dict[str, Any]) -> None:
        line = json.dumps(exchange, default=str) + "\n"
        with self._lock, self.path.open("a") as handle:
            handle.write(line)

    def read(self, system: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            lines = self.path.read_text().splitlines()
        exchanges = [json.loads(line) for line in lines if line]
        return [e for e in exchanges if system is None or e["system"] == system]


def read_file(path: Path) -> list[dict[str, Any]]:
    """The exchanges recorded in ``path`` (for a test reading the file after the sandbox has stopped)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
