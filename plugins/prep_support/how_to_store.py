"""The knowledge base and the how-to requests in the support database.

Documents are replaced per source (a resolved ticket, a runbook, a published page); the database
keeps their full-text index itself (migration 0008) and ranks them: ``ts_rank_cd`` on PostgreSQL,
FTS5 ``bm25`` on SQLite (include/sql/how_to/). The vocabulary (``how_to_terms``) is rebuilt with
the documents; :mod:`prep_support.how_to` uses it for the language check, typos and term weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, text, update

from prep_support import paths
from prep_support.how_to import Hit, Vocabulary, build_vocabulary
from prep_support.schema import HowToDocumentRow, HowToRequestRow, HowToTermRow

documents = HowToDocumentRow.__table__
terms = HowToTermRow.__table__
requests = HowToRequestRow.__table__
_BATCH = 5000


@dataclass(frozen=True)
class Document:
    source: str  # ticket | runbook | page
    ref: str
    title: str
    body: str
    url: str


@cache
def search_sql(dialect: str) -> str:
    name = "postgresql" if dialect == "postgresql" else "sqlite"
    return (paths.SQL_DIR / "how_to" / f"search.{name}.sql").read_text()


def full_text_query(dialect: str, search_words: Sequence[str]) -> str:
    """OR of the words in the database's own query language (words are [a-z0-9]+, see how_to.words)."""
    if dialect == "postgresql":
        return " | ".join(f"'{w}'" for w in search_words)
    return " OR ".join(f'"{w}"' for w in search_words)


def search(engine: Engine, search_words: Sequence[str], limit: int) -> list[Hit]:
    """The database's best ``limit`` documents for any of ``search_words``, in its rank order."""
    if not search_words:
        return []
    dialect = engine.dialect.name
    with engine.connect() as connection:
        rows = connection.execute(text(search_sql(dialect)),
                                  {"query": full_text_query(dialect, search_words), "limit": limit}).all()
    return [Hit(r.id, r.source, r.title, r.url, f"{r.title}\n{r.body}", float(r.rank)) for r in rows]


def replace_source(engine: Engine, source: str, docs: Iterable[Document], now: datetime) -> dict[str, int]:
    """Make ``source``'s documents exactly ``docs``: insert new refs, update changed ones, delete the rest."""
    wanted = {d.ref: d for d in docs}
    added = changed = 0
    with engine.begin() as connection:
        existing = {r.ref: r for r in connection.execute(
            select(documents.c.id, documents.c.ref, documents.c.title, documents.c.body, documents.c.url)
            .where(documents.c.source == source))}
        gone = [r.id for ref, r in existing.items() if ref not in wanted]
        for start in range(0, len(gone), _BATCH):
            connection.execute(delete(documents).where(documents.c.id.in_(gone[start:start + _BATCH])))
        new = [{"source": source, "ref": d.ref, "title": d.title, "body": d.body, "url": d.url, "updated_at": now}
               for ref, d in wanted.items() if ref not in existing]
        for start in range(0, len(new), _BATCH):
            connection.execute(insert(documents), new[start:start + _BATCH])
        added = len(new)
        for ref, d in wanted.items():
            row = existing.get(ref)
            if row is not None and (row.title, row.body, row.url) != (d.title, d.body, d.url):
                connection.execute(update(documents).where(documents.c.id == row.id).values(
                    title=d.title, body=d.body, url=d.url, updated_at=now))
                changed += 1
    return {"added": added, "changed": changed, "removed": len(gone)}


def refresh_terms(engine: Engine) -> int:
    """Rebuild the vocabulary from every document; the number of distinct stems."""
    with engine.connect() as connection:
        texts = (f"{r.title}\n{r.body}" for r in connection.execute(select(documents.c.title, documents.c.body)))
        count, docs, word_of = build_vocabulary(texts)
    rows = [{"term": t[:100], "word": word_of[t][:100], "docs": n} for t, n in docs.items()]
    with engine.begin() as connection:
        connection.execute(delete(terms))
        for start in range(0, len(rows), _BATCH):
            connection.execute(insert(terms), rows[start:start + _BATCH])
    return len(rows)


def load_vocabulary(engine: Engine) -> Vocabulary:
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(documents)).scalar_one()
        rows = connection.execute(select(terms.c.term, terms.c.word, terms.c.docs)).all()
    return Vocabulary(count, {r.term: r.docs for r in rows}, {r.term: r.word for r in rows})


# -- requests and deflection ------------------------------------------------------------------------

def answered_keys(engine: Engine, system: str, keys: Sequence[str]) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(requests.c.request_key).where(
            requests.c.system == system, requests.c.request_key.in_(list(keys)))).scalars())


def record_request(engine: Engine, *, system: str, key: str, url: str, question: str, status: str,
                   best_coverage: float, suggestions: list[dict[str, Any]], now: datetime, run_id: str) -> None:
    """Remember what was decided for a request (once: a re-run finds it and leaves it)."""
    with engine.begin() as connection:
        found = connection.execute(select(requests.c.id).where(
            requests.c.system == system, requests.c.request_key == key)).first()
        if found is None:
            connection.execute(insert(requests).values(
                system=system, request_key=key, url=url, question=question, status=status,
                best_coverage=best_coverage, suggestions=suggestions, answered_at=now, deflected=False,
                run_id=run_id))


def awaiting_resolution(engine: Engine, system: str) -> list[Any]:
    """Requests we suggested answers on whose resolution we have not seen yet."""
    with engine.connect() as connection:
        return connection.execute(select(requests).where(
            requests.c.system == system, requests.c.status == "suggested",
            requests.c.resolved_at.is_(None)).order_by(requests.c.id)).all()


def record_resolution(engine: Engine, request_id: int, resolved_at: datetime, deflected: bool) -> None:
    with engine.begin() as connection:
        connection.execute(update(requests).where(requests.c.id == request_id, requests.c.resolved_at.is_(None))
                           .values(resolved_at=resolved_at, deflected=deflected))


@dataclass(frozen=True)
class Deflection:
    """Requests answered with suggestions in a period, and how many of them the requester then resolved."""

    suggested: int
    deflected: int

    @property
    def rate(self) -> float | None:
        return self.deflected / self.suggested if self.suggested else None


def deflection(engine: Engine, start: datetime, end: datetime) -> Deflection:
    with engine.connect() as connection:
        row = connection.execute(select(
            func.count(), func.coalesce(func.sum(requests.c.deflected.cast(HowToRequestRow.id.type)), 0))
            .where(requests.c.status == "suggested", requests.c.answered_at >= start,
                   requests.c.answered_at < end)).one()
    return Deflection(int(row[0]), int(row[1]))
