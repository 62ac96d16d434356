"""
### User life cycle

Started from the form by an analyst to give, change or remove one person's access in every
identity system of the access policy (`include/config/access/policy.yaml`): Okta
(`okta_default`) and Active Directory (`ldap_default`).

- **joiner**: creates the accounts (or enables them), and grants the role template's groups.
- **mover**: grants the new role template's groups and removes every role-template group the
  new role does not have (what the old role gave).
- **leaver**: deactivates the Okta user and disables the AD account, and removes all their groups.

Steps: **validate** against the HR roster (the employee exists; a leaver is terminated or has a
termination date; joiners and movers need a role template) -> **plan** from the accounts as
they are now -> if a privileged group (policy `privileged`) would be granted, **approval** in
the UI (Required Actions) by the person's manager or the policy's `privileged_approvers`, never
the subject and never the requester -> **apply**, each change read back and recorded in the support
database (`lifecycle_changes`) -> a Jira **ticket** in project IAM recording the request, found again by its label
`prep-support:access:lifecycle:<action>:<employee>:<date>`, with the outcome as a comment.

The requester is who triggered the run, as logged in (the form's *On behalf of* is only shown on
the ticket); the approver is who answered the approval, as Airflow recorded it. Both go on the
ticket and into `lifecycle_changes`.

Every step is idempotent: running the same request again changes nothing and opens no second
ticket. A rejected (or, after three days, unanswered) approval changes nothing; *apply* records who
rejected it and the ticket says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from notifiers.callbacks import support_default_args
from operators.user_lifecycle import (
    ApplyLifecycleOperator,
    LifecycleTicketOperator,
    PlanLifecycleOperator,
    PrivilegedAccessApprovalOperator,
    ValidateLifecycleRequestOperator,
)
from prep_support import lifecycle
from prep_support.access.policy import load_policy

# Validated while parsing: a broken policy is this DAG's import error, and its roles are the form's choices.
ROLES = sorted(load_policy().roles)


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=3,
    default_args=support_default_args(retry_delay=timedelta(minutes=1)),
    tags=["access", "prep-support"],
    doc_md=__doc__,
    params={
        # The request, in the form's open section; only "on behalf of" is folded away.
        "action": Param("joiner", type="string", enum=list(lifecycle.ACTIONS), title="Action",
                        values_display={"joiner": "Joiner: give access", "mover": "Mover: change role",
                                        "leaver": "Leaver: remove all access"},
                        description="joiner: give access; mover: change role; leaver: remove all access."),
        "employee_id": Param(type="string", pattern=lifecycle.EMPLOYEE_ID_PATTERN, title="Employee id",
                             description="As in the HR roster, e.g. E1050."),
        "role_template": Param(None, type=["null", "string"], enum=[None, *ROLES], title="Role template",
                               values_display={"null": "No role template (leaver)"},
                               description="The role's groups in each system (include/config/access/policy.yaml); "
                                           "required for joiner and mover."),
        "effective_date": Param(type="string", format="date", title="Effective date",
                                description="When the change takes effect (YYYY-MM-DD); part of the request's key."),
        "on_behalf_of": Param(None, type=["null", "string"], pattern=lifecycle.USERNAME_PATTERN,
                              title="On behalf of", section="Asked by someone else? (optional)",
                              description="Who asked you for it (username), shown on the ticket. The requester is "
                                          "you, as logged in: you may not approve it yourself."),
    },
)
def user_lifecycle():
    request = ValidateLifecycleRequestOperator(
        task_id="validate_request",
        request_params={name: f"{{{{ params.{name} }}}}" for name in ("action", "employee_id", "effective_date")}
        | {"role_template": "{{ params.role_template or '' }}", "on_behalf_of": "{{ params.on_behalf_of or '' }}"},
    )
    plan = PlanLifecycleOperator(task_id="plan_changes", request=request.output)

    @task.branch(task_id="needs_approval")
    def needs_approval(planned: dict) -> str:
        return "approve_privileged" if planned["privileged"] else "apply_changes"

    approval = PrivilegedAccessApprovalOperator(
        task_id="approve_privileged", plan=plan.output, response_timeout=timedelta(days=3),
        defaults=["Reject"],  # unanswered in three days: nothing privileged is granted
        execution_timeout=None,  # the wait is bounded by response_timeout
    )
    apply = ApplyLifecycleOperator(task_id="apply_changes", plan=plan.output, approval=approval.output,
                                   trigger_rule="none_failed_min_one_success")
    ticket = LifecycleTicketOperator(task_id="record_ticket", plan=plan.output, result=apply.output)
    branch = needs_approval(plan.output)
    branch >> [approval, apply]
    approval >> apply >> ticket


user_lifecycle()
