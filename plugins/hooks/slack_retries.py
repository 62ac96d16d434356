"""slack_sdk retry handlers for every Slack call we make.

The WebClient retries only connection errors by default; Slack answers bursts with HTTP 429
and a Retry-After header, which RateLimitErrorRetryHandler waits out. Server errors are not
retried here: a chat.postMessage answered 500 may have posted, and the outbox decides.
Nor is a chat.postMessage whose connection broke: Slack has no idempotency key, so the message
may be in the channel already; ``hooks.channels.SlackSender.post`` looks for it by the ledger key
in its metadata before it posts again.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler

NOT_REPEATABLE = ("chat.postMessage",)  # calls that create something each time they are made


class SafeConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    """Retries a call whose connection failed, unless repeating it could post a second message."""

    def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Exception | None = None) -> bool:
        if request.url.rstrip("/").endswith(NOT_REPEATABLE):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


def slack_retry_handlers() -> list[RetryHandler]:
    return [RateLimitErrorRetryHandler(max_retry_count=8), SafeConnectionErrorRetryHandler(max_retry_count=2)]
