"""Who may do what, with the FAB auth manager: our roles, their permissions, and DAG-level access.

Pure data (no Airflow import: the DAG files call :func:`dag_access_control` while they parse).
Names are those of the FAB provider (``airflow.providers.fab.www.security.permissions``);
``tests/plugins/test_roles.py`` checks every one against it.

How FAB decides (``FabAuthManager.is_authorized_dag``): an action on a DAG's sub-entity (runs, task
instances, human-in-the-loop details) needs the global permission on that entity *and* the permission
on the DAG itself, ``DAG:<dag_id>`` (``can_read`` to look, ``can_edit`` to change anything). None of
our roles holds the global ``DAGs`` permission, so what they may touch is decided per DAG by its
``access_control`` (:func:`dag_access_control`), synced by the dag-processor when the DAG is stored.
Triggering also needs ``can_create`` on ``DAG Run:<dag_id>``; creating a backfill is the same check.

- **Support Analyst**: triggers and clears runs of the support DAGs, answers human-in-the-loop steps
  (UAT sign-offs, approvals) on them.
- **Access Reviewer**: sees ``access_review`` only, and answers its human-in-the-loop steps.
- **On-call**: clears failed tasks and backfills (a backfill creates runs) the support DAGs.
- **Support Viewer**: reads every DAG, its runs, tasks and logs; changes nothing.

The roles are created or updated by ``scripts/create_roles.py`` (with demo users if asked).
"""

from __future__ import annotations

# --- FAB names (airflow.providers.fab.www.security.permissions) --------------------------------

CAN_CREATE = "can_create"
CAN_READ = "can_read"
CAN_EDIT = "can_edit"
CAN_DELETE = "can_delete"
MENU_ACCESS = "menu_access"

DAGS = "DAGs"  # DAG-level: "DAG:<dag_id>"
DAG_RUNS = "DAG Runs"  # DAG-level: "DAG Run:<dag_id>"
DAG_CODE = "DAG Code"
DAG_DEPENDENCIES = "DAG Dependencies"
DAG_VERSIONS = "DAG Versions"
DAG_WARNINGS = "DAG Warnings"
TASK_INSTANCES = "Task Instances"
TASK_LOGS = "Task Logs"
XCOMS = "XComs"
HITL_DETAIL = "HITL Detail"  # human-in-the-loop responses ("Required Actions" in the UI)
BACKFILLS = "Backfills"
ASSETS = "Assets"
ASSET_ALIASES = "Asset Aliases"
POOLS = "Pools"
JOBS = "Jobs"
IMPORT_ERRORS = "ImportError"
CLUSTER_ACTIVITY = "Cluster Activity"
SLA_MISSES = "SLA Misses"
WEBSITE = "Website"
MY_PROFILE = "My Profile"
MY_PASSWORD = "My Password"
BROWSE_MENU = "Browse"
DOCS = "Documentation"
DOCS_MENU = "Docs"

# The resources an ``access_control`` mapping may name, with the actions valid on each
# (permissions.RESOURCE_DETAILS_MAP).
DAG_LEVEL_ACTIONS: dict[str, frozenset[str]] = {
    DAGS: frozenset({CAN_READ, CAN_EDIT, CAN_DELETE}),
    DAG_RUNS: frozenset({CAN_READ, CAN_CREATE, CAN_DELETE, MENU_ACCESS}),
}

# --- Roles ------------------------------------------------------------------------------------

SUPPORT_ANALYST = "Support Analyst"
ACCESS_REVIEWER = "Access Reviewer"
ON_CALL = "On-call"
SUPPORT_VIEWER = "Support Viewer"
ROLE_NAMES = (SUPPORT_ANALYST, ACCESS_REVIEWER, ON_CALL, SUPPORT_VIEWER)

# The DAG whose human-in-the-loop steps the access reviewers answer (DESIGN.md; not landed yet).
ACCESS_REVIEW_DAG = "access_review"
# Support DAGs with approvals that access reviewers (managers, the policy's approvers) answer.
APPROVED_BY_REVIEWERS = frozenset({"user_lifecycle"})

Permission = tuple[str, str]  # (action, resource), as FAB's ROLE_CONFIGS spell them

# Everyone who logs in: the UI itself, one's own profile and password.
_LOGIN: list[Permission] = [
    (CAN_READ, WEBSITE),
    (CAN_READ, MY_PROFILE),
    (CAN_EDIT, MY_PROFILE),
    (CAN_READ, MY_PASSWORD),
    (CAN_EDIT, MY_PASSWORD),
    (MENU_ACCESS, DAGS),
    (MENU_ACCESS, BROWSE_MENU),
    (MENU_ACCESS, DOCS),
    (MENU_ACCESS, DOCS_MENU),
]

