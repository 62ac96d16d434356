"""The seeded-secret scan: no secret of a Connection (or a URL) in what a DAG run leaves behind.

Every test that runs a DAG (it uses the ``airflow_db`` fixture) is scanned when it ends, by the
autouse fixture in tests/conftest.py: its captured output and log records, the task log files it
wrote under AIRFLOW_HOME, every row of the support database, and everything the sandbox's
trackers, chats, mail and status page received. A secret found fails the test, naming where.

The secrets are the ones the session's Connections hold (the sandbox's tokens and passwords, the
Teams webhook path, which is the webhook's credential) plus those a test seeds: any value passed
to :func:`seed` (e.g. the password of a probe URL a test puts in a catalog).
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.request
from collections.abc import Iterable
from pathlib import Path

# Known secrets of the sandbox's Connections that are not passwords (a token in a header, a secret path).
ALWAYS = ("xoxb-sandbox-token", "sandbox-jira-token", "sandbox-snow-password", "/teams/webhook/")
MIN_LENGTH = 8  # shorter passwords ("secret", "admin") are ordinary words in logs
SANDBOX_STATE = ("/jira/_sandbox/issues", "/slack/_sandbox/messages", "/servicenow/_sandbox/incidents",
                 "/teams/_sandbox/messages", "/smtp/_sandbox/messages", "/statuspage/_sandbox/state")
_seeded: set[str] = set()


def seed(secret: str) -> str:
    """Add a secret that a test puts somewhere (a URL's password) to what every later scan looks for."""
    _seeded.add(secret)
    return secret


def secrets(environ: dict[str, str] | None = None) -> list[str]:
    from prep_support.redaction import connection_secrets

    environ = dict(os.environ if environ is None else environ)
    values = {value for name, value in environ.items() if name.startswith("AIRFLOW_CONN_")}
    found = {s for s in connection_secrets(environ) if s not in values and len(s) >= MIN_LENGTH}
    return sorted(found | set(ALWAYS) | _seeded)


def _sandbox_text(base_url: str) -> Iterable[tuple[str, str]]:
    for path in SANDBOX_STATE:
        try:
            with urllib.request.urlopen(f"{base_url}{path}", timeout=10) as answer:
                yield f"sandbox {path}", answer.read().decode(errors="replace")
        except OSError:
            continue


def _support_db_text(path: Path) -> Iterable[tuple[str, str]]:
    if not path.is_file():
        return
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
            if rows:
                yield f"support database table {table}", json.dumps(rows, default=str)
    finally:
        connection.close()


def _log_files(home: Path, since: float) -> Iterable[tuple[str, str]]:
    for path in home.rglob("*.log"):
        try:
            if path.stat().st_mtime >= since:
                yield f"log file {path.relative_to(home)}", path.read_text(errors="replace")
        except OSError:
            continue


def leaks(captured: Iterable[tuple[str, str]], home: Path, since: float, support_db: Path,
          sandbox_url: str | None) -> list[str]:
    """Where each secret shows up: ``'<secret>' in <place>``, or nothing."""
    places = [*captured, *_log_files(home, since), *_support_db_text(support_db)]
    if sandbox_url:
        places += list(_sandbox_text(sandbox_url))
    wanted = secrets()
    return [f"{secret[:4]}… in {place}" for place, text in places for secret in wanted if secret in text]
