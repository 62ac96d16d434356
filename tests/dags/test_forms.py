"""Trigger forms an analyst can read: every field titled, described and in a section; no choice shown as 'null'.

The browser test (tests/integration/test_distributed.py) looks at the rendered forms; this checks every
DAG's params as the UI receives them, so a new field without a description fails here first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def forms() -> dict[str, dict]:
    """DAG id -> {param name: its JSON schema and description}, for every DAG with params."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return {dag_id: {name: {**dag.params.get_param(name).schema, "description": dag.params.get_param(name).description}
                     for name in dag.params}
            for dag_id, dag in bag.dags.items() if dag.params}


def test_the_form_dags_have_forms(forms) -> None:
    assert {"user_lifecycle", "outage_comms", "uat_cycle", "access_review"} <= set(forms)


def test_every_field_has_a_title_a_description_and_a_section(forms) -> None:
    """A section groups fields: a one-field form needs none."""
    missing = [f"{dag_id}.{name}: {key}" for dag_id, params in forms.items() for name, schema in params.items()
               for key in ("title", "description", *(["section"] if len(params) > 1 else []))
               if not str(schema.get(key) or "").strip()]
    assert missing == []


def test_no_choice_is_labelled_null(forms) -> None:
    """The UI labels a choice by values_display, keyed by the value as text ('null' for None), else the value."""
    unlabelled = [f"{dag_id}.{name}" for dag_id, params in forms.items() for name, schema in params.items()
                  if None in (schema.get("enum") or []) and "null" not in (schema.get("values_display") or {})]
    assert unlabelled == []


def test_a_typed_requester_is_gone(forms) -> None:
    """Who asked is who triggered the run; the form may only say on whose behalf."""
    assert "requested_by" not in forms["user_lifecycle"] and "on_behalf_of" in forms["user_lifecycle"]
