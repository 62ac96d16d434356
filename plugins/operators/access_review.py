"""The steps of a quarterly access review campaign (DAG ``access_review``), each idempotent.

The domain work is in :mod:`prep_support.access`; these operators read the policy, open the hooks
and the support database, and hand over. The campaign id (``2026-Q4``) comes from the run's
logical date (or its ``campaign`` param), so a retried, cleared or backfilled run works on the same
campaign rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import BaseOperator, BaseSensorOperator

from prep_support import approvals, hitl

if TYPE_CHECKING:
    from airflow.sdk import Context
    from sqlalchemy import Engine

    from prep_support.access.policy import Policy

SUBMIT = "Submit decisions"
APPROVE, REJECT = "Approve", "Reject"


# --- shared helpers ------------------------------------------------------------------------------


def campaign_of(context: Context) -> tuple[str, datetime]:
    """(campaign id, as-of time) of the run: the ``campaign`` param if given, else its logical date's quarter."""
    from prep_support.access.snapshot import campaign_id_for

    moment = (context.get("data_interval_end") or context.get("logical_date")
              or context["dag_run"].run_after)
    requested = (context.get("params") or {}).get("campaign")
    return (requested or campaign_id_for(moment)), moment.astimezone(UTC)


def started_by(context: Context) -> str:
    """Who started the campaign's run: the user who triggered it, or the system for the quarterly schedule."""
    return approvals.requester(context["dag_run"].triggering_user_name)


def leavers(items: Iterable[dict[str, Any]]) -> list[str]:
    return sorted({item["subject"] for item in items})


# Named when no leaver approver is left: the setting an administrator changes.
LEAVER_APPROVERS = "leaver_approvers in include/config/access/policy.yaml"


def support_engine(conn_id: str) -> Engine:
    from hooks.database import DatabaseHook

    return DatabaseHook(conn_id=conn_id).engine


def evidence_dir(policy: Policy, campaign_id: str) -> Path:
    base = policy.evidence.directory or os.path.join(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")),
                                                     "access_reviews")
    return Path(base) / campaign_id


