"""Create or update our FAB roles (plugins/prep_support/roles.py), their DAG-level access, and demo users if asked.

Run it in the deployment's environment (its AIRFLOW_HOME / airflow.cfg, FAB auth manager), after
``airflow db migrate``, and again whenever a DAG is added::

    python scripts/create_roles.py                 # roles only
    python scripts/create_roles.py --demo-users    # and analyst/analyst, reviewer/reviewer, ...

Idempotent: each role ends up with exactly its global permissions from roles.py (missing ones are
added, others removed), and each DAG of the DAG folder (named after its file) with the DAG-level
permissions (``DAG:<id>``, ``DAG Run:<id>``) of ``roles.dag_access_control``, synced through the FAB
security manager. DAGs do not carry ``access_control`` themselves: Airflow 3 deprecates it with the
rest of ``airflow.security.permissions`` (it warns on every parse; removed in Airflow 4,
https://airflow.apache.org/docs/apache-airflow/3.3.0/security/deprecated_permissions.html), and with
it unset the dag-processor leaves these grants alone. A demo user that exists is given its role and
password again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))

from prep_support.roles import DEMO_USERS, ROLE_PERMISSIONS, dag_access_control  # noqa: E402

DAG_LEVEL_PREFIXES = ("DAG:", "DAG Run:")


def sync_roles(security_manager, roles: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Give each role exactly its global permissions; return what changed, one line each."""
    changes = []
    for name, wanted in roles.items():
        role = security_manager.find_role(name)
        if role is None:
            role = security_manager.add_role(name)
            changes.append(f"created role {name}")
        have = {(perm.action.name, perm.resource.name): perm for perm in role.permissions}
        for action, resource in wanted:
            if (action, resource) not in have:
                perm = security_manager.get_permission(action, resource) or \
                    security_manager.create_permission(action, resource)
                security_manager.add_permission_to_role(role, perm)
                changes.append(f"{name}: + {action} on {resource}")
        for (action, resource), perm in have.items():
            if (action, resource) not in wanted and not resource.startswith(DAG_LEVEL_PREFIXES):
                security_manager.remove_permission_from_role(role, perm)
                changes.append(f"{name}: - {action} on {resource}")
    return changes


def sync_demo_users(security_manager, users: dict[str, tuple[str, ...]]) -> list[str]:
    """The demo users with their roles, each one's name also its password (demos and tests only)."""
    changes = []
    for username, role_names in users.items():
        roles = [security_manager.find_role(name) for name in role_names]
        user = security_manager.find_user(username=username)
        if user is None:
            created = security_manager.add_user(username, username.title(), "Demo", f"{username}@example.com",
                                                roles, username)
            if not created:
                raise SystemExit(f"could not create user {username}")
            changes.append(f"created user {username} ({', '.join(role_names)})")
        else:
            user.roles = roles
            security_manager.update_user(user)
            security_manager.reset_password(user.id, username)
            changes.append(f"updated user {username} ({', '.join(role_names)})")
    return changes


def dag_ids(dags_folder: Path) -> list[str]:
    """The DAGs of the folder: each file defines the DAG named after it (tests/dags/test_dag_integrity.py)."""
    return sorted(path.stem for path in dags_folder.glob("*.py") if not path.name.startswith("_"))


def sync_dag_access(security_manager, ids: list[str]) -> list[str]:
    """Give each DAG's roles their DAG-level permissions (and take them from the roles it does not name)."""
    for dag_id in ids:
        security_manager.sync_perm_for_dag(dag_id, dag_access_control(dag_id))
    return [f"DAG-level access synced for {len(ids)} DAGs"] if ids else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-users", action="store_true",
                        help=f"also create the users {', '.join(DEMO_USERS)} (password = user name)")
    args = parser.parse_args(argv)

    from airflow.configuration import conf
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        changes = sync_roles(appbuilder.sm, ROLE_PERMISSIONS)
        changes += sync_dag_access(appbuilder.sm, dag_ids(Path(conf.get("core", "dags_folder"))))
        if args.demo_users:
            changes += sync_demo_users(appbuilder.sm, DEMO_USERS)
    print("\n".join(changes) or "roles up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
