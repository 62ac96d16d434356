"""slack_sdk retry handlers for every Slack call we make.

The WebClient retries only connection errors by default; Slack answers bursts with HTTP 429
and a Retry-After header, which RateLimitErrorRetryHandler waits out. Server errors are not
retried here: a chat.postMessage answered 500 may have posted, and the outbox decides.
"""

from __future__ import annotations

from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler


def slack_retry_handlers() -> list[RetryHandler]:
    return [RateLimitErrorRetryHandler(max_retry_count=8), ConnectionErrorRetryHandler(max_retry_count=2)]
