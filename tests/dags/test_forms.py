"""Trigger forms an analyst can read: every field titled and described, the optional ones folded into sections,
no choice shown as 'null'.

The browser test (tests/integration/test_distributed.py) looks at the rendered forms; this checks every
DAG's params as the UI receives them, so a new field without a description fails here first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.definitions._internal.types import NOTSET

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dags() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return {dag_id: dag for dag_id, dag in bag.dags.items() if dag.params}


@pytest.fixture(scope="module")
def forms(dags) -> dict[str, dict]:
    """DAG id -> {param name: its JSON schema and description}, for every DAG with params."""
    return {dag_id: {name: {**dag.params.get_param(name).schema, "description": dag.params.get_param(name).description}
                     for name in dag.params} for dag_id, dag in dags.items()}


@pytest.fixture(scope="module")
def values(dags) -> dict[str, dict]:
    """DAG id -> {param name: its default value, or NOTSET when the analyst must fill it}."""
    return {dag_id: {name: dag.params.get_param(name).value for name in dag.params} for dag_id, dag in dags.items()}


def test_the_form_dags_have_forms(forms) -> None:
    assert {"user_lifecycle", "outage_comms", "uat_cycle", "access_review"} <= set(forms)


def test_every_field_has_a_title_and_a_description(forms) -> None:
    missing = [f"{dag_id}.{name}: {key}" for dag_id, params in forms.items() for name, schema in params.items()
               for key in ("title", "description") if not str(schema.get(key) or "").strip()]
    assert missing == []


def test_sections_fold_away_only_what_may_stay_as_it_is(forms, values) -> None:
    """The UI opens the unnamed section and folds the named ones: a required field is never folded away."""
    folded = {dag_id: [name for name, schema in params.items() if schema.get("section")]
              for dag_id, params in forms.items()}
    assert all(folded[dag_id] for dag_id in ("user_lifecycle", "outage_comms", "uat_cycle")), folded
    required = [f"{dag_id}.{name}" for dag_id, names in folded.items() for name in names
                if values[dag_id][name] is NOTSET]
    assert required == []


def test_no_choice_is_labelled_null(forms) -> None:
    """The UI labels a choice by values_display, keyed by the value as text ('null' for None), else the value."""
    unlabelled = [f"{dag_id}.{name}" for dag_id, params in forms.items() for name, schema in params.items()
                  if None in (schema.get("enum") or []) and "null" not in (schema.get("values_display") or {})]
    assert unlabelled == []


def test_a_typed_requester_is_gone(forms) -> None:
    """Who asked is who triggered the run; the form may only say on whose behalf."""
    assert "requested_by" not in forms["user_lifecycle"] and "on_behalf_of" in forms["user_lifecycle"]
