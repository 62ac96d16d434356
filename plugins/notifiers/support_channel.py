"""Tell the support channel when a Prep Support task fails, with a link to its log."""

from __future__ import annotations

from typing import Any

from airflow.providers.slack.notifications.slack import SlackNotifier

FAILURE_TEXT = (
    ":x: Prep Support task failed: *{{ ti.dag_id }}.{{ ti.task_id }}*"
    "{% if ti.map_index is not none and ti.map_index >= 0 %} [{{ ti.map_index }}]{% endif %}"
    " (run `{{ run_id }}`, try {{ ti.try_number }})\n"
    "{% if exception %}Error: {{ exception | string | truncate(300) }}\n{% endif %}"
    "Log: {{ ti.log_url }}"
)


class SupportChannelNotifier(SlackNotifier):
    """The provider's SlackNotifier with our failure text and Slack's rate limits waited out."""

    def __init__(self, *, channel: str = "#prep-support", slack_conn_id: str = "slack_api_default",
                 **kwargs: Any) -> None:
        from hooks.slack_retries import slack_retry_handlers

        kwargs.setdefault("retry_handlers", slack_retry_handlers())
        super().__init__(slack_conn_id=slack_conn_id, channel=channel, text=FAILURE_TEXT, username="Prep Support",
                         **kwargs)
