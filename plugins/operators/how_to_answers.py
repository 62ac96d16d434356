"""Keep the knowledge base in the support database, and answer new how-to requests from it.

The knowledge base is refreshed from resolved Jira tickets labelled ``how-to`` (question and the
answer that resolved it) and from the runbooks support_docs publishes to Confluence (linked to
their page). Each new request is searched once (``prep_support.how_to``); when documents match well
enough, one comment lists the top three with links, sent through the notification ledger under
``how-to:jira:<key>:suggestions`` and marked on the ticket, so a retry or re-run never adds a second.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from operators.support_state import SupportStateOperator


class RefreshKnowledgeBaseOperator(SupportStateOperator):
    """Replace the knowledge base's tickets and runbooks with what Jira and Confluence hold now."""

    template_fields: Sequence[str] = ("support_db_conn_id", "how_to_path")

    def __init__(self, *, how_to_path: str | None = None, confluence_conn_id: str = "confluence_default",
                 confluence_space: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.how_to_path = how_to_path
        self.confluence_conn_id = confluence_conn_id
        self.confluence_space = confluence_space

    def execute(self, context: Any) -> dict[str, Any]:
        from hooks.confluence import ConfluenceHook
        from hooks.trackers import JiraIssues
        from prep_support import how_to_store as store
        from prep_support import support_docs as docs
        from prep_support.catalog import load_catalog
        from prep_support.how_to import load_how_to_config

        config = load_how_to_config(self.how_to_path)
        engine = self.support_engine()
        now = datetime.now(UTC)
        jira = JiraIssues(config.requests.jira_conn_id)
        tickets = [store.Document("ticket", h.key, h.question, h.answer, h.url) for h in docs.how_tos(
            jira.search(config.requests.resolved_jql(), fields="summary,description,comment"), jira.client.url)]
        confluence = ConfluenceHook(confluence_conn_id=self.confluence_conn_id)
        runbooks = []
        for service in load_catalog(self.catalog_path).services:
            page = confluence.find_page(docs.runbook_title(service), space=self.confluence_space)
            if page is not None:  # a runbook is suggested only once support_docs has published it
                runbooks.append(store.Document("runbook", service.id, docs.runbook_title(service),
                                               runbook_text(service), page.url))
        changes = {"ticket": store.replace_source(engine, "ticket", tickets, now),
                   "runbook": store.replace_source(engine, "runbook", runbooks, now)}
        terms = store.refresh_terms(engine)
        self.log.info("Knowledge base: %d ticket(s), %d runbook(s), %d terms; changes %s",
                      len(tickets), len(runbooks), terms, changes)
        return {"tickets": len(tickets), "runbooks": len(runbooks), "terms": terms, "changes": changes}


def runbook_text(service: Any) -> str:
    """What a runbook page says about operating the service by hand: the words a question would use."""
    runbook = service.runbook
    parts = [f"{service.name} ({service.id}), owned by {service.owner}"]
    if runbook is not None:
        parts += [f"Restart: {runbook.restart}" if runbook.restart else "",
                  f"Failover: {runbook.failover}" if runbook.failover else "", runbook.notes]
    return "\n".join(p for p in parts if p)


class AnswerHowToRequestsOperator(SupportStateOperator):
    """Record deflections of earlier suggestions, then answer each open how-to request not seen before.

    ``request_key`` (the on-demand form) answers that one request only.
    """

    template_fields: Sequence[str] = ("support_db_conn_id", "how_to_path", "request_key")

    def __init__(self, *, how_to_path: str | None = None, request_key: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.how_to_path = how_to_path
        self.request_key = request_key

    def execute(self, context: Any) -> dict[str, Any]:
        from hooks.trackers import JiraIssues
        from prep_support import how_to
        from prep_support import how_to_store as store

        config = how_to.load_how_to_config(self.how_to_path)
        engine = self.support_engine()
        jira = JiraIssues(config.requests.jira_conn_id)
        deflected = self.record_deflections(engine, jira)
        issues = jira.search(config.requests.open_jql(), fields="summary,description")
        if self.request_key:
            issues = [i for i in issues if i["key"] == self.request_key.strip()]
            if not issues:
                raise ValueError(f"{self.request_key!r} is not an open request labelled "
                                 f"{config.requests.label!r}; nothing to answer")
        seen = store.answered_keys(engine, "jira", [i["key"] for i in issues])
        vocabulary = store.load_vocabulary(engine)
        synonyms = how_to.synonym_index(config.synonyms)
        outcomes: Counter[str] = Counter()
        for issue in issues:
            if issue["key"] in seen:
                outcomes["seen_before"] += 1
                continue
            fields = issue.get("fields") or {}
            question = f"{fields.get('summary') or ''}\n{fields.get('description') or ''}".strip()
            query = how_to.build_query(question, vocabulary, synonyms, config.search)
            answer = how_to.decide(query, store.search(engine, query.search_words, config.search.candidates),
                                   config.search)
            if answer.status == "suggested":
                self.comment(engine, jira, issue["key"], answer)
            store.record_request(
                engine, system="jira", key=issue["key"], url=jira.browse_url(issue["key"]), question=question,
                status=answer.status, best_coverage=answer.best_coverage,
                suggestions=[{"title": s.title, "url": s.url, "coverage": s.coverage} for s in answer.suggestions],
                now=datetime.now(UTC), run_id=context["run_id"])
            self.log.info("%s: %s (best coverage %.2f) %s", issue["key"], answer.status, answer.best_coverage,
                          [s.title for s in answer.suggestions])
            outcomes[answer.status] += 1
        return {"requests": len(issues), "deflected": deflected, **dict(outcomes)}

    def comment(self, engine: Any, jira: Any, key: str, answer: Any) -> None:
        from prep_support import outbox
        from prep_support.how_to import MARKER
        from prep_support.messages import jira_text, render

        text = render("how_to/suggestions.txt.j2", suggestions=[
            {"title": jira_text(s.title), "url": s.url} for s in answer.suggestions if _linkable(s.url)])

        def send() -> outbox.Sent:
            jira.comment_once(key, MARKER, text)
            return outbox.Sent(message_id=key)

        outbox.send_once(engine, key=f"how-to:jira:{key}:suggestions", event="how-to", channel="jira",
                         conn_id=jira.conn_id, target=key, subject="These may answer your question", body=text,
                         send=send, now=datetime.now(UTC))

    def record_deflections(self, engine: Any, jira: Any) -> int:
        """Requests we suggested answers on that are now Done: deflected when the requester closed them."""
        from hooks.trackers import with_retries
        from prep_support import how_to
        from prep_support import how_to_store as store

        deflected = 0
        for request in store.awaiting_resolution(engine, "jira"):
            key = request.request_key
            issue = with_retries(f"Jira read {key}", lambda key=key: jira.client.get_issue(
                key, fields="status,reporter", expand="changelog"))
            status = ((issue.get("fields") or {}).get("status") or {}).get("statusCategory") or {}
            if status.get("key") != "done":
                continue
            by_requester = how_to.resolved_by_requester(issue, request.answered_at.replace(microsecond=0))
            store.record_resolution(engine, request.id, by_requester or datetime.now(UTC), by_requester is not None)
            deflected += by_requester is not None
        return deflected


def _linkable(url: str) -> bool:
    """Only an http(s) URL without the characters that end a Jira link goes into ``[title|url]``."""
    return url.startswith(("https://", "http://")) and not any(c in url for c in "|]\n ")
