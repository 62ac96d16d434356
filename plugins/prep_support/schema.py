"""The support database's tables (SQLAlchemy 2). Changes go through an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ServiceRow(Base):
    """A service as last loaded from the catalog."""

    __tablename__ = "services"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200))
    team_channel: Mapped[str] = mapped_column(String(200))
    tracker_project: Mapped[str] = mapped_column(String(100))
    criticality: Mapped[str] = mapped_column(String(20))
    depends_on: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CheckRow(Base):
    """A check as last loaded; kept (inactive) when removed from the catalog, so history stays linked."""

    __tablename__ = "checks"

    id: Mapped[str] = mapped_column(String(201), primary_key=True)  # "service/check"
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    definition: Mapped[dict] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CheckResultRow(Base):
    """One check's outcome in one DAG run; a retried or re-run task replaces its own row."""

    __tablename__ = "check_results"
    __table_args__ = (
        UniqueConstraint("check_id", "run_id"),
        # "last N results of a check" and "a check's results in a time range"
        Index("ix_check_results_check_interval_end", "check_id", "data_interval_end"),
        # "all results in a time range"
        Index("ix_check_results_interval_end", "data_interval_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(ForeignKey("checks.id"))
    run_id: Mapped[str] = mapped_column(String(250))
    data_interval_start: Mapped[datetime] = mapped_column(UtcDateTime)
    data_interval_end: Mapped[datetime] = mapped_column(UtcDateTime)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))  # ok | warn | fail | not_evaluable
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class CheckStateRow(Base):
    """A check's health between sweeps (see prep_support.health.CheckState)."""

    __tablename__ = "check_states"

    check_id: Mapped[str] = mapped_column(ForeignKey("checks.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="ok")  # ok | degraded | down
    cause: Mapped[str] = mapped_column(String(20), default="")  # availability | performance
    since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    failures: Mapped[int] = mapped_column(default=0)
    problems: Mapped[int] = mapped_column(default=0)
    successes: Mapped[int] = mapped_column(default=0)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    changes: Mapped[list] = mapped_column(JSON, default=list)  # ISO times of recent changes
    regression_streak: Mapped[int] = mapped_column(default=0)
    last_run_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    # Performance baseline: p95 latency over the last 7 days of hourly rollups, refreshed hourly.
    baseline_p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    baseline_hours: Mapped[int] = mapped_column(default=0)
    baseline_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ServiceStateRow(Base):
    __tablename__ = "service_states"

    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="ok")
    since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CheckHourlyRow(Base):
    """Hourly rollup of a check's results, kept as results arrive: trends and charts read these."""

    __tablename__ = "check_hourly"

    check_id: Mapped[str] = mapped_column(ForeignKey("checks.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    results: Mapped[int] = mapped_column(default=0)  # evaluated results (not_evaluable excluded)
    failures: Mapped[int] = mapped_column(default=0)
    latency_count: Mapped[int] = mapped_column(default=0)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_max_ms: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_check_hourly_hour", "hour"),)


class IncidentRow(Base):
    """An incident we track, keyed by ``service/check/kind``; at most one open per key."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("uq_incidents_open_key", "dedup_key", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_incidents_service_status", "service_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(300))
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    # "service/check" for monitoring, "dq/<suite>/<check>" for data quality (so no foreign key to checks)
    check_id: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))  # availability | performance | flapping | data
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    state: Mapped[str] = mapped_column(String(20))  # the check's state when last updated
    priority: Mapped[str] = mapped_column(String(20))
    tracker: Mapped[str | None] = mapped_column(String(20), nullable=True)  # jira | servicenow; None if linked
    ticket_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ticket_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ticket_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    upstream_incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)
    evidence: Mapped[str] = mapped_column(Text, default="")
    updates: Mapped[int] = mapped_column(default=0)
    opened_run_id: Mapped[str] = mapped_column(String(250))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class NotificationRow(Base):
    """The outbox and ledger of messages: written with the change that causes them, sent once."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)  # e.g. incident:12:opened:slack
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True, index=True)
    event: Mapped[str] = mapped_column(String(30))  # opened | updated | resolved | flapping | report
    channel: Mapped[str] = mapped_column(String(20))  # slack | teams | email
    conn_id: Mapped[str] = mapped_column(String(250))  # the Connection that sends it
    target: Mapped[str] = mapped_column(String(300))  # Slack channel, Teams card title, e-mail addresses
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | sent
    message_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    thread_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Who asked for it: the user who triggered the run (prep_support.approvals.requester), or "system".
    requested_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class MaintenanceWindowRow(Base):
    """Planned work: checks of the covered services are recorded but open no incident and send nothing."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index("ix_maintenance_windows_span", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # idempotent creation (e.g. an outage id)
    service_ids: Mapped[list] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TrendReportRow(Base):
    """A service's weekly trend report as posted: figures, summary and chart; a re-run of the week replaces it."""

    __tablename__ = "trend_reports"
    __table_args__ = (UniqueConstraint("service_id", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    week_start: Mapped[datetime] = mapped_column(UtcDateTime)
    week_end: Mapped[datetime] = mapped_column(UtcDateTime)
    # See prep_support.reports: critical checks' results that did not fail; None when there were none.
    availability_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    results: Mapped[int] = mapped_column(default=0)  # evaluated results of all the service's checks
    summary: Mapped[dict] = mapped_column(JSON)
    chart_png: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class QualityResultRow(Base):
    """One data-quality check's outcome for one data interval; re-checking the interval replaces it."""

    __tablename__ = "dq_results"
    __table_args__ = (
        UniqueConstraint("suite_id", "check_id", "interval_start"),
        Index("ix_dq_results_suite_check_end", "suite_id", "check_id", "interval_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    suite_id: Mapped[str] = mapped_column(String(100))
    check_id: Mapped[str] = mapped_column(String(200))
    interval_start: Mapped[datetime] = mapped_column(UtcDateTime)
    interval_end: Mapped[datetime] = mapped_column(UtcDateTime)
    expectation: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(10))  # warn | fail
    success: Mapped[bool] = mapped_column(Boolean)
    observed_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    unexpected_count: Mapped[int | None] = mapped_column(nullable=True)
    element_count: Mapped[int | None] = mapped_column(nullable=True)
    unexpected_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    sample: Mapped[dict] = mapped_column(JSON, default=dict)  # {"columns": [...], "rows": [[...]]}, masked
    run_id: Mapped[str] = mapped_column(String(250))
    evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Outage communication (migration 0005) -----------------------------------------------------


class OutageRow(Base):
    """An announced outage (planned or unplanned), keyed by its outage id; the status pages are built from these.

    Its messages are in ``notifications`` under ``outage:<id>:<event>:<channel>``.
    """

    __tablename__ = "outages"
    __table_args__ = (Index("ix_outages_status_service", "status", "service_id"),)

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # planned | unplanned
    severity: Mapped[str] = mapped_column(String(20))  # critical | major | minor
    status: Mapped[str] = mapped_column(String(20))  # active | scheduled | in_progress | resolved | completed
    impact: Mapped[str] = mapped_column(Text, default="")
    workaround: Mapped[str] = mapped_column(Text, default="")
    channels: Mapped[list] = mapped_column(JSON, default=list)
    affected: Mapped[list] = mapped_column(JSON, default=list)  # the service and its dependants
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expected_end: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_update: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20), default="form")  # form | incident
    incident_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    ticket_system: Mapped[str | None] = mapped_column(String(20), nullable=True)  # jira | servicenow
    ticket_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ticket_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ticket_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    statuspage_incident_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_run_id: Mapped[str] = mapped_column(String(250), default="")
    # Who announced and who resolved it: the runs' triggering users, or "system" (an incident's asset event).
    announced_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Access reviews (migration 0006) -----------------------------------------------------------
from sqlalchemy import Date  # noqa: E402 - kept in this section (shared file)


class AccessCampaignRow(Base):
    """A quarterly access review campaign (``2026-Q4``): its run, its state, where its evidence went."""

    __tablename__ = "access_campaigns"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(250))
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)  # the data interval end: dormancy is measured to it
    status: Mapped[str] = mapped_column(String(20))  # snapshot | findings | review | remediated | published
    review_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    started_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a username, or "system"
    page_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AccessSnapshotSourceRow(Base):
    """The manifest of one source read for a campaign: how many rows, their SHA-256, when."""

    __tablename__ = "access_snapshot_sources"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("access_campaigns.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(50), primary_key=True)  # okta.accounts, ad.memberships, hr.people
    rows: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AccessAccountRow(Base):
    __tablename__ = "access_accounts"

    campaign_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    system: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    username: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    employee_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    manager: Mapped[str | None] = mapped_column(String(300), nullable=True)


class AccessMembershipRow(Base):
    """A group membership as read. Millions of rows per campaign: a narrow surrogate key keeps COPY fast
    (a key over the four text columns doubles its time); the snapshot dedupes memberships before writing."""

    __tablename__ = "access_memberships"
    __table_args__ = (Index("ix_access_memberships_campaign_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(20))
    system: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(200))
    group_name: Mapped[str] = mapped_column(String(300))


class AccessPersonRow(Base):
    """A person on the HR roster as read for a campaign."""

    __tablename__ = "access_people"

    campaign_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    manager_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    department: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # active | terminated | leave
    termination_date: Mapped[Any] = mapped_column(Date, nullable=True)
    role: Mapped[str | None] = mapped_column(String(100), nullable=True)
    username: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AccessFindingRow(Base):
    """One finding of a campaign; ``finding_id`` is ``kind:system:account_id:group`` (deterministic)."""

    __tablename__ = "access_findings"
    __table_args__ = (Index("ix_access_findings_campaign_kind", "campaign_id", "kind"),)

    campaign_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    finding_id: Mapped[str] = mapped_column(String(700), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    system: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(200))
    group_name: Mapped[str] = mapped_column(String(300), default="")  # "" for an account-level finding
    employee_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class AccessReviewItemRow(Base):
    """What a reviewer decides: keep or revoke one membership (or one account), with who, when and why."""

    __tablename__ = "access_review_items"
    __table_args__ = (Index("ix_access_review_items_campaign_reviewer", "campaign_id", "reviewer"),)

    campaign_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # sha256 of system/account/group
    system: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(300), default="")
    employee_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    subject: Mapped[str] = mapped_column(String(200))  # whose access (HR username, else the account's)
    group_name: Mapped[str] = mapped_column(String(300), default="")  # "" = the account itself
    action: Mapped[str] = mapped_column(String(30))  # remove_group | disable_account
    kinds: Mapped[list] = mapped_column(JSON, default=list)  # the findings on it
    reviewer: Mapped[str] = mapped_column(String(200))
    routed_by: Mapped[str] = mapped_column(String(200))  # manager | owner:<app> | escalated:<why> | leaver_approval
    decision: Mapped[str | None] = mapped_column(String(10), nullable=True)  # keep | revoke
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a username, or "default"
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")


class AccessRemediationRow(Base):
    """A revocation, keyed ``campaign/item``: what it found, what it did, what the re-read showed."""

    __tablename__ = "access_remediations"

    campaign_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    action: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))  # started | revoked | already_revoked | failed
    before: Mapped[dict] = mapped_column(JSON, default=dict)
    after: Mapped[dict] = mapped_column(JSON, default=dict)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


