"""The static status page: what it shows (components, current incidents, upcoming maintenance) and where.

One self-contained HTML file (inline CSS, no script, no external resource) that a browser opens
from disk or any web server serves, rendered from ``include/templates/outage/status_page.html.j2``
with autoescaping. It is rebuilt from the ``outages`` table (and the health ``health_sweep``
keeps) on every outage event, so it always shows the full current picture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prep_support.outages import COMPONENT_STATUS, DEPENDANT_STATUS, IN_PROGRESS

# Worst last; the labels are what a reader sees.
STATUS_ORDER = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
STATUS_LABEL = {"operational": "Operational", "under_maintenance": "Under maintenance",
                "degraded_performance": "Degraded performance", "partial_outage": "Partial outage",
                "major_outage": "Major outage"}
HEALTH_STATUS = {"down": "major_outage", "degraded": "degraded_performance"}
PAGE_FILE = "index.html"


def status_page_dir() -> Path:
    """``PREP_SUPPORT_STATUS_PAGE_DIR``, else ``$AIRFLOW_HOME/status_page``."""
    configured = os.environ.get("PREP_SUPPORT_STATUS_PAGE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))) / "status_page"


@dataclass(frozen=True)
class Component:
    id: str
    name: str
    status: str

    @property
    def label(self) -> str:
        return STATUS_LABEL[self.status]


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=STATUS_ORDER.index, default="operational")


def component_statuses(services: Iterable[tuple[str, str]], current: Iterable[Any],
                       health: Mapping[str, str]) -> list[Component]:
    """Each service's status: the worst of what its current outages and its monitored health say."""
    said: dict[str, list[str]] = {}
    for outage in current:
        if outage.status == IN_PROGRESS:
            for service_id in outage.affected or [outage.service_id]:
                said.setdefault(service_id, []).append("under_maintenance")
            continue
        said.setdefault(outage.service_id, []).append(COMPONENT_STATUS[outage.severity])
        for service_id in (outage.affected or [])[1:]:
            said.setdefault(service_id, []).append(DEPENDANT_STATUS)
    components = []
    for service_id, name in services:
        statuses = said.get(service_id, [])
        if service_id in health and health[service_id] in HEALTH_STATUS:
            statuses.append(HEALTH_STATUS[health[service_id]])
        components.append(Component(service_id, name, worst(statuses)))
    return components


def page_context(services: Iterable[tuple[str, str]], listing: Mapping[str, list[Any]], health: Mapping[str, str],
                 names: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """What the template needs; only outages announced with the ``status_page`` channel are shown."""
    shown = {kind: [o for o in rows if "status_page" in (o.channels or [])] for kind, rows in listing.items()}
    components = component_statuses(services, shown["current"], health)
    overall = worst(c.status for c in components)
    return {"components": components, "current": shown["current"], "upcoming": shown["upcoming"],
            "overall": overall, "overall_label": STATUS_LABEL[overall], "names": names, "generated_at": now}


def write_page(directory: Path, html: str) -> Path:
    """Write ``index.html`` atomically (a reader never sees half a page)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / PAGE_FILE
    temporary = directory / f".{PAGE_FILE}.{os.getpid()}.tmp"
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(target)
    return target
