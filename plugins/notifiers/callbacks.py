"""Callbacks every Prep Support DAG uses, importable at parse time without Slack's SDK.

Importing the Slack provider costs about 0.3 s, and the DAG processor parses every file every
30 s: the notifier is built only when a task has actually failed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

SUPPORT_CHANNEL = "#prep-support"


def notify_support_channel(context: Any) -> None:
    """on_failure_callback: post the failed task, its error and its log link to the support channel.

    Failing data (``DataChecksFailed`` from validate_suite) is not a failure of Prep Support: its incident
    message, from the run's reconciliation, tells the service's channel; posting here too would say it twice.
    The same holds for any :class:`ToldElsewhere`.
    """
    if _told_elsewhere(context):
        return
    from notifiers.support_channel import SupportChannelNotifier
    from prep_support.catalog import load_catalog
    from prep_support.routing import load_routing

    try:
        routing = load_routing(load_catalog())
        channel, conn_id = routing.support_channel, routing.support_slack_conn_id
    except ValueError:  # a broken config must not hide the failure being reported
        channel, conn_id = SUPPORT_CHANNEL, "slack_api_default"
    SupportChannelNotifier(channel=channel, slack_conn_id=conn_id)(_told_safely(context))


def _told_safely(context: Any) -> Any:
    """The context with its exception as text the channel may see: a client's error can quote a URL with
    its password or a Connection's value, and a monitored system's text can hold a '<!channel>'."""
    from prep_support.messages import slack_text
    from prep_support.redaction import redact

    exception = context.get("exception")
    if exception is None:
        return context
    return {**context, "exception": slack_text(redact(str(exception)))}


# A task that calls out but hangs (a server that accepts and never answers, a runaway statement)
# would otherwise hold its worker slot until the DAG run's timeout, or for ever.
DEFAULT_EXECUTION_TIMEOUT = timedelta(minutes=30)


class ToldElsewhere(AirflowFailException):
    """A failure (never retried) whose news is already told elsewhere: failing data by its incident's message,
    a run marked failed by the task that failed. The support channel is not told again."""


def _told_elsewhere(context: Any) -> bool:
    return isinstance(context.get("exception"), ToldElsewhere)


def support_default_args(retry_delay: timedelta,
                         execution_timeout: timedelta = DEFAULT_EXECUTION_TIMEOUT) -> dict[str, Any]:
    """What every Prep Support task shares: the owning team, two retries, the support-channel alert, and
    a deadline on each try. Waits (sensors, human approvals) set ``execution_timeout=None`` in their DAG:
    Airflow counts a deferred task's whole wait against it, and they have their own timeout."""
    return {
        "owner": "production-support",
        "retries": 2,
        "retry_delay": retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": notify_support_channel,
    }
