"""Answering "How do I?" questions from the knowledge base: the pure part.

The support database ranks (PostgreSQL ``ts_rank_cd``, SQLite FTS5 ``bm25``; see
:mod:`prep_support.how_to_store`); this module decides what to ask it and whether its answer is
good enough to show a user. Every step is plain and inspectable:

1. **Words**: the question is split into words; English function words ("how", "do", "the") are
   dropped; the rest are reduced to a light stem (plural, -ing, -ed, final e) so that "resetting"
   and "reset" meet.
2. **Language**: when fewer than ``min_known_share`` of the question's words are English function
   words or words of the knowledge base, the question is taken as another language: no search.
3. **Typos**: a stem the knowledge base does not know is replaced by the knowledge-base stem at the
   smallest edit distance (Damerau-Levenshtein; 1 for stems of 5 to 7 letters, 2 above; same first
   letter), ties to the more common one.
4. **Synonyms**: each stem also searches for the other words of its group in ``how_to.yaml``.
5. **Search**: the database ranks its documents against all those words (OR) and returns its best
   ``candidates``. Words in more than ``common_share`` of a large knowledge base are left out of the
   database's query (they would make it score most documents and rank little), not out of step 6.
6. **Threshold**: a candidate is suggested only when it contains at least ``min_coverage`` of the
   question's term groups, each weighted by its rarity in the knowledge base (inverse document
   frequency); a group the knowledge base has never seen weighs as the rarest. Off-topic questions
   fail here, because their rare words are nowhere in the knowledge base.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prep_support import paths
from prep_support.config_errors import ConfigError, line_of, location_labels, parse_config

MARKER = "[prep-support:how-to-answers]"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ASCII_WORD = re.compile(r"[a-z0-9]+")
MAX_TERMS = 12  # a question longer than this is searched by its first twelve distinct terms

# English function words, the words every question is phrased with, and words of when rather than
# what ("yesterday", "next"): never the topic of a question.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can cannot could did do does doing don down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just let me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
anyone anybody someone somebody please thanks thank hi hello help need want know way ways get got go going
able also still one ve ll re d s t m im id cant dont doesnt isnt wont whats hows
really already anymore soon ago currently today yesterday tomorrow tonight morning afternoon evening night
last next
""".split())


class HowToConfigError(ConfigError):
    """how_to.yaml cannot be used; the message names the file, the line and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requests(_Strict):
    jira_conn_id: str = "jira_default"
    label: str = Field(default="how-to", pattern=r"^[^\s\"]+$")
    projects: list[str] = []

    @field_validator("projects")
    @classmethod
    def _project_keys(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,19}", p)]
        if bad:
            raise ValueError(f"not a Jira project key: {bad[0]!r}")
        return value

    def open_jql(self) -> str:
        """Open requests, oldest first (so a backlog is answered in the order it was asked)."""
        clauses = [f'labels = "{self.label}"', "statusCategory != Done"]
        if self.projects:
            clauses.insert(0, f"project in ({', '.join(self.projects)})")
        return " AND ".join(clauses) + " ORDER BY created ASC"

    def resolved_jql(self) -> str:
        clauses = [f'labels = "{self.label}"', "statusCategory = Done"]
        if self.projects:
            clauses.insert(0, f"project in ({', '.join(self.projects)})")
        return " AND ".join(clauses) + " ORDER BY key ASC"


class Search(_Strict):
    suggestions: int = Field(default=3, ge=1, le=10)
    candidates: int = Field(default=10, ge=1, le=100)
    min_coverage: float = Field(default=0.5, ge=0, le=1, allow_inf_nan=False)
    min_known_share: float = Field(default=0.5, ge=0, le=1, allow_inf_nan=False)
    # A question word found in more than this share of the documents (and in more than
    # common_min_documents of them) is not sent to the database: it would make it rank most of a
    # large knowledge base and tells little; it still counts, at its low weight, in coverage.
    common_share: float = Field(default=0.01, gt=0, le=1, allow_inf_nan=False)
    common_min_documents: int = Field(default=500, ge=0)


class HowToConfig(_Strict):
    requests: Requests = Requests()
    search: Search = Search()
    synonyms: list[list[str]] = []

    @field_validator("synonyms")
    @classmethod
    def _groups(cls, groups: list[list[str]]) -> list[list[str]]:
        for index, group in enumerate(groups):
            if len(group) < 2:
                raise ValueError(f"group {index} has fewer than two words")
            bad = [w for w in group if not _ASCII_WORD.fullmatch(w)]
            if bad:
                raise ValueError(f"group {index}: {bad[0]!r} is not one lower-case word (a-z, 0-9)")
        return groups


def how_to_config_path() -> Path:
    return paths.CONFIG_DIR / "how_to.yaml"


def load_how_to_config(path: Path | str | None = None) -> HowToConfig:
    path = Path(path or how_to_config_path())
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise HowToConfigError(f"{path}: cannot read: {error.strerror}") from error
    try:
        data: Any = parse_config(path, raw) or {}
    except ConfigError as error:
        raise HowToConfigError(str(error)) from None
    try:
        return HowToConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        label, steps = location_labels(data, first["loc"])
        line = line_of(raw, steps)
        where = f" (line {line})" if line else ""
        raise HowToConfigError(f"{path}{where}: {label}: {first['msg']}") from error


# -- words -----------------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    """Lower-case words (letters and digits, any script); apostrophes join ("don't" -> "dont")."""
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light English stem: enough for "resets/resetting/reset" and "configured/configure" to meet."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # resetting -> reset
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def content_stems(text: str) -> list[str]:
    """The stems of ``text``'s ASCII topic words, in order (the knowledge base is English)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and w.isascii()]


