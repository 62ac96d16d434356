"""Publish the runbooks and the "How do I?" knowledge base to Confluence and SharePoint.

Pages are published by title (ConfluenceHook.publish_page: created once, updated in place, no new
version when unchanged) under the parent page ``Prep Support runbooks``; the same pages go to a
SharePoint document library folder as one HTML file each (SharePointHook.upload_file: replaced by
path, identical content skipped). So a re-run, a retry or a weekly run with nothing new changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from operators.support_state import SupportStateOperator
from prep_support import support_docs as docs

log = logging.getLogger(__name__)


class PublishSupportDocsOperator(SupportStateOperator):
    template_fields: Sequence[str] = ("catalog_path", "sharepoint_folder", "confluence_space", "support_db_conn_id")

    def __init__(self, *, sharepoint_folder: str = "Support docs",
                 confluence_space: str | None = None, jira_conn_id: str = "jira_default",
                 confluence_conn_id: str = "confluence_default", sharepoint_conn_id: str = "sharepoint_default",
                 incident_days: int = 90, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sharepoint_folder = sharepoint_folder
        self.confluence_space = confluence_space
        self.jira_conn_id = jira_conn_id
        self.confluence_conn_id = confluence_conn_id
        self.sharepoint_conn_id = sharepoint_conn_id
        self.incident_days = incident_days

    def execute(self, context: Any) -> dict[str, Any]:
        from hooks.confluence import ConfluenceHook
        from hooks.sharepoint import SharePointHook
        from prep_support.catalog import load_catalog

        catalog = load_catalog(self.catalog_path)
        # An asset-triggered run (the catalog changed) has no data interval in its context: it runs as of its start.
        until = context.get("data_interval_end") or context["dag_run"].run_after
        pages = self.runbooks(catalog, until)
        pages.append((docs.KNOWLEDGE_BASE_TITLE, docs.knowledge_base_body(self.how_tos())))
        confluence = ConfluenceHook(confluence_conn_id=self.confluence_conn_id)
        sharepoint = SharePointHook(sharepoint_conn_id=self.sharepoint_conn_id)
        published = []
        for title, body in pages:
            parent = docs.RUNBOOK_PARENT if title.startswith("Runbook: ") else None
            page = confluence.publish_page(title, body, space=self.confluence_space, parent_title=parent)
            item = sharepoint.upload_file(self.sharepoint_folder, docs.file_name(title),
                                          docs.standalone_html(title, body))
            published.append({"title": title, "version": page.version, "url": page.url,
                              "file": item.get("name"), "web_url": item.get("webUrl")})
        log.info("Published %d page(s): %s", len(published), [(p["title"], p["version"]) for p in published])
        return {"pages": published}

    def runbooks(self, catalog: Any, until: datetime) -> list[tuple[str, str]]:
        from prep_support.schema import IncidentRow, ServiceStateRow

        engine = self.support_engine()
        since = until - timedelta(days=self.incident_days)
        with engine.connect() as connection:
            states = {r.service_id: r for r in connection.execute(select(ServiceStateRow)).all()}
            incidents = connection.execute(
                select(IncidentRow).where(IncidentRow.opened_at >= since, IncidentRow.opened_at < until)
                .order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())).all()
        pages = []
        for service in catalog.services:
            state = states.get(service.id)
            own = [row for row in incidents if row.service_id == service.id][:docs.RECENT_INCIDENTS]
            body = docs.runbook_body(catalog, service, state.state if state else None, state.since if state else None,
                                     docs.incident_views(own))
            pages.append((docs.runbook_title(service), body))
        return pages

    def how_tos(self) -> list[docs.HowTo]:
        from hooks.trackers import JiraIssues

        jira = JiraIssues(self.jira_conn_id)
        issues = jira.search(docs.HOW_TO_JQL, fields="summary,description,comment")
        return docs.how_tos(issues, jira.client.url)
