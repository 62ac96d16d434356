"""How-to search: the knowledge base of tests/data/how_to_kb.yaml, on SQLite and PostgreSQL.

Precision@3 here: the share of on-topic questions whose answering document is among the (at most
three) suggestions. Off-topic and other-language questions must get no suggestion at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine

from prep_support import how_to
from prep_support import how_to_store as store
from prep_support.migrate import upgrade

KB = yaml.safe_load((Path(__file__).parents[1] / "data" / "how_to_kb.yaml").read_text())
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
CONFIG = how_to.load_how_to_config()


def fill(engine) -> None:
    for source in ("ticket", "runbook"):
        docs = [store.Document(source, d["id"], d["title"], d["body"], f"https://kb.example/{d['id']}")
                for d in KB["documents"] if d["source"] == source]
        store.replace_source(engine, source, docs, NOW)
    store.refresh_terms(engine)


def answer(engine, vocabulary, question: str) -> how_to.Answer:
    query = how_to.build_query(question, vocabulary, how_to.synonym_index(CONFIG.synonyms), CONFIG.search)
    hits = store.search(engine, query.search_words, CONFIG.search.candidates)
    return how_to.decide(query, hits, CONFIG.search)


def evaluate(engine, label: str) -> dict:
    fill(engine)
    vocabulary = store.load_vocabulary(engine)
    ref_of = {}
    with engine.connect() as connection:
        for row in connection.execute(store.documents.select()):
            ref_of[row.id] = row.ref
    found, misses = 0, []
    for item in KB["questions"]:
        result = answer(engine, vocabulary, item["q"])
        refs = [ref_of[s.doc_id] for s in result.suggestions]
        if item["expect"] in refs:
            found += 1
        else:
            misses.append((item["q"], item["expect"], refs, result.best_coverage))
    quiet_off = [q for q in KB["off_topic"] if answer(engine, vocabulary, q).status != "suggested"]
    languages = [answer(engine, vocabulary, q).status for q in KB["other_language"]]
    figures = {"precision_at_3": found / len(KB["questions"]), "questions": len(KB["questions"]),
               "documents": len(KB["documents"]), "off_topic_quiet": len(quiet_off),
               "off_topic": len(KB["off_topic"]), "other_language": languages, "misses": misses}
    print(f"\n[{label}] precision@3 = {found}/{len(KB['questions'])} = {figures['precision_at_3']:.3f} over "
          f"{len(KB['documents'])} documents; off-topic without a comment: {len(quiet_off)}/{len(KB['off_topic'])}; "
          f"other languages: {languages}")
    for miss in misses:
        print("  missed:", miss)
    return figures


def check_figures(figures: dict) -> None:
    assert figures["documents"] >= 60 and figures["questions"] >= 50
    assert figures["precision_at_3"] >= 0.8, figures["misses"]
    assert figures["off_topic_quiet"] >= 8
    assert figures["other_language"] == ["other_language"] * len(KB["other_language"])


def test_the_knowledge_base_answers_rephrased_questions_on_sqlite(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'kb.db'}")
    upgrade(engine)
    check_figures(evaluate(engine, "sqlite"))
    engine.dispose()


def test_the_knowledge_base_answers_rephrased_questions_on_postgresql(postgres_url) -> None:
    engine = create_engine(postgres_url)
    upgrade(engine)
    try:
        check_figures(evaluate(engine, "postgresql"))
    finally:
        with engine.begin() as connection:
            connection.execute(store.documents.delete())
            connection.execute(store.terms.delete())
        engine.dispose()


def test_replacing_a_source_keeps_the_index_in_step(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'kb.db'}")
    upgrade(engine)
    doc = store.Document("ticket", "OPS-1", "How do I rotate the vault token?", "Run vault token renew.", "u")
    assert store.replace_source(engine, "ticket", [doc], NOW) == {"added": 1, "changed": 0, "removed": 0}
    assert [h.title for h in store.search(engine, ["vault"], 3)] == [doc.title]
    changed = store.Document("ticket", "OPS-1", "How do I rotate the secrets token?", "Use the secrets CLI.", "u")
    assert store.replace_source(engine, "ticket", [changed], NOW) == {"added": 0, "changed": 1, "removed": 0}
    assert store.search(engine, ["vault"], 3) == []
    assert store.replace_source(engine, "ticket", [], NOW)["removed"] == 1
    assert store.search(engine, ["secrets"], 3) == []
    engine.dispose()


@pytest.mark.parametrize(("word", "expected"), [
    pytest.param("resetting", "reset", id="double-consonant"),
    pytest.param("passwords", "password", id="plural"),
    pytest.param("configured", "configur", id="past"),
    pytest.param("configure", "configur", id="final-e"),
    pytest.param("entries", "entry", id="ies"),
    pytest.param("status", "status", id="not-a-plural"),
])
def test_stems_meet_across_word_forms(word, expected) -> None:
    assert how_to.stem(word) == expected


def test_typos_are_corrected_against_the_knowledge_base_only() -> None:
    vocabulary = how_to.Vocabulary(3, {"password": 2, "portal": 1, "settlement": 1, "rais": 1},
                                   {"password": "password", "portal": "portal", "settlement": "settlement",
                                    "rais": "raise"})
    assert vocabulary.correct("pasword") == "password"
    assert vocabulary.correct("settelment") == "settlement"  # two letters swapped and one more
    assert vocabulary.correct("rain") is None  # short words have too many neighbours: left alone
    assert vocabulary.correct("football") is None


def test_a_request_resolved_by_its_requester_after_the_suggestion_is_a_deflection() -> None:
    reporter = {"accountId": "alice"}
    issue = {"fields": {"reporter": reporter, "status": {"statusCategory": {"key": "done"}}},
             "changelog": {"histories": [
                 {"author": reporter, "created": "2026-12-04T12:30:00.000+0000",
                  "items": [{"field": "status", "to": "10002"}]}]}}
    assert how_to.resolved_by_requester(issue, NOW) == datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
    closed_by_agent = {**issue, "changelog": {"histories": [{**issue["changelog"]["histories"][0],
                                                             "author": {"accountId": "bob"}}]}}
    assert how_to.resolved_by_requester(closed_by_agent, NOW) is None
    assert how_to.resolved_by_requester(issue, datetime(2026, 12, 4, 13, tzinfo=UTC)) is None


def test_a_bad_config_names_its_file_line_and_field(tmp_path) -> None:
    path = tmp_path / "how_to.yaml"
    path.write_text("search:\n  min_coverage: 0.5\n  suggestions: 0\nsynonyms:\n  - [password]\n")
    with pytest.raises(how_to.HowToConfigError, match=r"how_to.yaml \(line 3\): search > field 'suggestions'"):
        how_to.load_how_to_config(path)
    path.write_text("synonyms:\n  - [password]\n")
    with pytest.raises(how_to.HowToConfigError, match=r"\(line 2\): field 'synonyms'.*group 0 has fewer than two"):
        how_to.load_how_to_config(path)