# User life cycle (dag user_lifecycle): one row per change a request made, kept from the first time it was applied.
class LifecycleChangeRow(Base):
    """One step of a joiner/mover/leaver request, keyed ``request/system/action/target``, verified by a re-read."""

    __tablename__ = "lifecycle_changes"

    request_key: Mapped[str] = mapped_column(String(200), primary_key=True)  # lifecycle:<action>:<employee>:<date>
    system: Mapped[str] = mapped_column(String(20), primary_key=True)  # okta | ad | approval
    action: Mapped[str] = mapped_column(String(20), primary_key=True)  # create | enable | disable | grant | revoke
    target: Mapped[str] = mapped_column(String(200), primary_key=True)  # the account, or the group
    username: Mapped[str] = mapped_column(String(200))
    changed: Mapped[bool] = mapped_column(Boolean)  # False: it already held, nothing was sent
    verified: Mapped[bool] = mapped_column(Boolean)
    run_id: Mapped[str] = mapped_column(String(250))
    requested_by: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- UAT cycles (migration 0007) ---------------------------------------------------------------


class UatCycleRow(Base):
    """A UAT cycle of a release: its plan, release ticket, report and the business owner's decision."""

    __tablename__ = "uat_cycles"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    release: Mapped[str] = mapped_column(String(100), unique=True)
    plan: Mapped[str] = mapped_column(String(300))  # a plan's name, or "jql: <query>"
    business_owner: Mapped[str] = mapped_column(String(200))
    deadline: Mapped[datetime] = mapped_column(UtcDateTime)
    release_key: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the Jira release ticket
    status: Mapped[str] = mapped_column(String(20), default="testing")  # testing | reported | approved | rejected
    report: Mapped[dict] = mapped_column(JSON, default=dict)  # UatReport.summary() when compiled
    report_url: Mapped[str | None] = mapped_column(String(500), nullable=True)  # the Confluence page
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    started_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # who triggered that run
    run_id: Mapped[str] = mapped_column(String(250))  # the run that started (or last re-ran) the cycle
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UatTicketRow(Base):
    """One case for one tester: its Jira sub-task and the outcome last seen."""

    __tablename__ = "uat_tickets"
    __table_args__ = (UniqueConstraint("cycle_id", "case_id", "tester"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("uat_cycles.id"))
    case_id: Mapped[str] = mapped_column(String(100))
    tester: Mapped[str] = mapped_column(String(200))
    ticket_key: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20), default="open")  # open | passed | failed | not done
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- How-to answers and shift handovers (migration 0008) ------------------------------------------


