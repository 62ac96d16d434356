"""Assets that connect Prep Support workflows (producers emit events, consumers are scheduled on them).

CRITICAL_INCIDENTS: health_sweep emits an event when it opens a critical incident; the event's
``extra`` carries ``{"incidents": [...]}`` (one entry per opened incident) and outage_comms announces
an unplanned outage for each. CATALOG: the service catalog changed (support_docs republishes).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

# extra of each event: {"incidents": [...]}, the critical incidents a health_sweep run opened
CRITICAL_INCIDENTS = Asset("prep-support://incidents/critical", group="prep-support")
CATALOG = Asset("prep-support://catalog", group="prep-support")  # H5 wires it

# health_sweep's reconcile task has this alias as its outlet and adds a CRITICAL_INCIDENTS event to it
# only when it opened a critical incident: a task's own Asset outlet would emit an event on every success.
CRITICAL_INCIDENTS_OPENED = AssetAlias("prep-support-critical-incidents-opened", group="prep-support")
