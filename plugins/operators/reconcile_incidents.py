"""Open, update and resolve incidents in the trackers so they match the services' health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from operators.probe_checks import is_live_run
from operators.support_state import SupportStateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReconcileIncidentsOperator(SupportStateOperator):
    """Plan the difference between health and open incidents, carry it out, and queue the messages.

    Safe to retry at any point: see ``prep_support.reconcile`` for how each step is keyed.
    Runs for past intervals (backfills) change no incidents: incidents are about now.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.trackers import Trackers
        from prep_support.reconcile import reconcile_now

        now = datetime.now(UTC)
        end = context.get("data_interval_end") or now
        if not is_live_run(context["dag_run"].run_type, end, now):
            self.log.info("Run for a past interval: incidents are left as they are")
            return {"live": False}
        catalog, routing = self.load_config()
        engine = self.support_engine()
        done = reconcile_now(engine, catalog, routing, Trackers(), context["run_id"], now)
        for action in done.pop("actions"):
            self.log.info("Plan: %s", action)
        if done["in_maintenance"]:
            self.log.info("In a maintenance window, nothing opened or changed: %s", ", ".join(done["in_maintenance"]))
        self.log.info("Incidents: %s", done)
        self.emit_critical_incidents(context, engine)
        return done

    def emit_critical_incidents(self, context: Context, engine: Any) -> None:
        """Add a CRITICAL_INCIDENTS event when this run opened critical incidents (outage_comms announces
        them) or when outages announced for incidents are still current though their incident is resolved
        (outage_comms resolves them).

        Through the task's asset alias outlet, so no event is emitted when there is nothing to tell. The
        resolutions come from the state, not this run's changes: until outage_comms has resolved an outage,
        every sweep asks again (each message is sent once, so asking twice is harmless).
        """
        from support_assets import CRITICAL_INCIDENTS, CRITICAL_INCIDENTS_OPENED

        from prep_support.outage_store import critical_incidents_opened, incident_outages_to_resolve

        if CRITICAL_INCIDENTS_OPENED not in self.outlets:
            return
        opened = critical_incidents_opened(engine, context["run_id"])
        resolved = incident_outages_to_resolve(engine)
        if opened or resolved:
            context["outlet_events"][CRITICAL_INCIDENTS_OPENED].add(
                CRITICAL_INCIDENTS, extra={"incidents": opened, "resolved": resolved})
        if opened:
            self.log.info("Critical incidents opened, outage communication follows: %s",
                          ", ".join(i["dedup_key"] for i in opened))
        if resolved:
            self.log.info("Incidents resolved, their outages are resolved next: %s",
                          ", ".join(r["outage_id"] for r in resolved))