class HowToDocumentRow(Base):
    """A knowledge-base document: a resolved how-to ticket's answer, a runbook, a published page.

    The full-text index is the database's own and lives beside it (migration 0008): on PostgreSQL a
    generated ``search`` tsvector column with a GIN index, on SQLite the FTS5 table ``how_to_fts``
    kept in step by triggers. Neither is mapped here; :mod:`prep_support.how_to_store` queries them.
    """

    __tablename__ = "how_to_documents"
    __table_args__ = (UniqueConstraint("source", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(20))  # ticket | runbook | page
    ref: Mapped[str] = mapped_column(String(300))  # the ticket key, the service id, the page title
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(1000))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class HowToTermRow(Base):
    """The knowledge base's vocabulary (see prep_support.how_to): stem, its usual word, documents having it."""

    __tablename__ = "how_to_terms"

    term: Mapped[str] = mapped_column(String(100), primary_key=True)
    word: Mapped[str] = mapped_column(String(100))
    docs: Mapped[int] = mapped_column(default=0)


class HowToRequestRow(Base):
    """A how-to request seen by how_to_answers: what was decided, suggested, and whether it deflected."""

    __tablename__ = "how_to_requests"
    __table_args__ = (UniqueConstraint("system", "request_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(20))  # jira
    request_key: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(1000))
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # suggested | no_match | other_language | no_terms
    best_coverage: Mapped[float] = mapped_column(Float, default=0.0)
    suggestions: Mapped[list] = mapped_column(JSON, default=list)
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    deflected: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[str] = mapped_column(String(250))


class ShiftHandoverRow(Base):
    """One team's handover at one shift change: what was in it and where it went."""

    __tablename__ = "shift_handovers"
    __table_args__ = (UniqueConstraint("team", "shift_start"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(100))
    shift_start: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # the shift being handed over to
    shift_end: Mapped[datetime] = mapped_column(UtcDateTime)
    since: Mapped[datetime] = mapped_column(UtcDateTime)  # the previous handover: failures counted from here
    items: Mapped[int] = mapped_column(default=0)
    summary: Mapped[dict] = mapped_column(JSON)
    page_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
