"""The HR roster: who works here, for whom, in which role, and who has left.

Read from a CSV export (``path``) or a SQL table through a database Connection (``conn_id``
of type sqlite/postgres, ``table``, default ``hr_roster``). A Connection of type ``fs``
(or any non-SQL type) with extra ``path`` names a CSV file instead; a relative path is taken
from the project's root. Columns: employee_id, email, name, manager_id, department, status
(active | terminated | leave), termination_date (YYYY-MM-DD or empty), role, username.

Every row is validated; a bad one raises :class:`RosterError` naming the file (or table), the
line (or row) and the column.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from prep_support import paths

COLUMNS = ("employee_id", "email", "name", "manager_id", "department", "status", "termination_date", "role",
           "username")
STATUSES = ("active", "terminated", "leave")
EMPLOYEE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SQL_TYPES = ("sqlite", "postgres", "postgresql", "mysql")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class RosterError(ValueError):
    """The roster cannot be used; the message names where and which column."""


def person_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One validated person; ``where`` (e.g. ``hr.csv line 4``) starts every error message."""

    def text(column: str, required: bool = True) -> str:
        value = raw.get(column)
        value = "" if value is None else str(value).strip()
        if required and not value:
            raise RosterError(f"{where}, column {column}: is empty")
        return value

    employee_id, username, email = text("employee_id"), text("username"), text("email")
    if not EMPLOYEE_ID.match(employee_id):
        raise RosterError(f"{where}, column employee_id: {employee_id!r} is not an employee id")
    if not USERNAME.match(username):
        raise RosterError(f"{where}, column username: {username!r} is not a username (letters, digits, . _ -)")
    if not EMAIL.match(email):
        raise RosterError(f"{where}, column email: {email!r} is not an email address")
    status = text("status").lower()
    if status not in STATUSES:
        raise RosterError(f"{where}, column status: {status!r} is not one of {', '.join(STATUSES)}")
    ended_text = raw.get("termination_date")
    ended: date | None = None
    if isinstance(ended_text, date):
        ended = ended_text
    elif ended_text not in (None, ""):
        try:
            ended = date.fromisoformat(str(ended_text).strip())
        except ValueError:
            raise RosterError(f"{where}, column termination_date: {ended_text!r} is not a date (YYYY-MM-DD)") from None
    if status == "terminated" and ended is None:
        raise RosterError(f"{where}, column termination_date: a terminated employee needs one")
    manager_id = text("manager_id", required=False) or None
    if manager_id is not None and not EMPLOYEE_ID.match(manager_id):
        raise RosterError(f"{where}, column manager_id: {manager_id!r} is not an employee id")
    return {"employee_id": employee_id, "email": email, "name": text("name"), "manager_id": manager_id,
            "department": text("department", required=False), "status": status, "termination_date": ended,
            "role": text("role", required=False), "username": username}


class HrRoster(BaseHook):
    """People from the HR system: ``HrRoster(path=...)`` or ``HrRoster(conn_id=..., table=...)``."""

    conn_name_attr = "conn_id"
    default_conn_name = "hr_roster"
    conn_type = "fs"
    hook_name = "HR roster"

    def __init__(self, *, path: str | Path | None = None, conn_id: str | None = None, table: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (path is None) == (conn_id is None):
            raise RosterError("HR roster: give either path (a CSV export) or conn_id (a Connection), not both")
        self.path, self.conn_id, self.table = path, conn_id, table

    def people(self) -> Iterator[dict[str, Any]]:
        """Every person, validated; RosterError at the first bad row, or a repeated employee id or username."""
        seen: dict[str, str] = {}
        for where, raw in self._rows():
            person = person_row(raw, where)
            for column in ("employee_id", "username"):
                key = f"{column}:{person[column].lower()}"
                if key in seen:
                    raise RosterError(f"{where}, column {column}: {person[column]!r} repeats {seen[key]}")
                seen[key] = where
            yield person

    def _rows(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if self.path is not None:
            yield from self._csv_rows(self._resolve(self.path))
            return
        conn = self.get_connection(self.conn_id)
        if conn.conn_type in SQL_TYPES:
            yield from self._sql_rows(self.table or conn.extra_dejson.get("table") or "hr_roster")
            return
        path = conn.extra_dejson.get("path") or conn.host
        if not path:
            raise RosterError(f"Connection {self.conn_id!r} needs extra \"path\" (a CSV export) or a SQL type")
        yield from self._csv_rows(self._resolve(path))

    @staticmethod
    def _resolve(path: str | Path) -> Path:
        path = Path(path)
        return path if path.is_absolute() else paths.PROJECT_ROOT / path

    @staticmethod
    def _csv_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
        try:
            handle = path.open(newline="", encoding="utf-8-sig")
        except OSError as error:
            raise RosterError(f"{path}: cannot read the HR roster: {error.strerror}") from error
        with handle:
            reader = csv.DictReader(handle)
            missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
            if missing:
                raise RosterError(f"{path} line 1: missing column(s) {', '.join(missing)}")
            for raw in reader:
                yield f"{path} line {reader.line_num}", raw

    def _sql_rows(self, table: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        from sqlalchemy import text

        from hooks.database import DatabaseHook

        if not TABLE_NAME.match(table):
            raise RosterError(f"Connection {self.conn_id!r}: table {table!r} is not a table name")
        quoted = ".".join(f'"{part}"' for part in table.split("."))
        engine = DatabaseHook(conn_id=self.conn_id).engine
        with engine.connect() as connection:
            result = connection.execute(text(f"SELECT {', '.join(COLUMNS)} FROM {quoted} ORDER BY employee_id"))
            for number, raw in enumerate(result.mappings(), start=1):
                yield f"table {table} row {number}", raw
