"""HrRoster: the seeded CSV, a SQL table, and bad rows named by file, line and column."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hooks.hr_roster import COLUMNS, HrRoster, RosterError
from sandbox import directory_seed as seed

ROOT = Path(__file__).resolve().parents[2]
ROSTER = ROOT / "include" / "data" / "hr_roster.csv"
HEADER = ",".join(COLUMNS)
GOOD = "E1,ann@example.com,Ann,,Support,active,,analyst,ann"


def test_the_shipped_roster_is_the_seed(tmp_path):
    written = tmp_path / "roster.csv"
    seed.write_hr_csv(written)

    assert ROSTER.read_text() == written.read_text(), "run `python -m sandbox.directory_seed` to refresh it"


def test_people_from_the_csv_connection(sandbox):  # its connection_env() defines hr_roster
    people = {p["employee_id"]: p for p in HrRoster(conn_id="hr_roster").people()}

    assert len(people) == len(seed.PEOPLE)
    assert people["E1015"]["status"] == "terminated"
    assert people["E1015"]["termination_date"] == date(2026, 10, 15)
    assert people["E1002"] == {"employee_id": "E1002", "email": "alice@example.com", "name": "Alice Martin",
                               "manager_id": "E1001", "department": "Support", "status": "active",
                               "termination_date": None, "role": "analyst", "username": "alice"}
    assert people["E1001"]["manager_id"] is None


@pytest.mark.parametrize("row, column, message", [
    pytest.param("E2,bo@example.com,Bo,,Support,retired,,analyst,bo", "status", "'retired' is not one of", id="status"),
    pytest.param("E2,bo@example.com,Bo,,Support,terminated,,analyst,bo", "termination_date", "needs one",
                 id="terminated-without-date"),
    pytest.param("E2,bo@example.com,Bo,,Support,active,31/12/2026,analyst,bo", "termination_date", "not a date",
                 id="date-format"),
    pytest.param("E2,bo-at-example.com,Bo,,Support,active,,analyst,bo", "email", "not an email", id="email"),
    pytest.param("E2,bo@example.com,Bo,,Support,active,,analyst,", "username", "is empty", id="no-username"),
    pytest.param("E1,bo@example.com,Bo,,Support,active,,analyst,bo", "employee_id", "repeats", id="duplicate-id"),
])
def test_a_bad_row_names_file_line_and_column(tmp_path, row, column, message):
    path = tmp_path / "hr.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{row}\n")

    with pytest.raises(RosterError) as raised:
        list(HrRoster(path=path).people())
    assert f"{path} line 3, column {column}:" in str(raised.value)
    assert message in str(raised.value)


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "hr.csv"
    path.write_text("employee_id,email,name\nE1,ann@example.com,Ann\n")

    with pytest.raises(RosterError, match="line 1: missing column.*manager_id"):
        list(HrRoster(path=path).people())


def test_people_from_a_sql_table(tmp_path, monkeypatch):
    database = tmp_path / "hr.db"
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE people ({', '.join(f'{c} TEXT' for c in COLUMNS)})"))
        connection.execute(text(f"INSERT INTO people VALUES ({', '.join(':' + c for c in COLUMNS)})"),
                           seed.hr_rows())
    monkeypatch.setenv("AIRFLOW_CONN_HR_SQL", json.dumps({"conn_type": "sqlite", "host": str(database)}))

    people = list(HrRoster(conn_id="hr_sql", table="people").people())
    assert [p["employee_id"] for p in people] == sorted(p.employee_id for p in seed.PEOPLE)

    with engine.begin() as connection:
        connection.execute(text("UPDATE people SET status = 'gone' WHERE employee_id = 'E1003'"))
    with pytest.raises(RosterError, match="table people row 3, column status: 'gone'"):
        list(HrRoster(conn_id="hr_sql", table="people").people())
    with pytest.raises(RosterError, match="not a table name"):
        list(HrRoster(conn_id="hr_sql", table="people; DROP TABLE people").people())


def test_path_or_connection_not_both():
    with pytest.raises(RosterError, match="either path"):
        HrRoster(path="x.csv", conn_id="hr_roster")
