"""What our REST hooks read from an ``http`` Connection, and the time conversions they share.

The Connection: host (with or without scheme), schema = URL scheme (https by default), port,
login/password when the system uses them; extra ``base_path`` (where the API lives below the
host, e.g. a route prefix or the sandbox's ``/prometheus``), ``timeout`` (read timeout in
seconds) and ``verify`` (TLS: false, or a CA bundle path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from hooks.http_client import DEFAULT_TIMEOUT, HttpError


@dataclass(frozen=True)
class ApiConnection:
    """A Connection's API root and credentials; the password never shows in repr or logs."""

    conn_id: str
    base_url: str
    login: str | None
    password: str | None = field(repr=False)
    extra: dict[str, Any]
    timeout: tuple[float, float]
    verify: bool | str = True

    def json_session(self, *, basic_auth: bool = False, headers: dict[str, str] | None = None) -> requests.Session:
        """A session that asks for JSON and verifies TLS as the Connection says.

        ``basic_auth`` sends the Connection's login and password; ``headers`` adds the system's own
        (its token header, say).
        """
        session = requests.Session()
        if basic_auth:
            session.auth = (self.login or "", self.password or "")
        session.verify = self.verify
        session.headers.update({"Accept": "application/json", **(headers or {})})
        return session


def api_connection(conn: Any, system: str, *, needs: tuple[str, ...] = ()) -> ApiConnection:
    """Read ``conn`` (an Airflow Connection); ValueError names the missing fields for ``system``."""
    missing = [name for name in ("host", *needs) if not getattr(conn, name, None)]
    if missing:
        raise ValueError(f"Connection {conn.conn_id!r} needs {', '.join(missing)} for {system}")
    extra = conn.extra_dejson
    host = conn.host.rstrip("/")
    if "://" not in host:
        port = f":{conn.port}" if conn.port else ""
        host = f"{conn.schema or 'https'}://{host}{port}"
    base_path = str(extra.get("base_path") or "").strip("/")
    verify = extra.get("verify", True)
    if isinstance(verify, str) and verify.lower() in ("true", "false"):
        verify = verify.lower() == "true"
    return ApiConnection(
        conn_id=conn.conn_id,
        base_url=f"{host}/{base_path}" if base_path else host,
        login=conn.login or None,
        password=conn.password or None,
        extra=extra,
        timeout=(DEFAULT_TIMEOUT[0], float(extra.get("timeout", DEFAULT_TIMEOUT[1]))),
        verify=verify,
    )


def epoch_seconds(moment: datetime, name: str = "time") -> float:
    """Unix seconds of a timezone-aware datetime (a data interval's bounds always are)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.timestamp()


def error_json(error: HttpError) -> Any | None:
    """The JSON body the server sent with a failed answer, when it sent (and we kept) whole JSON."""
    if error.status is None:
        return None
    detail = str(error).partition(f"HTTP {error.status}: ")[2]
    try:
        return json.loads(detail)
    except ValueError:
        return None
