"""The FAB auth manager, with human-in-the-loop assignees named by username.

Our DAGs assign approvals and reviews to people by their login (``assigned_users=[{"id": "alice",
"name": "alice"}]``): the name the access policy, the HR roster and the UAT forms know. FAB's user
id is a database number that differs per deployment, so the stock check (``user.get_id() in
assigned_users``) would refuse every assignee. This manager accepts a user whose username is
assigned, and still their numeric id, so steps assigned either way work. Everything else is FAB's.

    AIRFLOW__CORE__AUTH_MANAGER=auth_managers.support_fab.SupportFabAuthManager
"""

from __future__ import annotations

from typing import Any

from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager


class SupportFabAuthManager(FabAuthManager):
    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: Any) -> bool:
        return user.username in assigned_users or super().is_authorized_hitl_task(
            assigned_users=assigned_users, user=user)