class _AccessStep(BaseOperator):
    template_fields = ("policy_path", "support_db_conn_id")

    def __init__(self, *, policy_path: str | None = None, support_db_conn_id: str = "support_db",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy_path = policy_path
        self.support_db_conn_id = support_db_conn_id

    def policy(self) -> Policy:
        from prep_support.access.policy import load_policy

        return load_policy(self.policy_path)


# --- snapshot and findings -----------------------------------------------------------------------


class SnapshotIdentitiesOperator(_AccessStep):
    """Read Okta, the directory and the HR roster in full; store them for the campaign with a SHA-256 manifest.

    A re-run replaces the campaign's snapshot, until a decision was recorded on it: from then on the
    population reviewed is kept (a cleared run continues the campaign instead of re-reading systems
    that remediation has since changed).
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.directory import DirectoryHook
        from hooks.hr_roster import HrRoster
        from hooks.okta import OktaHook
        from prep_support.access.review import load_items
        from prep_support.access.snapshot import (
            Source,
            accounts_frame,
            manifest_of,
            memberships_frame,
            people_frame,
            write_snapshot,
        )

        policy = self.policy()
        campaign_id, as_of = campaign_of(context)
        engine = support_engine(self.support_db_conn_id)
        if any(item["decision"] for item in load_items(engine, campaign_id)):
            # Decisions were made on this population: a cleared run keeps it (the evidence is of what was reviewed).
            self.log.info("%s already has decisions: its snapshot is kept as read", campaign_id)
            return {"campaign": campaign_id, "sources": manifest_of(engine, campaign_id), "kept": True}
        sources: list[Source] = []
        for system, scope in policy.systems.items():
            hook = OktaHook(okta_conn_id=scope.conn_id) if system == "okta" else DirectoryHook(
                ldap_conn_id=scope.conn_id)
            accounts = accounts_frame(hook.accounts(), f"{system}.accounts")
            sources.append(Source(f"{system}.accounts", "accounts", accounts, datetime.now(UTC)))
            memberships = memberships_frame(hook.memberships(), f"{system}.memberships")
            sources.append(Source(f"{system}.memberships", "memberships", memberships, datetime.now(UTC)))
        people = people_frame(HrRoster(**policy.hr).people())
        sources.append(Source("hr.people", "people", people, datetime.now(UTC)))
        manifest = write_snapshot(engine, campaign_id, sources, run_id=context["run_id"], as_of=as_of,
                                  now=datetime.now(UTC), started_by=started_by(context))
        for entry in manifest:
            self.log.info("%s: %d rows, sha256 %s", entry["source"], entry["rows"], entry["sha256"])
        return {"campaign": campaign_id, "sources": manifest}


class FindAccessIssuesOperator(_AccessStep):
    """Findings of the campaign, then its review items routed to reviewers, and each reviewer's packet.

    Returns the reviewers (the review task is mapped over them). Items already stored (decided or not)
    are kept: a re-run asks nothing again.
    """

    def execute(self, context: Context) -> list[str]:
        from sqlalchemy import update

        from prep_support.access import findings as found
        from prep_support.access import packets
        from prep_support.access.review import build_items, load_items, reviewers, store_items
        from prep_support.access.snapshot import load_snapshot, previous_campaign
        from prep_support.schema import AccessCampaignRow

        policy = self.policy()
        campaign_id, as_of = campaign_of(context)
        engine = support_engine(self.support_db_conn_id)
        accounts = load_snapshot(engine, campaign_id, "accounts")
        memberships = load_snapshot(engine, campaign_id, "memberships")
        people = load_snapshot(engine, campaign_id, "people")
        previous = previous_campaign(engine, campaign_id)
        previous_memberships = load_snapshot(engine, previous, "memberships") if previous else None
        findings = found.compute_findings(accounts, memberships, people, policy, as_of, previous_memberships)
        found.store_findings(engine, campaign_id, findings)
        self.log.info("findings of %s (previous campaign %s): %s", campaign_id, previous, found.summarise(findings))
        stored = store_items(engine, campaign_id, build_items(accounts, memberships, people, findings, policy))
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(update(AccessCampaignRow).where(AccessCampaignRow.id == campaign_id,
                                                               AccessCampaignRow.review_started_at.is_(None))
                               .values(review_started_at=now))
            connection.execute(update(AccessCampaignRow).where(AccessCampaignRow.id == campaign_id)
                               .values(status="review", updated_at=now, summary=found.summarise(findings)))
        due = (now + policy.review.response_timeout).strftime("%Y-%m-%d %H:%M UTC")
        names = reviewers(engine, campaign_id)
        check_mappable(campaign_id, names)
        folder = evidence_dir(policy, campaign_id) / "packets"
        folder.mkdir(parents=True, exist_ok=True)
        for reviewer in names:
            packet = packets.packet(campaign_id, reviewer, load_items(engine, campaign_id, reviewer=reviewer,
                                                                      leavers=False),
                                    due=due, default_decision=policy.review.default_decision)
            (folder / f"{reviewer}.html").write_text(packet["html"], encoding="utf-8")
            (folder / f"{reviewer}.csv").write_text(packet["csv"], encoding="utf-8")
        self.log.info("%s: %d items (%d new) for %d reviewers; packets in %s", campaign_id, stored["items"],
                      stored["new"], len(names), folder)
        return names


def check_mappable(campaign_id: str, names: list[str]) -> None:
    """The review maps one task per reviewer; Airflow refuses more than ``[core] max_map_length`` of them
    (after this task, with a message about XCom size). Say so now, naming the setting to raise."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import AirflowFailException

    limit = conf.getint("core", "max_map_length", fallback=1024)
    if len(names) > limit:
        raise AirflowFailException(
            f"{campaign_id}: {len(names)} reviewers, but Airflow maps at most [core] max_map_length = {limit} "
            f"review tasks: set AIRFLOW__CORE__MAX_MAP_LENGTH to at least {len(names)} on the API server "
            "and the workers, then clear this task")


# --- the human decisions -------------------------------------------------------------------------


class ReviewAccessOperator(HITLOperator):
    """One reviewer's packet as a form: keep or revoke per item, and a comment; only the reviewer may answer.

    Items the reviewer already decided (an earlier try, a killed and cleared run) are not asked again;
    with none left the task finishes without asking. The response timeout applies each field's
    default (the policy's ``default_decision``), recorded as decided by the timeout.
    """

    template_fields = ("reviewer", "policy_path", "support_db_conn_id")

    def __init__(self, *, reviewer: str, policy_path: str | None = None, support_db_conn_id: str = "support_db",
                 response_timeout: timedelta | None = None, **kwargs: Any) -> None:
        super().__init__(subject="Access review", options=[SUBMIT], defaults=[SUBMIT],
                         response_timeout=response_timeout, **kwargs)
        self.reviewer = reviewer
        self.policy_path = policy_path
        self.support_db_conn_id = support_db_conn_id

    def execute(self, context: Context) -> Any:
        from airflow.sdk import Param
        from airflow.sdk.definitions.param import ParamsDict

        from prep_support.access.policy import load_policy
        from prep_support.access.review import form_params, load_items

        policy = load_policy(self.policy_path)
        campaign_id, _ = campaign_of(context)
        engine = support_engine(self.support_db_conn_id)
        items = load_items(engine, campaign_id, reviewer=self.reviewer, leavers=False, undecided=True)
        if not items:
            self.log.info("%s has decided every item of %s: nothing to ask", self.reviewer, campaign_id)
            return {"reviewer": self.reviewer, "asked": 0}
        self.subject = f"Access review {campaign_id}: {len(items)} item(s) for {self.reviewer}"
        self.body = review_body(campaign_id, self.reviewer, items, policy)
        self.params = ParamsDict({key: Param(source="task", **spec)
                                  for key, spec in form_params(items, policy.review.default_decision).items()})
        self.assigned_users = [{"id": self.reviewer, "name": self.reviewer}]
        self.response_timeout = policy.review.response_timeout
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from prep_support.access.review import record_decisions

        answer = super().execute_complete(context, event)
        params_input = dict(answer["params_input"] or {})
        comment = params_input.pop("comment", "") or ""
        responder = hitl.responder(answer)
        campaign_id, _ = campaign_of(context)
        recorded = record_decisions(support_engine(self.support_db_conn_id), campaign_id, self.reviewer,
                                    params_input, responder, answer["responded_at"], comment)
        self.log.info("%s answered for %s: %s", responder or "the timeout", self.reviewer, recorded)
        return {"reviewer": self.reviewer, "responded_by": responder, **recorded}


def review_body(campaign_id: str, reviewer: str, items: list[dict[str, Any]], policy: Policy) -> str:
    """The form's Markdown: what is asked and where the packet is. Values are escaped (they come from systems)."""
    from prep_support.access.review import item_label

    lines = [f"**{len(items)}** item(s) of access review {campaign_id} are routed to you ({_md(reviewer)}).",
             f"For each, choose *keep* or *revoke*; undecided items become **{policy.review.default_decision}** "
             f"after {policy.review.response_timeout_hours:g} h. Your packet: "
             f"`packets/{_md(reviewer)}.html` in the campaign's evidence folder.", ""]
    lines += [f"- {_md(item_label(item))}" for item in items[:50]]
    if len(items) > 50:
        lines.append(f"- ... and {len(items) - 50} more (see the packet)")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Markdown and HTML neutralised: the UI renders the body as Markdown."""
    import html
    import re

    return re.sub(r"([\\`*_{}\[\]()#+!|>~-])", r"\\\1", html.escape(str(text), quote=True))


class ApproveLeaverRemediationOperator(HITLOperator):
    """Leavers still active: the policy's approvers (never a leaver) approve disabling their accounts.

    Approve -> every undecided leaver item is revoked by remediation; Reject, or the timeout -> kept.
    Finishes without asking when no leaver item is undecided.
    """

    template_fields = ("policy_path", "support_db_conn_id")

    def __init__(self, *, policy_path: str | None = None, support_db_conn_id: str = "support_db",
                 **kwargs: Any) -> None:
        super().__init__(subject="Leavers still active", options=[APPROVE, REJECT], defaults=[REJECT], **kwargs)
        self.policy_path = policy_path
        self.support_db_conn_id = support_db_conn_id

    def execute(self, context: Context) -> Any:
        from prep_support.access.policy import load_policy
        from prep_support.access.review import item_label, load_items

        policy = load_policy(self.policy_path)
        campaign_id, _ = campaign_of(context)
        items = load_items(support_engine(self.support_db_conn_id), campaign_id, leavers=True, undecided=True)
        if not items:
            return {"asked": 0}
        try:
            approvers = approvals.approvers(policy.leaver_approvers, requester=started_by(context),
                                            subjects=leavers(items), setting=LEAVER_APPROVERS)
        except approvals.FourEyesError as error:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(error)) from error
        self.subject = f"Access review {campaign_id}: disable {len(items)} leaver account(s) still active?"
        self.body = "\n".join(["HR lists these people as terminated; their accounts are still enabled. "
                               "**Approve** disables them; **Reject** keeps them (say why in the comment).", ""]
                              + [f"- {_md(item_label(item))}" for item in items])
        self.assigned_users = approvers
        self.response_timeout = timedelta(hours=policy.leaver_response_timeout_hours)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from prep_support.access.review import record_leaver_approval

        answer = super().execute_complete(context, event)
        responder = hitl.responder(answer)
        campaign_id, _ = campaign_of(context)
        if answer["chosen_options"] == [APPROVE]:
            from airflow.sdk.exceptions import AirflowFailException

            from prep_support.access.review import load_items

            items = load_items(support_engine(self.support_db_conn_id), campaign_id, leavers=True, undecided=True)
            try:
                approvals.check_answer(responder, requester=started_by(context), subjects=leavers(items))
            except approvals.FourEyesError as error:
                raise AirflowFailException(f"{error}: no leaver account is disabled") from error
        recorded = record_leaver_approval(support_engine(self.support_db_conn_id), campaign_id,
                                          answer["chosen_options"] == [APPROVE], responder, answer["responded_at"])
        return {"approved": answer["chosen_options"] == [APPROVE], "responded_by": responder, **recorded}


def reviewer_emails(engine: Engine, campaign_id: str, usernames: Iterable[str]) -> dict[str, str]:
    """Username -> e-mail of reviewers on the campaign's HR roster (how Slack is asked who they are)."""
    from sqlalchemy import select

    from prep_support.schema import AccessPersonRow

    with engine.connect() as connection:
        rows = connection.execute(select(AccessPersonRow.username, AccessPersonRow.email).where(
            AccessPersonRow.campaign_id == campaign_id, AccessPersonRow.username.in_(set(usernames)))).all()
    return {row.username: row.email for row in rows if row.email}


class RemindReviewersSensor(BaseSensorOperator):
    """Sends each reviewer with undecided items a direct message on Slack at each configured offset before
    the response timeout; done when nothing is undecided or the last reminder went out. The reviewer is
    found in Slack by their e-mail on the campaign's HR roster, else by username; one Slack does not know
    is reminded on the review channel with an @-mention instead.

    Each reminder is keyed ``access:<campaign>:reminder:<reviewer>:<hours>h:slack`` in the ledger, so
    a re-poke or re-run never sends it twice.
    """

    template_fields = ("policy_path", "support_db_conn_id")

    def __init__(self, *, policy_path: str | None = None, support_db_conn_id: str = "support_db",
                 **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("soft_fail", True)
        super().__init__(**kwargs)
        self.policy_path = policy_path
        self.support_db_conn_id = support_db_conn_id

    def poke(self, context: Context) -> bool:
        from sqlalchemy import select

        from hooks.channels import SlackSender
        from prep_support import outbox
        from prep_support.access import packets
        from prep_support.access.policy import load_policy
        from prep_support.access.review import load_items
        from prep_support.schema import AccessCampaignRow

        policy = load_policy(self.policy_path)
        campaign_id, _ = campaign_of(context)
        engine = support_engine(self.support_db_conn_id)
        undecided: dict[str, int] = {}
        for item in load_items(engine, campaign_id, leavers=False, undecided=True):
            undecided[item["reviewer"]] = undecided.get(item["reviewer"], 0) + 1
        if not undecided:
            return True
        with engine.connect() as connection:
            started = connection.execute(select(AccessCampaignRow.review_started_at)
                                         .where(AccessCampaignRow.id == campaign_id)).scalar()
        due = started + policy.review.response_timeout
        now = datetime.now(UTC)
        slack, conn_id, channel = SlackSender(), policy.review.slack_conn_id, policy.review.channel
        due_hours = [hours for hours in sorted(policy.review.reminder_hours_before, reverse=True)
                     if now >= due - timedelta(hours=hours)]
        emails = reviewer_emails(engine, campaign_id, undecided) if due_hours else {}
        for hours in due_hours:
            for reviewer, count in sorted(undecided.items()):
                text = packets.render("access/reminder.txt.j2", campaign_id=campaign_id, undecided=count,
                                      due=due.strftime("%Y-%m-%d %H:%M UTC"),
                                      default_decision=policy.review.default_decision).strip()
                key = f"access:{campaign_id}:reminder:{reviewer}:{hours:g}h:slack"
                send = partial(slack.post_direct, conn_id, reviewer, text, fallback_channel=channel,
                               email=emails.get(reviewer), key=key)  # the key in metadata: never posted twice
                if outbox.send_once(engine, key=key,
                                    event="reminder", channel="slack", conn_id=conn_id, target=f"@{reviewer}",
                                    subject=f"Access review {campaign_id} reminder", body=text, send=send, now=now):
                    self.log.info("reminded %s (%d undecided, %g h before the timeout)", reviewer, count, hours)
        last = min(policy.review.reminder_hours_before, default=0)
        return now >= due - timedelta(hours=last)


# --- remediation and evidence --------------------------------------------------------------------


class OktaTarget:
    def __init__(self, conn_id: str) -> None:
        from hooks.okta import OktaHook

        self.hook = OktaHook(okta_conn_id=conn_id)

    def state(self, item: dict[str, Any]) -> dict[str, Any]:
        from hooks.okta import DISABLED_STATES

        user = self.hook.find_user(item["account_id"])
        if user is None:
            return {"exists": False, "enabled": False, "groups": []}
        return {"exists": True, "enabled": user["status"] not in DISABLED_STATES, "status": user["status"],
                "groups": sorted(self.hook.user_group_names(user["id"]))}

    def remove_group(self, item: dict[str, Any]) -> None:
        group_id = self.hook.group_ids([item["group_name"]])[item["group_name"]]
        self.hook.remove_from_group(item["account_id"], group_id)

    def disable(self, item: dict[str, Any]) -> None:
        self.hook.deactivate_user(item["account_id"])


class DirectoryTarget:
    def __init__(self, conn_id: str) -> None:
        from hooks.directory import DirectoryHook

        self.hook = DirectoryHook(ldap_conn_id=conn_id)

    def state(self, item: dict[str, Any]) -> dict[str, Any]:
        account = self.hook.find_account(item["username"])
        if account is None:
            return {"exists": False, "enabled": False, "groups": []}
        return {"exists": True, "enabled": bool(account["enabled"]),
                "groups": sorted(self.hook.groups_of(item["username"]))}

    def remove_group(self, item: dict[str, Any]) -> None:
        self.hook.remove_from_group(item["username"], item["group_name"])

    def disable(self, item: dict[str, Any]) -> None:
        self.hook.disable(item["username"])


class RemediateAccessOperator(_AccessStep):
    """Close the review (undecided items get the policy default), then revoke what was decided revoke."""

    def execute(self, context: Context) -> dict[str, Any]:
        from sqlalchemy import update

        from prep_support.access.remediation import remediate
        from prep_support.access.review import apply_default
        from prep_support.schema import AccessCampaignRow

        policy = self.policy()
        campaign_id, _ = campaign_of(context)
        engine = support_engine(self.support_db_conn_id)
        now = datetime.now(UTC)
        defaulted = apply_default(engine, campaign_id, policy.review.default_decision, now)
        targets = {system: (OktaTarget if system == "okta" else DirectoryTarget)(scope.conn_id)
                   for system, scope in policy.systems.items()}
        counts = remediate(engine, campaign_id, targets, now)
        with engine.begin() as connection:
            connection.execute(update(AccessCampaignRow).where(AccessCampaignRow.id == campaign_id)
                               .values(status="remediated", updated_at=now))
        self.log.info("%s: %s (%d undecided items got the default)", campaign_id, counts, defaulted)
        return {"campaign": campaign_id, "defaulted": defaulted, **counts}


class PublishEvidenceOperator(_AccessStep):
    """Write the evidence pack, publish it as a Confluence page with the files attached, post the summary once."""

    template_fields = (*_AccessStep.template_fields, "confluence_conn_id")

    def __init__(self, *, confluence_conn_id: str = "confluence_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.confluence_conn_id = confluence_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from sqlalchemy import update

        from hooks.channels import SlackSender
        from hooks.confluence import ConfluenceHook
        from prep_support import outbox
        from prep_support.access import packets
        from prep_support.access.evidence import build_pack, page_body, summary_counts, write_pack
        from prep_support.schema import AccessCampaignRow

        policy = self.policy()
        campaign_id, _ = campaign_of(context)
        engine = support_engine(self.support_db_conn_id)
        files = build_pack(engine, campaign_id)
        write_pack(files, evidence_dir(policy, campaign_id))
        confluence = ConfluenceHook(confluence_conn_id=self.confluence_conn_id)
        page = confluence.publish_page(f"Access review {campaign_id}", page_body(engine, campaign_id, files),
                                       space=policy.evidence.confluence_space,
                                       parent_title=policy.evidence.parent_title)
        for file in files:
            confluence.attach_file(page.id, file.name.replace("/", "_"), file.content, file.content_type)
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(update(AccessCampaignRow).where(AccessCampaignRow.id == campaign_id)
                               .values(status="published", page_url=page.url, updated_at=now))
        counts = summary_counts(engine, campaign_id)
        text = packets.render("access/summary.txt.j2", campaign_id=campaign_id, page_url=page.url, **counts).strip()
        conn_id, channel = policy.review.slack_conn_id, policy.review.channel
        key = f"access:{campaign_id}:summary:slack"
        posted = outbox.send_once(engine, key=key, event="campaign_summary",
                                  channel="slack", conn_id=conn_id, target=channel,
                                  subject=f"Access review {campaign_id}", body=text, now=now,
                                  send=lambda: SlackSender().post(conn_id, channel, text, key=key))
        return {"campaign": campaign_id, "page_url": page.url, "files": len(files), "summary_posted": posted}
