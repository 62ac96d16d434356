"""Our FAB roles name only permissions the FAB provider knows, and every DAG gets its DAG-level access."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prep_support import roles
from prep_support.roles import (
    ACCESS_REVIEW_DAG,
    ACCESS_REVIEWER,
    ON_CALL,
    ROLE_NAMES,
    ROLE_PERMISSIONS,
    SUPPORT_ANALYST,
    SUPPORT_VIEWER,
    dag_access_control,
)

ROOT = Path(__file__).resolve().parents[2]
DAG_IDS = sorted(path.stem for path in (ROOT / "dags").glob("*.py") if not path.name.startswith("_"))
WRITE_ACTIONS = {"can_create", "can_edit", "can_delete"}


@pytest.fixture(scope="module")
def fab():
    from airflow.providers.fab.www.security import permissions

    return permissions


@pytest.fixture(scope="module")
def fab_known_permissions() -> set[tuple[str, str]]:
    """Every global (action, resource) FAB grants to one of its built-in roles (Admin has them all)."""
    from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride

    return {perm for config in FabAirflowSecurityManagerOverride.ROLE_CONFIGS for perm in config["perms"]}


def test_role_names() -> None:
    assert ROLE_NAMES == ("Support Analyst", "Access Reviewer", "On-call", "Support Viewer")
    assert set(ROLE_PERMISSIONS) == set(ROLE_NAMES) == {role for names in roles.DEMO_USERS.values() for role in names}


def test_every_named_action_and_resource_is_a_fab_constant(fab) -> None:
    actions = {value for name, value in vars(fab).items() if name.startswith("ACTION_")}
    resources = {value for name, value in vars(fab).items() if name.startswith("RESOURCE_") and isinstance(value, str)}
    for role, perms in ROLE_PERMISSIONS.items():
        for action, resource in perms:
            assert action in actions, f"{role}: {action!r} is no FAB action"
            assert resource in resources, f"{role}: {resource!r} is no FAB resource"


def test_every_role_permission_is_one_fab_grants(fab_known_permissions) -> None:
    """Not only valid names: pairs FAB itself uses, so the auth manager checks exactly these."""
    for role, perms in ROLE_PERMISSIONS.items():
        unknown = set(perms) - fab_known_permissions
        assert not unknown, f"{role}: {sorted(unknown)} are not permissions FAB grants to any role"
        assert len(perms) == len(set(perms)), f"{role} lists a permission twice"


def test_dag_level_resources_and_actions_match_fab(fab) -> None:
    assert {resource: set(actions) for resource, actions in roles.DAG_LEVEL_ACTIONS.items()} == {
        resource: set(details["actions"]) for resource, details in fab.RESOURCE_DETAILS_MAP.items()}


@pytest.mark.parametrize("dag_id", [*DAG_IDS, ACCESS_REVIEW_DAG, "some_future_dag"])
def test_access_control_is_valid_for_fab(fab, dag_id: str) -> None:
    access = dag_access_control(dag_id)
    assert set(access) <= set(ROLE_NAMES)
    for role, grants in access.items():
        for resource, actions in grants.items():
            assert resource in fab.RESOURCE_DETAILS_MAP, f"{dag_id}/{role}: {resource!r} is not DAG-level"
            assert actions <= fab.RESOURCE_DETAILS_MAP[resource]["actions"], f"{dag_id}/{role}/{resource}"


def test_no_role_holds_global_dag_access() -> None:
    """Global DAGs read/edit would open every DAG and make access_control meaningless."""
    for role, perms in ROLE_PERMISSIONS.items():
        assert not {("can_read", "DAGs"), ("can_edit", "DAGs"), ("can_delete", "DAGs")} & set(perms), role


def test_who_may_do_what() -> None:
    sweep, review = dag_access_control("health_sweep"), dag_access_control(ACCESS_REVIEW_DAG)
    # Viewers read everything, change nothing (neither globally nor on a DAG).
    assert not {action for action, _ in ROLE_PERMISSIONS[SUPPORT_VIEWER]} & WRITE_ACTIONS - {"can_edit"}
    assert {resource for action, resource in ROLE_PERMISSIONS[SUPPORT_VIEWER] if action == "can_edit"} == {
        "My Profile", "My Password"}
    for access in (sweep, review):
        assert access[SUPPORT_VIEWER] == {"DAGs": {"can_read"}, "DAG Runs": {"can_read"}}
    # Analysts trigger, clear and answer on support DAGs; on-call clears and backfills (runs: can_create).
    for role in (SUPPORT_ANALYST, ON_CALL):
        assert sweep[role] == {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}
        assert {("can_edit", "Task Instances"), ("can_edit", "DAG Runs")} <= set(ROLE_PERMISSIONS[role])
        assert review[role] == {"DAGs": {"can_read"}, "DAG Runs": {"can_read"}}
    assert ("can_edit", "HITL Detail") in ROLE_PERMISSIONS[SUPPORT_ANALYST]
    assert ("can_edit", "HITL Detail") not in ROLE_PERMISSIONS[ON_CALL]
    assert ("can_create", "Backfills") in ROLE_PERMISSIONS[ON_CALL]
    # Reviewers: access_review only; answer its steps, never start a run or clear a task.
    assert ACCESS_REVIEWER not in sweep
    assert review[ACCESS_REVIEWER] == {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read"}}
    # ... and user_lifecycle's privileged-access approvals, without triggering it.
    assert dag_access_control("user_lifecycle")[ACCESS_REVIEWER] == review[ACCESS_REVIEWER]
    assert ("can_edit", "HITL Detail") in ROLE_PERMISSIONS[ACCESS_REVIEWER]
    assert not {("can_edit", "Task Instances"), ("can_edit", "DAG Runs")} & set(ROLE_PERMISSIONS[ACCESS_REVIEWER])


def test_access_control_is_a_fresh_copy() -> None:
    first = dag_access_control("health_sweep")
    first[SUPPORT_VIEWER]["DAGs"].add("can_edit")
    assert dag_access_control("health_sweep")[SUPPORT_VIEWER]["DAGs"] == {"can_read"}


def test_roles_module_imports_nothing_heavy() -> None:
    """DAG files import it while parsing."""
    code = ("import sys, prep_support.roles; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'airflow', 'pydantic', 'sqlalchemy', 'yaml'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "plugins", capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_create_roles_syncs_the_access_of_every_dag(dagbag) -> None:
    """DAGs no longer carry access_control (deprecated in Airflow 3): scripts/create_roles.py grants each DAG of
    the folder its roles' DAG-level permissions, so it must find every DAG the dag-processor will store."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from create_roles import dag_ids
    finally:
        sys.path.remove(str(ROOT / "scripts"))

    assert dagbag.import_errors == {}
    assert dag_ids(ROOT / "dags") == sorted(dagbag.dags) == DAG_IDS
    assert all(dagbag.dags[dag_id].access_control is None for dag_id in DAG_IDS)
