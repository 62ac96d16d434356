"""Joiner, mover, leaver: what a request changes in each identity system (pure functions, no I/O).

A request is checked against the HR roster (:func:`check_request`), then each system's change is
planned from the account as it is now and the role templates of the access policy
(:func:`plan_system`): a joiner gets an enabled account with the role's groups; a mover gets the
new role's groups and loses every role-template group the new role does not have (what the
old role gave); a leaver's account is disabled and loses every group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prep_support.form_input import BadInput, form_date

ACTIONS = ("joiner", "mover", "leaver")
EMPLOYEE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$"
SYSTEMS = ("okta", "ad")


class LifecycleError(BadInput):
    """The request cannot be carried out as asked; the message says why."""


def request_key(action: str, employee_id: str, effective_date: str) -> str:
    """The request's identity: a re-run of the same request finds its ticket and records by it."""
    return f"{action}:{employee_id}:{effective_date}"


def check_request(params: Mapping[str, Any], person: Mapping[str, Any] | None,
                  roles: Iterable[str], requester: str) -> dict[str, Any]:
    """The request, checked against the person's HR record; LifecycleError when it cannot be done.

    ``requester`` is who triggered the run (:func:`prep_support.approvals.requester`); the form's
    ``on_behalf_of`` is kept as written, for the ticket, and never decides who may approve.
    """
    action, employee_id = params["action"], params["employee_id"]
    if action not in ACTIONS:
        raise LifecycleError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if person is None:
        raise LifecycleError(f"employee {employee_id} is not in the HR roster")
    role = params.get("role_template") or None
    if action in ("joiner", "mover"):
        if role is None:
            raise LifecycleError(f"a {action} needs a role template")
        if role not in set(roles):
            raise LifecycleError(f"role template {role!r} is not in the access policy")
        if person["status"] == "terminated":
            raise LifecycleError(f"employee {employee_id} is terminated in HR: a {action} cannot be granted access")
    if action == "leaver" and person["status"] != "terminated" and person.get("termination_date") is None:
        raise LifecycleError(f"employee {employee_id} is {person['status']} in HR with no termination date: "
                             "HR must record the leaving first")
    effective = str(params["effective_date"])
    form_date(effective, "effective_date")  # the form's pattern lets 2030-02-30 through, and a conf anything
    return {"action": action, "employee_id": employee_id, "username": person["username"],
            "email": person["email"], "name": person["name"], "role_template": role,
            "hr_role": person.get("role") or None, "effective_date": effective,
            "requested_by": requester, "on_behalf_of": params.get("on_behalf_of") or None,
            "key": request_key(action, employee_id, effective)}


def plan_system(action: str, system: str, *, exists: bool, enabled: bool | None, current_groups: set[str],
                role_groups: Iterable[str], managed_groups: Iterable[str]) -> dict[str, Any]:
    """What to do in one system: create / enable / disable the account, groups to grant and revoke."""
    current, wanted = set(current_groups), list(dict.fromkeys(role_groups))
    if action == "leaver":
        return {"system": system, "exists": exists, "create": False, "enable": False,
                "disable": bool(exists and enabled), "grant": [], "revoke": sorted(current)}
    if action == "mover" and not exists:
        raise LifecycleError(f"a mover needs an existing {system} account; start with a joiner request")
    grant = [group for group in wanted if group not in current]
    revoke = sorted((set(managed_groups) & current) - set(wanted)) if action == "mover" else []
    return {"system": system, "exists": exists, "create": not exists, "enable": not exists or not enabled,
            "disable": False, "grant": grant, "revoke": revoke}


def privileged_grants(plans: Iterable[Mapping[str, Any]], privileged: set[tuple[str, str]]) -> list[dict[str, str]]:
    """The planned grants of privileged groups: these need an approval before anything is applied."""
    return [{"system": plan["system"], "group": group}
            for plan in plans for group in plan["grant"] if (plan["system"], group) in privileged]