# Reading what happened in a DAG the role may read (each also needs DAG:<id> can_read).
_READ_RUNS: list[Permission] = [
    (CAN_READ, DAG_RUNS),
    (CAN_READ, DAG_CODE),
    (CAN_READ, DAG_VERSIONS),
    (CAN_READ, DAG_WARNINGS),
    (CAN_READ, TASK_INSTANCES),
    (CAN_READ, TASK_LOGS),
    (CAN_READ, XCOMS),
    (CAN_READ, HITL_DETAIL),
    (MENU_ACCESS, DAG_RUNS),
    (MENU_ACCESS, TASK_INSTANCES),
]

# FAB's Viewer, without the global DAGs permission (which would open every DAG).
_READ_ESTATE: list[Permission] = [
    *_LOGIN,
    *_READ_RUNS,
    (CAN_READ, DAG_DEPENDENCIES),
    (CAN_READ, ASSETS),
    (CAN_READ, ASSET_ALIASES),
    (CAN_READ, BACKFILLS),
    (CAN_READ, CLUSTER_ACTIVITY),
    (CAN_READ, POOLS),
    (CAN_READ, IMPORT_ERRORS),
    (CAN_READ, JOBS),
    (CAN_READ, SLA_MISSES),
    (MENU_ACCESS, DAG_DEPENDENCIES),
    (MENU_ACCESS, ASSETS),
    (MENU_ACCESS, CLUSTER_ACTIVITY),
    (MENU_ACCESS, JOBS),
    (MENU_ACCESS, SLA_MISSES),
]

# Clearing task instances is PUT on (DAG Runs, Task Instances) plus DAG:<id> can_edit.
_CLEAR: list[Permission] = [(CAN_EDIT, DAG_RUNS), (CAN_EDIT, TASK_INSTANCES)]
# Answering a human-in-the-loop step is PUT on HITL Detail plus DAG:<id> can_edit.
_ANSWER: list[Permission] = [(CAN_EDIT, HITL_DETAIL), (MENU_ACCESS, HITL_DETAIL)]

# Role -> its global (not DAG-level) permissions. Which DAGs they apply to is access_control's say.
ROLE_PERMISSIONS: dict[str, list[Permission]] = {
    SUPPORT_VIEWER: _READ_ESTATE,
    SUPPORT_ANALYST: [*_READ_ESTATE, *_CLEAR, *_ANSWER],
    ON_CALL: [*_READ_ESTATE, *_CLEAR, (CAN_CREATE, BACKFILLS), (CAN_EDIT, BACKFILLS)],
    ACCESS_REVIEWER: [*_LOGIN, *_READ_RUNS, *_ANSWER],
}

# --- DAG-level access -------------------------------------------------------------------------

_READ = {DAGS: {CAN_READ}, DAG_RUNS: {CAN_READ}}
# Trigger (and backfill: the same check), and change runs and tasks of the DAG.
_OPERATE = {DAGS: {CAN_READ, CAN_EDIT}, DAG_RUNS: {CAN_READ, CAN_CREATE}}
# Answer the DAG's human-in-the-loop steps: DAG:<id> can_edit, but no new runs.
_RESPOND = {DAGS: {CAN_READ, CAN_EDIT}, DAG_RUNS: {CAN_READ}}


def dag_access_control(dag_id: str) -> dict[str, dict[str, set[str]]]:
    """The ``access_control`` of a DAG: role -> {resource: actions}.

    Every DAG but ``access_review`` is a support DAG: analysts and on-call operate it, viewers read
    it, reviewers do not see it. ``access_review`` is the reviewers' to answer; the others read it
    (separation of duty: who runs the estate does not decide on access to it). Reviewers also answer
    the privileged-access approvals of ``user_lifecycle`` (they approve, they never trigger).
    """
    if dag_id == ACCESS_REVIEW_DAG:
        roles = {ACCESS_REVIEWER: _RESPOND, SUPPORT_ANALYST: _READ, ON_CALL: _READ, SUPPORT_VIEWER: _READ}
    else:
        roles = {SUPPORT_ANALYST: _OPERATE, ON_CALL: _OPERATE, SUPPORT_VIEWER: _READ}
        if dag_id in APPROVED_BY_REVIEWERS:
            roles[ACCESS_REVIEWER] = _RESPOND
    return {role: {resource: set(actions) for resource, actions in grants.items()} for role, grants in roles.items()}


# --- Demo users (scripts/create_roles.py --demo-users) ----------------------------------------

DEMO_USERS: dict[str, tuple[str, ...]] = {  # username (also the password) -> roles
    "analyst": (SUPPORT_ANALYST,),
    "reviewer": (ACCESS_REVIEWER,),
    "oncall": (ON_CALL,),
    "viewer": (SUPPORT_VIEWER,),
    # People of the seeded directory (sandbox/directory_seed.py) whom the access policy asks: managers
    # and application owners review access and approve their people's privileged access (bob and carol
    # are also the policy's privileged_approvers); carol and alice also approve leavers' remediation.
    "alice": (ACCESS_REVIEWER, SUPPORT_ANALYST),
    "bob": (ACCESS_REVIEWER,),
    "carol": (ACCESS_REVIEWER, SUPPORT_ANALYST),
    "dave": (ACCESS_REVIEWER, SUPPORT_ANALYST),
}
