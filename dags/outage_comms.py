"""
### Outage communication

Tell everyone about an outage, planned or unplanned, once per channel, and keep them told.

**Triggered two ways**
- **The form** (Trigger DAG): the service (from the catalog), planned or unplanned, severity,
  start and expected end, the impact for users, a workaround, the channels, and the action:
  `announce`, `update` (with the update's text) or `resolve`. A field that breaks its schema is
  refused before the run starts; what a schema cannot say (a planned outage needs a start and an end,
  the end after the start, an update needs its text) fails the first task, `plan_outages`, with
  the fields named, before anything is sent. `outage_id` defaults to `<service>-<start>`; an update
  or resolution without one is about the service's only open outage.
- **A critical incident**: when `health_sweep` opens an incident on a critical service that is
  down, it updates the asset `prep-support://incidents/critical`; each incident in the event
  becomes an unplanned outage (`<incident key>-<opened>`), its impact from the catalog, on every
  channel, its ticket the incident's ticket. When monitoring resolves the incident, the sweeps
  update the asset again (each sweep until the outage is resolved) with the outage under
  `resolved`: it is resolved as announced, on its channels, ended when the incident was resolved.
  An outage an analyst resolved already gets no second resolution.

**Channels** (`include/config/routing.yaml` and the catalog): Slack (the service's team channel;
updates and the resolution in the announcement's thread), Teams (an Adaptive Card), e-mail (the
service's distribution list, else its owner), Atlassian Statuspage (an incident, or a scheduled
maintenance, with the service's component and its dependants set), and the static status page
(`index.html` in `PREP_SUPPORT_STATUS_PAGE_DIR`, default `$AIRFLOW_HOME/status_page`). Every
event also updates the ticket (Jira or ServiceNow, found by `outage:<id>` before one is opened)
and republishes the Confluence page **Known issues** from the `outages` table.

**Planned work** registers a maintenance window for the service and its dependants (monitoring
opens no incident during it), reminds `remind_minutes` before the start, marks the maintenance in
progress at the start and completed at the end. The waits are deferred (no worker slot is held).

**Once only**: every message is keyed `outage:<id>:<event>:<channel>` in the notification ledger,
claimed before it is sent and recorded after; a retried, cleared or re-run task sends only what was
not sent. A resolution states the duration and the affected services.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task
from support_assets import CRITICAL_INCIDENTS

from notifiers.callbacks import support_default_args
from operators.outage_comms import CommunicateOutageOperator, PlanOutagesOperator
from prep_support.catalog import load_catalog
from prep_support.outages import (
    ACTIONS,
    CHANNELS,
    DATE_TIME_PATTERN,
    DEFAULT_REMIND_MINUTES,
    ID_PATTERN,
    KINDS,
    PROGRESS,
    SEVERITIES,
    TEXT_LIMIT,
)
from prep_support.paths import catalog_path
from prep_support.routing import load_routing

CATALOG_PATH = str(catalog_path())
PLAN = "plan_outages"

# Validated while parsing (the catalog from a cache keyed on its hash): a broken file is this DAG's import error.
SERVICE_IDS = [service.id for service in load_catalog(CATALOG_PATH).services]
load_routing(load_catalog(CATALOG_PATH))


def _optional_time(title: str, description: str) -> Param:
    return Param(None, type=["null", "string"], format="date-time", pattern=DATE_TIME_PATTERN, title=title,
                 description=description)


# The announcement is the form's open section; these fold away what most runs leave as it is.
CHANNELS_SECTION, LATER = "Channels and reminder", "Updates and resolution"


def _xcom_time(key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='" + PLAN + "', key='" + key + "') }}"


@dag(
    # Every critical incident monitoring opens, or resolves while its outage is current, starts a run;
    # analysts trigger it with the form.
    schedule=[CRITICAL_INCIDENTS],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=16,  # a planned outage's run lasts until its end; others must not wait behind it
    default_args=support_default_args(retry_delay=timedelta(seconds=30)),
    tags=["outages", "communication", "prep-support"],
    doc_md=__doc__,
    params={
        "action": Param("announce", type="string", enum=list(ACTIONS), title="Action",
                        values_display={"announce": "Announce a new outage", "update": "Post an update",
                                        "resolve": "Resolve it"},
                        description="announce a new outage, post an update, or resolve it"),
        # Defaults must pass the schema: an incident-triggered run uses them (its incidents are in the event).
        "service": Param(None, type=["null", "string"], enum=[None, *SERVICE_IDS], title="Service",
                         values_display={"null": "Choose a service (none: from the incident)"},
                         description="The affected service (catalog id); required when you announce one"),
        "kind": Param("unplanned", type="string", enum=list(KINDS), title="Kind",
                      description="planned: maintenance announced ahead (silences monitoring); unplanned: it broke"),
        "severity": Param("major", type="string", enum=list(SEVERITIES), title="Severity",
                          description="critical: down for everyone; major: down for many; minor: degraded"),
        "start": _optional_time("Start", "When it started or starts (UTC if no zone); default: now"),
        "expected_end": _optional_time("Expected end", "Required for planned work; must be after the start"),
        "impact": Param("", type="string", maxLength=TEXT_LIMIT, format="multiline", title="Impact for users",
                        description="What users cannot do; default: from the catalog"),
        "workaround": Param("", type="string", maxLength=TEXT_LIMIT, format="multiline", title="Workaround",
                            description="What users can do meanwhile; empty: none is offered"),
        "channels": Param(list(CHANNELS), type="array", items={"type": "string", "enum": list(CHANNELS)},
                          examples=list(CHANNELS), uniqueItems=True, title="Channels", section=CHANNELS_SECTION,
                          description="Where it is announced; the service's routing picks the Slack and Teams "
                                      "channels and e-mail list"),
        "remind_minutes": Param(DEFAULT_REMIND_MINUTES, type="integer", minimum=0, maximum=10080,
                                title="Remind before start (minutes)", section=CHANNELS_SECTION,
                                description="Planned work: a reminder this many minutes before the start; 0: none"),
        "outage_id": Param(None, type=["null", "string"], pattern=ID_PATTERN, title="Outage id", section=LATER,
                           description="Default: <service>-<start>; for update/resolve: the service's open outage"),
        "update": Param("", type="string", maxLength=TEXT_LIMIT, format="multiline", title="Update text",
                        section=LATER, description="For action update (and optionally resolve)"),
        "progress": Param("identified", type="string", enum=list(PROGRESS), title="Progress", section=LATER,
                          description="Statuspage status of an unplanned outage's update"),
    },
)
def outage_comms():
    from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync

    plan = PlanOutagesOperator(task_id=PLAN, catalog_path=CATALOG_PATH)
    communicate = CommunicateOutageOperator(task_id="communicate", stage="request", catalog_path=CATALOG_PATH)

    @task.short_circuit
    def announces_planned_work(requests: list[dict]) -> bool:
        """Only a planned outage's announcement goes on to the reminder, start and completion."""
        return any(r["action"] == "announce" and r["kind"] == "planned" for r in requests)

    # The waits last until the outage's times (days ahead): no execution_timeout, which counts deferral.
    wait_reminder = DateTimeSensorAsync(task_id="wait_for_reminder", target_time=_xcom_time("reminder_at"),
                                        execution_timeout=None)
    remind = CommunicateOutageOperator(task_id="remind", stage="reminder", catalog_path=CATALOG_PATH)
    wait_start = DateTimeSensorAsync(task_id="wait_for_start", target_time=_xcom_time("starts_at"),
                                     execution_timeout=None)
    start = CommunicateOutageOperator(task_id="mark_in_progress", stage="in_progress", catalog_path=CATALOG_PATH)
    wait_end = DateTimeSensorAsync(task_id="wait_for_end", target_time=_xcom_time("ends_at"), execution_timeout=None)
    complete = CommunicateOutageOperator(task_id="mark_completed", stage="completed", catalog_path=CATALOG_PATH)

    planned = announces_planned_work(plan.output)
    plan >> communicate >> planned
    planned >> wait_reminder >> remind >> wait_start >> start >> wait_end >> complete


outage_comms()
