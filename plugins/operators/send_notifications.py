"""Send the queued messages (Slack, Teams, e-mail) once each, and record what was sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class SendNotificationsOperator(BaseOperator):
    """Deliver the outbox; a message that fails stays queued and the task fails so it is retried."""

    template_fields = ("support_db_conn_id",)

    def __init__(self, *, support_db_conn_id: str = "support_db", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.support_db_conn_id = support_db_conn_id

    def execute(self, context: Context) -> dict[str, int]:
        from hooks.channels import senders
        from hooks.database import DatabaseHook
        from prep_support.outbox import send_pending

        result = send_pending(DatabaseHook(conn_id=self.support_db_conn_id).engine, senders(), datetime.now(UTC))
        self.log.info("Notifications: %s", result)
        return result
