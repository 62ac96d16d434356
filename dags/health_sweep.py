"""
### Health sweep

Every five minutes, probe every check in the service catalog
(`include/config/services.yaml`), record one result per check in the support
database (`support_db`), fold the results into health, and act on it.

- **http** and **tcp** checks are live probes, run concurrently in a few mapped
  batches with a timeout each, so one dead endpoint delays nobody. In a run for a
  past interval (a backfill, or a run cleared long after) they are recorded as
  *not evaluable*: the past cannot be probed now.
- **sql** checks evaluate the run's data interval, so a backfill fills history.
- An application being down is a result, not a task failure; a task fails only on
  its own errors (support database or Connection missing), and is retried.
- A monitoring source that does not answer leaves its checks *not evaluable*: recorded,
  health unchanged, and `every_check_evaluated` ends failed naming them, so such a sweep is
  red in the grid (the support channel hears when it starts, not on every sweep).
- Re-running a run replaces its results (keyed on check and run id).

**Acting on health** (`include/config/routing.yaml`):
- `evaluate_health`: hourly rollups, latency trends against a 7-day baseline, and the
  state machine (3 failures to go down, 2 successes to recover, flapping reported once).
- `reconcile_incidents`: open, comment on and resolve incidents in Jira or ServiceNow,
  keyed `service/check/kind`; nothing during a maintenance window; dependants of a down
  service are linked to its incident instead of opening their own.
- `send_notifications`: Slack (one thread per incident), Teams, e-mail, each message once.
- A critical service going down updates the asset `prep-support://incidents/critical`
  (only in a run that opened such an incident); `outage_comms` announces it as an outage. Once
  the incident is resolved, each run updates the asset again while that outage is still current,
  and `outage_comms` resolves it.

A bad catalog or routing file fails this DAG's import with the file, entry, field and line.
Any failed task is reported to the support channel with a link to its log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetAlias, CronDataIntervalTimetable, dag, task
from support_assets import CATALOG, CRITICAL_INCIDENTS_OPENED

from notifiers.callbacks import support_default_args
from operators.evaluate_health import EvaluateHealthOperator
from operators.probe_checks import ProbeChecksOperator
from operators.reconcile_incidents import ReconcileIncidentsOperator
from operators.send_notifications import SendNotificationsOperator
from prep_support.catalog import catalog_digest, load_catalog
from prep_support.paths import catalog_path
from prep_support.routing import load_routing

CATALOG_PATH = str(catalog_path())
BATCH_SIZE = 250  # a mapped task costs seconds to schedule, a probe milliseconds
# register_catalog adds a CATALOG event to this alias only when the catalog's content changed (support_docs
# republishes then); a plain Asset outlet would emit an event on every sweep.
CATALOG_CHANGED = AssetAlias("prep-support-catalog-changed", group="prep-support")

# Validated while parsing (the catalog from a cache keyed on its hash): a broken file is this DAG's import error.
load_routing(load_catalog(CATALOG_PATH))


@dag(
    # Each run covers the five minutes before it: results are stored with that data interval.
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    default_args=support_default_args(retry_delay=timedelta(seconds=20), execution_timeout=timedelta(minutes=10)),
    tags=["monitoring", "prep-support"],
    doc_md=__doc__,
)
def health_sweep():
    @task(inlets=[CATALOG], outlets=[CATALOG_CHANGED])
    def register_catalog(inlet_events=None, outlet_events=None) -> list[list[str]]:
        """Store services and checks as loaded, and split the checks into probe batches.

        When the catalog's content hash differs from the one on the last CATALOG event, emit a new one.
        """
        from hooks.database import DatabaseHook
        from prep_support.results import sync_catalog

        catalog = load_catalog(CATALOG_PATH)
        print(sync_catalog(DatabaseHook(conn_id="support_db").engine, catalog))
        digest = catalog_digest(CATALOG_PATH)
        last = list(inlet_events[CATALOG].ascending(False).limit(1))
        if not last or (last[0].extra or {}).get("sha256") != digest:
            outlet_events[CATALOG_CHANGED].add(CATALOG, extra={"sha256": digest})
        keys = sorted(catalog.checks_by_key)
        return [keys[first : first + BATCH_SIZE] for first in range(0, len(keys), BATCH_SIZE)]

    probes = ProbeChecksOperator.partial(task_id="probe_checks", catalog_path=CATALOG_PATH).expand(
        check_keys=register_catalog()
    )
    evaluate = EvaluateHealthOperator(task_id="evaluate_health", catalog_path=CATALOG_PATH)
    # Opening a critical incident updates CRITICAL_INCIDENTS (through the alias): outage_comms announces it;
    # so does an incident resolved while its outage is current: outage_comms resolves that.
    reconcile = ReconcileIncidentsOperator(task_id="reconcile_incidents", catalog_path=CATALOG_PATH,
                                           outlets=[CRITICAL_INCIDENTS_OPENED])
    notify = SendNotificationsOperator(task_id="send_notifications")
    probes >> evaluate >> reconcile >> notify

    @task
    def every_check_evaluated(summaries, ti=None) -> None:
        """Red when a source did not answer: its checks are recorded as not evaluable (health unchanged),
        but the sweep did not see them. The support channel is told when it starts, not every 5 minutes."""
        unevaluable = sorted(line for summary in summaries or [] for line in (summary or {}).get("unevaluable", []))
        if not unevaluable:
            return
        from airflow.sdk.exceptions import AirflowFailException

        from notifiers.callbacks import ToldElsewhere

        previous = ti.get_previous_ti()
        told = previous is not None and previous.state == "failed"
        text = (f"{len(unevaluable)} check(s) could not be evaluated, recorded as not evaluable:\n"
                + "\n".join(unevaluable[:50]))
        if told:
            raise ToldElsewhere(text + "\n(already failing in the previous sweep: the support channel was told then)")
        raise AirflowFailException(text)

    every_check_evaluated(probes.output)


health_sweep()
