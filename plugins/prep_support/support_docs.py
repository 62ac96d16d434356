"""What support_docs publishes: a runbook page per service and the "How do I?" knowledge base.

Pure views built from the catalog, the support database's rows and Jira's how-to tickets; the pages
are rendered from include/templates/docs/ (autoescaped, so catalog and ticket text shows as text).
Nothing here depends on the time of the run: publishing the same facts twice gives the same page,
which is what lets Confluence keep its version and SharePoint skip the upload.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prep_support.catalog import Catalog, Service
from prep_support.messages import render

RUNBOOK_PARENT = "Prep Support runbooks"
KNOWLEDGE_BASE_TITLE = "How do I? Support knowledge base"
HOW_TO_JQL = 'labels = "how-to" AND statusCategory = Done ORDER BY key ASC'
RECENT_INCIDENTS = 10


def runbook_title(service: Service) -> str:
    return f"Runbook: {service.name}"


def file_name(title: str) -> str:
    """A SharePoint-safe file name for a page: 'Runbook: Payments API' -> 'runbook-payments-api.html'."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:120] + ".html"


@dataclass(frozen=True)
class IncidentView:
    key: str
    kind: str
    status: str
    priority: str
    opened_at: datetime
    resolved_at: datetime | None
    ticket_key: str | None
    ticket_url: str | None


@dataclass(frozen=True)
class HowTo:
    question: str
    answer: str
    key: str
    url: str


def incident_views(rows: Iterable[Any]) -> list[IncidentView]:
    return [IncidentView(r.dedup_key, r.kind, r.status, r.priority, r.opened_at, r.resolved_at, r.ticket_key,
                         r.ticket_url) for r in rows]


def how_tos(issues: Sequence[Mapping[str, Any]], browse: str) -> list[HowTo]:
    """Question = summary; answer = the last comment (the resolution comment) or else the description."""
    entries = []
    for issue in issues:
        fields = issue.get("fields") or {}
        comments = (fields.get("comment") or {}).get("comments") or []
        answer = (comments[-1].get("body") if comments else None) or fields.get("description") or ""
        entries.append(HowTo(question=fields.get("summary") or issue["key"], answer=answer.strip(), key=issue["key"],
                             url=f"{browse.rstrip('/')}/browse/{issue['key']}"))
    return entries


def runbook_body(catalog: Catalog, service: Service, state: str | None, since: datetime | None,
                 incidents: Sequence[IncidentView]) -> str:
    """The runbook page's storage-format body (XHTML fragment)."""
    dependants = [s for s in catalog.services if service.id in s.depends_on]
    depends_on = [s for s in catalog.services if s.id in service.depends_on]
    return render("docs/runbook.html.j2", service=service, state=state, since=since, incidents=incidents,
                  depends_on=depends_on, dependants=dependants,
                  titles={s.id: runbook_title(s) for s in catalog.services})


def knowledge_base_body(entries: Sequence[HowTo]) -> str:
    return render("docs/how_to.html.j2", entries=entries)


def standalone_html(title: str, body: str) -> bytes:
    """The page as one HTML file (SharePoint): ``body`` is already rendered, escaped HTML."""
    return render("docs/page.html.j2", title=title, body=body).encode()
