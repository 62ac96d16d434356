"""The user_lifecycle DAG's steps: check against HR, plan, approve privileged grants, apply, ticket.

Every step is idempotent: the plan is made from the accounts as they are now, the hooks send
nothing for a change already in place and read each change back, the support database keeps the
first record of each change (``lifecycle_changes``), and the ticket is found by its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from operators.bad_input import failing_on_bad_input
from prep_support import approvals, hitl, lifecycle
from prep_support.access.policy import Policy, load_policy

# Named when no approver is left: the setting an administrator changes.
PRIVILEGED_APPROVERS = "privileged_approvers in include/config/access/policy.yaml"


def _policy(path: str | None) -> Policy:
    return load_policy(path)


class ValidateLifecycleRequestOperator(BaseOperator):
    """The form's request checked against the HR roster (the person exists; a leaver has left or is leaving)."""

    template_fields: Sequence[str] = ("request_params",)

    def __init__(self, *, request_params: Any, policy_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request_params = request_params
        self.policy_path = policy_path

    def execute(self, context: Any) -> dict[str, Any]:
        from hooks.hr_roster import HrRoster

        policy = _policy(self.policy_path)
        params = dict(self.request_params)
        person = next((p for p in HrRoster(**policy.hr).people() if p["employee_id"] == params["employee_id"]), None)
        requester = approvals.requester(context["dag_run"].triggering_user_name)
        with failing_on_bad_input():  # a LifecycleError is bad input: fail once, naming what is wrong
            request = lifecycle.check_request(params, person, policy.roles, requester)
        manager = None
        if person and person["manager_id"]:
            manager = next((p["username"] for p in HrRoster(**policy.hr).people()
                            if p["employee_id"] == person["manager_id"]), None)
        return {**request, "manager_username": manager}


class PlanLifecycleOperator(BaseOperator):
    """Per system, what to create, enable, disable, grant and revoke; the privileged grants and approvers."""

    template_fields: Sequence[str] = ("request",)

    def __init__(self, *, request: Any, policy_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request = request
        self.policy_path = policy_path

    def execute(self, context: Any) -> dict[str, Any]:
        policy, request = _policy(self.policy_path), self.request
        role = request["role_template"]
        plans = []
        for system, reader in (("okta", okta_state), ("ad", directory_state)):
            if system not in policy.systems:
                continue
            exists, enabled, groups = reader(policy.systems[system].conn_id, request)
            managed = {g for template in policy.roles.values() for g in template.get(system, [])}
            try:
                plans.append(lifecycle.plan_system(
                    request["action"], system, exists=exists, enabled=enabled, current_groups=groups,
                    role_groups=policy.roles[role].get(system, []) if role else [], managed_groups=managed))
            except lifecycle.LifecycleError as error:
                raise AirflowFailException(str(error)) from error
        privileged = lifecycle.privileged_grants(plans, policy.privileged_pairs)
        approvers: list[dict[str, str]] = []
        if privileged:
            candidates = [request.get("manager_username"),
                          *(policy.privileged_approvers or policy.reviewers.fallback)]
            try:
                approvers = approvals.approvers(candidates, requester=request["requested_by"],
                                                subjects=[request["username"]], setting=PRIVILEGED_APPROVERS)
            except approvals.FourEyesError as error:
                raise AirflowFailException(str(error)) from error
        self.log.info("Plan for %s: %s; privileged grants %s", request["key"], plans, privileged)
        return {"request": request, "systems": plans, "privileged": privileged, "approvers": approvers}


def okta_state(conn_id: str, request: dict[str, Any]) -> tuple[bool, bool | None, set[str]]:
    from hooks.okta import DISABLED_STATES, OktaHook

    hook = OktaHook(okta_conn_id=conn_id)
    user = hook.find_user(request["email"])
    if user is None:
        return False, None, set()
    return True, user["status"] not in DISABLED_STATES, hook.user_group_names(user["id"])


def directory_state(conn_id: str, request: dict[str, Any]) -> tuple[bool, bool | None, set[str]]:
    from hooks.directory import DirectoryHook

    hook = DirectoryHook(ldap_conn_id=conn_id)
    account = hook.find_account(request["username"])
    if account is None:
        return False, None, set()
    return True, account["enabled"], hook.groups_of(request["username"])


class PrivilegedAccessApprovalOperator(ApprovalOperator):
    """Approve or reject the plan's privileged grants; only the plan's approvers (never the requester or the
    subject) may answer."""

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "plan")

    def __init__(self, *, plan: Any, **kwargs: Any) -> None:
        super().__init__(subject="Privileged access", **kwargs)
        self.plan = plan

    def execute(self, context: Any) -> Any:
        request = self.plan["request"]
        try:  # the plan's list, checked again: a plan from an older run may predate four eyes
            self.assigned_users = approvals.approvers(
                [a["id"] for a in self.plan["approvers"]], requester=request["requested_by"],
                subjects=[request["username"]], setting=PRIVILEGED_APPROVERS)
        except approvals.FourEyesError as error:
            raise AirflowFailException(str(error)) from error
        grants = ", ".join(f"{g['system']}:{g['group']}" for g in self.plan["privileged"])
        self.subject = f"Privileged access for {request['username']} ({request['action']})"
        self.body = (f"**{request['action']}** for employee {request['employee_id']} ({request['username']}), "
                     f"role template `{request['role_template']}`, effective {request['effective_date']}, "
                     f"requested by {requested_by(request)}.\n\nPrivileged groups to grant: {grants}.")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # The answer only: a rejection does not skip apply_changes, which records it and changes nothing
        # (ApprovalOperator would skip it, and the run would keep no trace of who rejected).
        return HITLOperator.execute_complete(self, context=context, event=event)


class ApplyLifecycleOperator(BaseOperator):
    """Apply the plan in each system, each change read back, and record it in ``lifecycle_changes``."""

    template_fields: Sequence[str] = ("plan", "approval")

    def __init__(self, *, plan: Any, approval: Any = None, policy_path: str | None = None,
                 support_conn_id: str = "support_db", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.approval = approval
        self.policy_path = policy_path
        self.support_conn_id = support_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        policy, request = _policy(self.policy_path), self.plan["request"]
        approved, decided_by = _decision(self.approval)
        if self.plan["privileged"] and not approved:
            if decided_by is None:
                raise AirflowFailException("privileged grants planned but no approval recorded: nothing applied")
            rejection = {"system": "approval", "action": "reject", "target": "privileged", "changed": False,
                         "verified": True}
            record_changes(self.support_conn_id, request, [rejection], context["run_id"], decided_by)
            self.log.info("Rejected by %s: nothing applied for %s", decided_by, request["key"])
            return {"key": request["key"], "changes": [], "changed": 0, "approved_by": None,
                    "rejected_by": decided_by}
        approved_by = decided_by if approved else None
        if approved:
            try:
                approvals.check_answer(decided_by, requester=request["requested_by"], subjects=[request["username"]])
            except approvals.FourEyesError as error:
                raise AirflowFailException(f"{error}: nothing applied") from error
        changes: list[dict[str, Any]] = []
        for system_plan in self.plan["systems"]:
            conn_id = policy.systems[system_plan["system"]].conn_id
            apply = apply_okta if system_plan["system"] == "okta" else apply_directory
            changes.extend(apply(conn_id, request, system_plan))
        if self.plan["privileged"]:
            changes.append({"system": "approval", "action": "approve", "target": "privileged", "changed": True,
                            "verified": True})
        record_changes(self.support_conn_id, request, changes, context["run_id"], approved_by)
        summary = {"key": request["key"], "changes": changes, "changed": sum(c["changed"] for c in changes),
                   "approved_by": approved_by}
        self.log.info("Applied %s: %d change(s) made, %d already in place", request["key"], summary["changed"],
                      len(changes) - summary["changed"])
        return summary


def _decision(approval: Any) -> tuple[bool, str | None]:
    """(approved, by whom) from the approval's XCom; (False, None) when nobody was asked."""
    if not approval:
        return False, None
    approved = (approval.get("chosen_options") or [None])[0] == ApprovalOperator.APPROVE
    return approved, hitl.responder(approval) or "timeout default"


def apply_okta(conn_id: str, request: dict[str, Any], plan: dict[str, Any]) -> list[dict[str, Any]]:
    from hooks.okta import OktaHook

    hook, changes = OktaHook(okta_conn_id=conn_id), []
    user = hook.find_user(request["email"])
    if request["action"] != "leaver":
        if user is None:
            first, _, last = request["name"].rpartition(" ")
            user = hook.create_user(login=request["email"], email=request["email"], first_name=first or last,
                                    last_name=last, employee_id=request["employee_id"],
                                    manager=request.get("manager_username") or None)
            changes.append(_change("okta", "create", request["email"], True))
        changes.append(_change("okta", "enable", request["email"], hook.activate_user(user["id"])["changed"]))
    elif user is not None:
        changes.append(_change("okta", "disable", request["email"], hook.deactivate_user(user["id"])["changed"]))
    if user is None:
        return changes
    revoke = sorted(hook.user_group_names(user["id"])) if request["action"] == "leaver" else plan["revoke"]
    ids = hook.group_ids([*plan["grant"], *revoke])
    for group in plan["grant"]:
        changes.append(_change("okta", "grant", group, hook.add_to_group(user["id"], ids[group])["changed"]))
    for group in revoke:
        changes.append(_change("okta", "revoke", group, hook.remove_from_group(user["id"], ids[group])["changed"]))
    return changes


def apply_directory(conn_id: str, request: dict[str, Any], plan: dict[str, Any]) -> list[dict[str, Any]]:
    from hooks.directory import DirectoryHook

    hook, changes, username = DirectoryHook(ldap_conn_id=conn_id), [], request["username"]
    account = hook.find_account(username)
    if request["action"] != "leaver":
        if account is None:
            hook.create_account(username=username, email=request["email"], display_name=request["name"],
                                employee_id=request["employee_id"], manager_username=request.get("manager_username"))
            changes.append(_change("ad", "create", username, True))
        changes.append(_change("ad", "enable", username, hook.enable(username)["changed"]))
    elif account is None:
        return changes
    else:
        changes.append(_change("ad", "disable", username, hook.disable(username)["changed"]))
    revoke = sorted(hook.groups_of(username)) if request["action"] == "leaver" else plan["revoke"]
    for group in plan["grant"]:
        changes.append(_change("ad", "grant", group, hook.add_to_group(username, group)["changed"]))
    for group in revoke:
        changes.append(_change("ad", "revoke", group, hook.remove_from_group(username, group)["changed"]))
    return changes


def _change(system: str, action: str, target: str, changed: bool) -> dict[str, Any]:
    # The hooks raise when a re-read does not show the change, so a returned change is verified.
    return {"system": system, "action": action, "target": target, "changed": changed, "verified": True}


def record_changes(conn_id: str, request: dict[str, Any], changes: list[dict[str, Any]], run_id: str,
                   approved_by: str | None) -> None:
    """Keep the first record of each change: a re-run (which changes nothing) does not overwrite it."""
    if not changes:
        return
    from hooks.database import DatabaseHook
    from prep_support.results import dialect_insert
    from prep_support.schema import LifecycleChangeRow

    engine = DatabaseHook(conn_id=conn_id).engine
    now = datetime.now(UTC)
    rows = [{"request_key": request["key"], "system": c["system"], "action": c["action"], "target": c["target"],
             "username": request["username"], "changed": c["changed"], "verified": c["verified"], "run_id": run_id,
             "requested_by": request["requested_by"], "approved_by": approved_by, "recorded_at": now}
            for c in changes]
    statement = dialect_insert(engine, LifecycleChangeRow.__table__).on_conflict_do_nothing(
        index_elements=["request_key", "system", "action", "target"])
    with engine.begin() as connection:
        connection.execute(statement, rows)


class LifecycleTicketOperator(BaseOperator):
    """One tracker ticket per request (found again by its key), with the outcome as a comment."""

    template_fields: Sequence[str] = ("plan", "result")

    def __init__(self, *, plan: Any, result: Any, project: str = "IAM", jira_conn_id: str = "jira_default",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.result = result
        self.project = project
        self.jira_conn_id = jira_conn_id

    @cached_property
    def tracker(self) -> Any:
        from hooks.trackers import JiraTracker

        return JiraTracker(self.jira_conn_id)

    def execute(self, context: Any) -> dict[str, Any]:
        from prep_support.routing import Channels, ResolvedRoute, Tracker

        request = self.plan["request"]
        dedup_key = f"access:lifecycle:{request['key']}"
        route = ResolvedRoute(tracker=Tracker(system="jira", conn_id=self.jira_conn_id, issue_type="Task"),
                              project=self.project, priority="Medium", slack_channel=None, channels=Channels())
        ticket = self.tracker.create(
            dedup_key=dedup_key,
            summary=f"Access {request['action']}: {request['username']} ({request['employee_id']})",
            description=ticket_description(self.plan), route=route)
        self.tracker.comment(ticket, f"[{dedup_key}:result]", outcome_text(self.plan, self.result))
        return {"ticket": ticket.key, "dedup_key": dedup_key}


def ticket_description(plan: dict[str, Any]) -> str:
    request = plan["request"]
    lines = [f"{request['action']} for {request['name']} ({request['username']}, employee {request['employee_id']})",
             f"Role template: {request['role_template'] or '-'}; effective {request['effective_date']}; "
             f"requested by {requested_by(request)}.", "Plan:"]
    for system in plan["systems"]:
        steps = [name for name in ("create", "enable", "disable") if system[name]]
        lines.append(f"* {system['system']}: {', '.join(steps) or 'account as is'}; "
                     f"grant {system['grant'] or 'nothing'}; revoke {system['revoke'] or 'nothing'}")
    if plan["privileged"]:
        lines.append("Privileged grants need approval by one of: " + ", ".join(a["id"] for a in plan["approvers"]))
    return "\n".join(lines)


def requested_by(request: dict[str, Any]) -> str:
    """Who triggered the run, and on whose behalf when the form said so."""
    behalf = request.get("on_behalf_of")
    return request["requested_by"] + (f" on behalf of {behalf}" if behalf else "")


def outcome_text(plan: dict[str, Any], result: dict[str, Any]) -> str:
    if result.get("rejected_by"):
        return f"Privileged access rejected by {result['rejected_by']}: nothing was changed."
    made = [f"{c['system']} {c['action']} {c['target']}" for c in result["changes"] if c["changed"]]
    text = f"Applied and verified: {len(made)} change(s)" + (": " + "; ".join(made) if made else " (all in place).")
    if result.get("approved_by"):
        text += f" Privileged access approved by {result['approved_by']}."
    return text
