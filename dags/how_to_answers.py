"""
### How-to answers

Hourly, and on demand (**Trigger** with a request key to answer one request now): answers "How do
I?" requests from the knowledge base before a person has to.

1. `refresh_knowledge_base`: the knowledge base in the support database is made equal to the
   resolved Jira tickets labelled `how-to` (the question and the answer that resolved it) and the
   runbooks `support_docs` published to Confluence (linked to their page).
2. `answer_requests`: first, requests answered earlier that are now Done are checked: resolved by
   their requester after our suggestion is a **deflection** (the weekly trend report gives the
   rate). Then each open request labelled `how-to` not seen before is searched with the database's
   own full-text ranking (PostgreSQL `ts_rank_cd`, SQLite FTS5 `bm25`), with typo correction and
   the synonym groups of `include/config/how_to.yaml`; when documents hold enough of the
   question, **one comment** lists the top three with links ("These may answer your question").
   A question in another language, or with no good match, gets no comment and waits for a person.

Each request is answered once: the comment is keyed in the notification ledger and marked on the
ticket, and the request is recorded, so retries and re-runs add nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag

from notifiers.callbacks import support_default_args
from operators.how_to_answers import AnswerHowToRequestsOperator, RefreshKnowledgeBaseOperator
from prep_support.how_to import load_how_to_config
from prep_support.paths import catalog_path

CATALOG_PATH = str(catalog_path())
load_how_to_config()  # a broken how_to.yaml is this DAG's import error, naming the file, line and field


@dag(
    schedule="0 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=50),
    default_args=support_default_args(retry_delay=timedelta(minutes=2)),
    tags=["support", "how-to", "prep-support"],
    doc_md=__doc__,
    params={
        "request_key": Param("", type="string", maxLength=100, pattern=r"^([A-Z][A-Z0-9_]*-[0-9]+)?$",
                             title="Request", description="Answer only this Jira request (e.g. OPS-12) now; "
                                                          "empty: every new how-to request."),
    },
)
def how_to_answers():
    refresh = RefreshKnowledgeBaseOperator(task_id="refresh_knowledge_base", catalog_path=CATALOG_PATH)
    answer = AnswerHowToRequestsOperator(task_id="answer_requests", request_key="{{ params.request_key }}")
    refresh >> answer


how_to_answers()
