"""HTTP calls for our hooks: timeouts always, and the other side's limits honoured.

``send`` retries what is safe to retry: any call answered 420, 429 or 503 (the server says it did
not process it; ``Retry-After`` is waited out), and idempotent calls (GET, PUT, DELETE, ...)
that failed with 500/502/504 or a broken connection. A POST that failed otherwise is not
repeated here: it may have taken effect, so the caller looks its result up by key first
(the incident's dedup key, a ledger entry) before trying again.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

RATE_LIMITED = {420, 429, 503}  # 420: Statuspage's rate-limit answer besides 429
TRANSIENT = {500, 502, 504}
IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read


class HttpError(RuntimeError):
    """A call failed for good; the message says which call and what the server said (never the token)."""

    def __init__(self, method: str, url: str, status: int | None, detail: str) -> None:
        super().__init__(f"{method} {url} failed: {f'HTTP {status}: ' if status else ''}{detail}")
        self.status = status


def retry_after_seconds(value: str | None, default: float) -> float:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    attempts: int = 5,
    max_wait_s: float = 60.0,
    timeout: tuple[float, float] | float = DEFAULT_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> requests.Response:
    """Send a request, retrying as described above; raise HttpError when it finally fails."""
    method = method.upper()
    for attempt in range(1, attempts + 1):
        backoff = min(max_wait_s, 0.5 * 2 ** (attempt - 1))
        try:
            response = session.request(method, url, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            if method not in IDEMPOTENT or attempt == attempts:
                raise HttpError(method, url, None, type(error).__name__) from error
            sleep(backoff)
            continue
        retryable = response.status_code in RATE_LIMITED or (
            response.status_code in TRANSIENT and method in IDEMPOTENT
        )
        if response.ok or not retryable or attempt == attempts:
            if not response.ok:
                raise HttpError(method, url, response.status_code, response.text[:500])
            return response
        sleep(min(max_wait_s, retry_after_seconds(response.headers.get("Retry-After"), backoff)))
    raise AssertionError("unreachable")
