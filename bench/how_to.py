"""Benchmark the how-to search over 100,000 knowledge-base documents, against the same full-text query run bare.

A throwaway PostgreSQL database (127.0.0.1:5432, user postgres; dropped at the end) and a SQLite file
are migrated with ``prep_support.migrate.upgrade`` and filled through ``prep_support.how_to_store``
(the path how_to_answers uses) with the 62 documents of ``tests/data/how_to_kb.yaml`` and generated
ones up to ``--docs``: each a how-to title and a 60-word answer drawn from a support vocabulary of
about 8,000 words, with the skewed (Zipf-like) word frequencies of real text.

For each of the test's 57 rephrased questions, **search** is what ``answer_requests`` does per request
once the vocabulary is loaded: build the query (stop words, typo correction against the vocabulary,
synonyms), run the database's ranked statement (include/sql/how_to/, through SQLAlchemy) and decide
(coverage of each candidate, threshold). **Bare** is that same statement with the same query string
on the driver's cursor (no SQLAlchemy, no Python around it). Median per question, interleaved, over
``--repeat`` rounds. Targets: search <= 50 ms, search / bare <= 1.5.

Run with ``python bench/how_to.py`` (a few minutes, mostly loading), ``--docs 10000`` for a quick look.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import yaml  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from prep_support import how_to  # noqa: E402
from prep_support import how_to_store as store  # noqa: E402
from prep_support.migrate import upgrade  # noqa: E402

ADMIN_URL = os.environ.get("PREP_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TARGET_MS, TARGET_RATIO = 50.0, 1.5
KB = yaml.safe_load((ROOT / "tests" / "data" / "how_to_kb.yaml").read_text())
SYLLABLES = ["ka", "ro", "mi", "ten", "sal", "vor", "din", "pe", "lu", "gra", "mo", "zet", "fa", "qui", "bel", "nor"]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """The KB's own words (so questions match real documents too) and made-up support words, shuffled:
    the KB's words land anywhere in the frequency ranking, as a real knowledge base's topics do."""
    words = list(dict.fromkeys(w for d in KB["documents"] for w in how_to.words(f"{d['title']} {d['body']}")
                               if w not in how_to.STOPWORDS and w.isascii() and w.isalpha()))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    rng.shuffle(words)
    return words


def documents(count: int, seed: int = 17) -> list[store.Document]:
    rng = random.Random(seed)
    words = vocabulary(rng, 8000)
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf: a few words everywhere, most rare
    docs = [store.Document("ticket", d["id"], d["title"], d["body"], f"https://kb.example/{d['id']}")
            for d in KB["documents"]]
    for number in range(count - len(docs)):
        title = "How do I " + " ".join(rng.choices(words, weights, k=5)) + "?"
        body = " ".join(rng.choices(words, weights, k=60)) + "."
        docs.append(store.Document("ticket", f"GEN-{number}", title, body, f"https://kb.example/GEN-{number}"))
    return docs


def bare_sql(dialect: str) -> str:
    """The search statement with the driver's own parameter style (psycopg2 %(name)s, sqlite3 :name)."""
    sql = store.search_sql(dialect)
    return sql.replace(":query", "%(query)s").replace(":limit", "%(limit)s") if dialect == "postgresql" else sql


def measure(engine, label: str, repeat: int, common_share: float | None = None) -> dict[str, float]:
    config = how_to.load_how_to_config()
    if common_share is not None:  # try another cut-off than how_to.yaml's
        config = config.model_copy(update={"search": config.search.model_copy(update={"common_share": common_share})})
    synonyms = how_to.synonym_index(config.synonyms)
    started = time.perf_counter()
    vocab = store.load_vocabulary(engine)
    load_ms = (time.perf_counter() - started) * 1000
    dialect = engine.dialect.name
    questions = [q["q"] for q in KB["questions"]]
    queries = [how_to.build_query(q, vocab, synonyms, config.search) for q in questions]
    statement = bare_sql(dialect)
    ours: dict[int, list[float]] = {i: [] for i in range(len(questions))}
    bare: dict[int, list[float]] = {i: [] for i in range(len(questions))}
    raw = engine.raw_connection()
    try:
        for _ in range(repeat):
            for index, question in enumerate(questions):
                params = {"query": store.full_text_query(dialect, queries[index].search_words),
                          "limit": config.search.candidates}
                cursor = raw.cursor()
                started = time.perf_counter()
                cursor.execute(statement, params)
                cursor.fetchall()
                bare[index].append(time.perf_counter() - started)
                cursor.close()
                started = time.perf_counter()
                query = how_to.build_query(question, vocab, synonyms, config.search)
                how_to.decide(query, store.search(engine, query.search_words, config.search.candidates), config.search)
                ours[index].append(time.perf_counter() - started)
    finally:
        raw.close()
    per_ours = [statistics.median(v) * 1000 for v in ours.values()]
    per_bare = [statistics.median(v) * 1000 for v in bare.values()]
    ratios = [o / b for o, b in zip(per_ours, per_bare, strict=True)]
    p95 = sorted(per_ours)[int(0.95 * len(per_ours))]
    result = {"search_median_ms": statistics.median(per_ours), "search_p95_ms": p95,
              "search_max_ms": max(per_ours), "bare_median_ms": statistics.median(per_bare),
              "ratio_median": statistics.median(ratios), "ratio_max": max(ratios), "vocabulary_load_ms": load_ms,
              "terms": len(vocab.docs)}
    met = result["search_max_ms"] <= TARGET_MS and result["ratio_median"] <= TARGET_RATIO
    print(f"[{label}] search median {result['search_median_ms']:.1f} ms, p95 {result['search_p95_ms']:.1f} ms, "
          f"max {result['search_max_ms']:.1f} ms (target <= {TARGET_MS:.0f} ms); bare query median "
          f"{result['bare_median_ms']:.1f} ms; search / bare: median {result['ratio_median']:.2f}x, worst question "
          f"{result['ratio_max']:.2f}x (target <= {TARGET_RATIO}x); vocabulary of {result['terms']} stems loaded once "
          f"per task in {load_ms:.0f} ms -> {'met' if met else 'NOT met'}", flush=True)
    return result


def fill(engine, docs: list[store.Document], label: str) -> None:
    upgrade(engine)
    started = time.perf_counter()
    store.replace_source(engine, "ticket", docs, datetime.now(UTC))
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    terms = store.refresh_terms(engine)
    print(f"[{label}] {len(docs):,} documents stored and indexed in {loaded:.1f} s; vocabulary of {terms:,} stems "
          f"rebuilt in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    parser.add_argument("--common-share", type=float, help="override how_to.yaml's search.common_share")
    args = parser.parse_args()
    docs = documents(args.docs)
    if args.only in (None, "postgresql"):
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"prep_bench_how_to_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(admin.url.set(database=name))
        try:
            fill(engine, docs, "postgresql")
            with engine.begin() as connection:
                connection.execute(text("ANALYZE how_to_documents"))
            measure(engine, "postgresql", args.repeat, args.common_share)
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="prep-bench-how-to-") as folder:
            engine = create_engine(f"sqlite:///{Path(folder) / 'kb.db'}")
            fill(engine, docs, "sqlite")
            measure(engine, "sqlite", args.repeat, args.common_share)
            engine.dispose()


if __name__ == "__main__":
    main()