@dataclass(frozen=True)
class Vocabulary:
    """The knowledge base's stems: how many documents have each, and the word to search for it."""

    documents: int
    docs: Mapping[str, int]  # stem -> document frequency
    word_of: Mapping[str, str]  # stem -> the most common surface word with that stem
    _buckets: dict[tuple[str, int], list[str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for term in self.docs:
            self._buckets.setdefault((term[0], len(term)), []).append(term)

    def idf(self, document_frequency: int) -> float:
        return math.log((self.documents + 1) / (document_frequency + 0.5))

    def correct(self, term: str) -> str | None:
        """The known stem closest to ``term`` (see the module's step 3), or None."""
        if term in self.docs:
            return term
        if len(term) < 5 or term.isdigit():
            return None
        limit = 1 if len(term) <= 7 else 2
        best: tuple[int, int, str] | None = None
        for length in range(len(term) - limit, len(term) + limit + 1):
            for candidate in self._buckets.get((term[0], length), ()):
                distance = edit_distance(term, candidate, limit)
                if distance <= limit:
                    key = (distance, -self.docs[candidate], candidate)
                    best = key if best is None or key < best else best
        return best[2] if best else None


def build_vocabulary(documents: Iterable[str]) -> tuple[int, dict[str, int], dict[str, str]]:
    """Count, over document texts, how many documents have each stem and its most common word."""
    count = 0
    docs: Counter[str] = Counter()
    surface: Counter[str] = Counter()
    for text in documents:
        count += 1
        found = Counter(w for w in words(text) if w not in STOPWORDS and w.isascii() and len(w) <= 60)
        surface.update(found)
        docs.update({stem(w) for w in found})
    word_of: dict[str, str] = {}
    for word, _ in surface.most_common():
        word_of.setdefault(stem(word), word)
    return count, dict(docs), word_of


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts 1); ``limit + 1`` once above limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


# -- the query --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TermGroup:
    """One word of the question: the stems that count as it, and the words to search for it."""

    asked: str
    stems: frozenset[str]
    search_words: tuple[str, ...]
    weight: float
    searched: bool = True  # False: too common to send to the database (see Search.common_share)


@dataclass(frozen=True)
class Query:
    """What to ask the database, or why not to ask it (``skipped``: 'other_language' or 'no_terms')."""

    groups: tuple[TermGroup, ...]
    skipped: str | None = None

    @property
    def search_words(self) -> list[str]:
        seen: dict[str, None] = {}
        for group in self.groups:
            if group.searched:
                seen.update(dict.fromkeys(group.search_words))
        return list(seen)

    def coverage(self, document_stems: set[str]) -> float:
        total = sum(g.weight for g in self.groups)
        found = sum(g.weight for g in self.groups if g.stems & document_stems)
        return found / total if total else 0.0


def synonym_index(groups: Sequence[Sequence[str]]) -> dict[str, set[str]]:
    """stem -> the words of every synonym group it is in (itself included)."""
    index: dict[str, set[str]] = {}
    for group in groups:
        for word in group:
            index.setdefault(stem(word), set()).update(group)
    return index


def known_share(question: str, vocabulary: Vocabulary) -> float:
    found = words(question)
    if not found:
        return 0.0
    known = sum(1 for w in found if w in STOPWORDS or (_ASCII_WORD.fullmatch(w) and stem(w) in vocabulary.docs))
    return known / len(found)


def build_query(question: str, vocabulary: Vocabulary, synonyms: Mapping[str, set[str]], search: Search) -> Query:
    if len(words(question)) >= 3 and known_share(question, vocabulary) < search.min_known_share:
        return Query((), skipped="other_language")
    common = max(search.common_share * vocabulary.documents, search.common_min_documents)
    groups, frequencies = [], []
    for asked in dict.fromkeys(content_stems(question)):
        term = vocabulary.correct(asked) or asked
        related = synonyms.get(term, set()) | synonyms.get(asked, set())
        stems = {term, *(stem(w) for w in related)}
        words_ = {vocabulary.word_of.get(term, term), *related}
        frequency = max((vocabulary.docs.get(s, 0) for s in stems), default=0)
        groups.append(TermGroup(asked, frozenset(stems), tuple(sorted(words_)), vocabulary.idf(frequency),
                                searched=frequency <= common))
        frequencies.append(frequency)
        if len(groups) == MAX_TERMS:
            break
    if groups and not any(g.searched for g in groups):  # only common words: search the rarest of them
        rarest = frequencies.index(min(frequencies))
        groups[rarest] = replace(groups[rarest], searched=True)
    return Query(tuple(groups), skipped=None if groups else "no_terms")


# -- the decision -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    """A document the database found, in its rank order."""

    doc_id: int
    source: str
    title: str
    url: str
    text: str  # title and body: what coverage is measured on
    rank: float


@dataclass(frozen=True)
class Suggestion:
    doc_id: int
    source: str
    title: str
    url: str
    coverage: float


@dataclass(frozen=True)
class Answer:
    """What to do with a question: ``status`` is 'suggested', 'no_match', 'other_language' or 'no_terms'."""

    status: str
    suggestions: tuple[Suggestion, ...] = ()
    best_coverage: float = 0.0


def decide(query: Query, hits: Sequence[Hit], search: Search) -> Answer:
    """Keep the database's order; drop what covers too little of the question; the first ``suggestions``."""
    if query.skipped:
        return Answer(query.skipped)
    scored = [(hit, query.coverage(set(content_stems(hit.text)))) for hit in hits]
    best = max((c for _, c in scored), default=0.0)
    chosen = tuple(Suggestion(h.doc_id, h.source, h.title, h.url, round(c, 3))
                   for h, c in scored if c >= search.min_coverage)[: search.suggestions]
    return Answer("suggested" if chosen else "no_match", chosen, round(best, 3))


# -- deflection -------------------------------------------------------------------------------------

def resolved_by_requester(issue: Mapping[str, Any], suggested_at: datetime) -> datetime | None:
    """When the requester moved the issue to Done after our suggestion: that change's time, else None.

    ``issue`` is Jira's issue with ``expand=changelog``; the requester is ``fields.reporter``. Only the
    last status change counts: a request someone else closed, or closed before we answered, is no
    deflection.
    """
    fields = issue.get("fields") or {}
    reporter = _person(fields.get("reporter"))
    if reporter is None or ((fields.get("status") or {}).get("statusCategory") or {}).get("key") != "done":
        return None
    changes = [h for h in (issue.get("changelog") or {}).get("histories") or []
               if any(item.get("field") == "status" for item in h.get("items", []))]
    if not changes:
        return None
    last = changes[-1]
    when = jira_time(last.get("created"))
    if _person(last.get("author")) != reporter or when is None or when < suggested_at:
        return None
    return when


def jira_time(value: Any) -> datetime | None:
    """Jira's ``2026-12-04T15:02:11.123+0000`` (or ISO 8601) as an aware datetime; None if absent or garbled."""
    if not isinstance(value, str):
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _person(user: Any) -> str | None:
    if not isinstance(user, dict):
        return None
    return user.get("accountId") or user.get("key") or user.get("name")
