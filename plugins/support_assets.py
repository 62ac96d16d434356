"""Assets that connect Prep Support workflows (producers emit events, consumers are scheduled on them).

CRITICAL_INCIDENTS: health_sweep emits an event when it opens a critical incident, or when an outage
announced for an incident is still current though the incident is resolved. The event's ``extra``
carries ``{"incidents": [...], "resolved": [...]}``: outage_comms announces an unplanned outage for
each opened incident and resolves each outage listed as resolved. CATALOG: the service catalog
changed (support_docs republishes).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

# extra of each event: {"incidents": [...], "resolved": [...]}: the critical incidents a health_sweep run
# opened, and the incidents' outages to resolve (see prep_support.outage_store)
CRITICAL_INCIDENTS = Asset("prep-support://incidents/critical", group="prep-support")
CATALOG = Asset("prep-support://catalog", group="prep-support")  # H5 wires it

# health_sweep's reconcile task has this alias as its outlet and adds a CRITICAL_INCIDENTS event to it only
# when there is an incident to announce or an outage to resolve: a task's own Asset outlet would emit an event
# on every success. (Its name predates the resolutions; it is kept because Airflow stores aliases by name.)
CRITICAL_INCIDENTS_OPENED = AssetAlias("prep-support-critical-incidents-opened", group="prep-support")
