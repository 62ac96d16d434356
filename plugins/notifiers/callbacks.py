"""Callbacks every Prep Support DAG uses, importable at parse time without Slack's SDK.

Importing the Slack provider costs about 0.3 s, and the DAG processor parses every file every
30 s: the notifier is built only when a task has actually failed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

SUPPORT_CHANNEL = "#prep-support"


def notify_support_channel(context: Any) -> None:
    """on_failure_callback: post the failed task, its error and its log link to the support channel."""
    from notifiers.support_channel import SupportChannelNotifier
    from prep_support.catalog import load_catalog
    from prep_support.routing import load_routing

    try:
        routing = load_routing(load_catalog())
        channel, conn_id = routing.support_channel, routing.support_slack_conn_id
    except ValueError:  # a broken config must not hide the failure being reported
        channel, conn_id = SUPPORT_CHANNEL, "slack_api_default"
    SupportChannelNotifier(channel=channel, slack_conn_id=conn_id)(context)


def support_default_args(retry_delay: timedelta) -> dict[str, Any]:
    """What every Prep Support task shares: the owning team, two retries, the support-channel alert."""
    return {
        "owner": "production-support",
        "retries": 2,
        "retry_delay": retry_delay,
        "on_failure_callback": notify_support_channel,
    }
