"""The population of a campaign: every identity source, stored in the support database with a manifest.

Each source (``okta.accounts``, ``okta.memberships``, ``ad.accounts``, ``ad.memberships``,
``hr.people``) is normalised to fixed columns, put in its canonical order (its key columns,
ascending) and serialised as CSV with a header; the manifest keeps, per source, the row count,
the SHA-256 of those bytes and when the source was read. Anyone can recompute a hash from the
stored rows (:func:`canonical_csv` of :func:`load_snapshot`'s frames): that is the auditor's
"complete and accurate population".

Writing replaces the campaign's earlier snapshot in one transaction (a re-run never duplicates).
On PostgreSQL the rows go in with ``COPY`` (the same CSV bytes that were hashed, each line
prefixed with the campaign id), on SQLite with ``executemany``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, insert, select, text

from prep_support.approvals import SYSTEM
from prep_support.results import upsert
from prep_support.schema import (
    AccessAccountRow,
    AccessCampaignRow,
    AccessMembershipRow,
    AccessPersonRow,
    AccessSnapshotSourceRow,
)

if TYPE_CHECKING:
    import pandas as pd

ACCOUNT_COLUMNS = ("system", "account_id", "username", "email", "display_name", "enabled", "last_login",
                   "employee_id", "manager")
MEMBERSHIP_COLUMNS = ("system", "account_id", "group_name")
PERSON_COLUMNS = ("employee_id", "email", "name", "manager_id", "department", "status", "termination_date",
                  "role", "username")
PERSON_STATUSES = ("active", "terminated", "leave")

# kind -> (table, columns, key columns = canonical order)
KINDS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    "accounts": (AccessAccountRow.__table__, ACCOUNT_COLUMNS, ("system", "account_id")),
    "memberships": (AccessMembershipRow.__table__, MEMBERSHIP_COLUMNS, MEMBERSHIP_COLUMNS),
    "people": (AccessPersonRow.__table__, PERSON_COLUMNS, ("employee_id",)),
}
COPY_CHUNK = 1 << 20  # bytes psycopg2 reads from the CSV at a time during COPY


class SnapshotError(ValueError):
    """A source answered rows the snapshot cannot keep; the message names the source and the field."""


@dataclass(frozen=True)
class Source:
    """One source as read: ``name`` like ``okta.memberships``, its frame (normalised), when it was read."""

    name: str
    kind: str  # accounts | memberships | people
    frame: pd.DataFrame
    read_at: datetime


def campaign_id_for(moment: datetime) -> str:
    """``2026-Q4`` for any moment in October to December 2026 (the run's logical date)."""
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


# --- normalising what the hooks answer ------------------------------------------------------------


def accounts_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, source: str) -> pd.DataFrame:
    import pandas as pd

    frame = _frame(rows, ACCOUNT_COLUMNS, source, required=("system", "account_id", "enabled"))
    for column in ("system", "account_id", "username", "email", "display_name", "employee_id", "manager"):
        frame[column] = _text(frame[column])
    frame["username"] = frame["username"].fillna(frame["account_id"])
    frame["enabled"] = frame["enabled"].astype(bool)
    try:
        # Whole seconds: what the CSV (and so the hash) keeps is what the database keeps.
        frame["last_login"] = pd.to_datetime(frame["last_login"], utc=True, format="ISO8601").dt.floor("s")
    except (ValueError, TypeError) as error:
        raise SnapshotError(f"{source}: field 'last_login': not a date and time: {error}") from error
    _unique(frame, ("system", "account_id"), source)
    return frame


def memberships_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, source: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(rows, pd.DataFrame):
        rows = pd.DataFrame(list(rows), columns=None)
    if "group" in rows.columns and "group_name" not in rows.columns:
        rows = rows.rename(columns={"group": "group_name"})
    frame = _frame(rows, MEMBERSHIP_COLUMNS, source, required=MEMBERSHIP_COLUMNS)
    for column in MEMBERSHIP_COLUMNS:
        frame[column] = _text(frame[column])
    # A group listed twice for one account is one membership (APIs page over changing data).
    return frame.drop_duplicates(ignore_index=True)


def people_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, source: str = "hr.people") -> pd.DataFrame:
    import pandas as pd

    frame = _frame(rows, PERSON_COLUMNS, source, required=("employee_id", "status"))
    for column in ("employee_id", "email", "name", "manager_id", "department", "status", "role", "username"):
        frame[column] = _text(frame[column])
    bad = ~frame["status"].isin(PERSON_STATUSES)
    if bad.any():
        first = frame.loc[bad].iloc[0]
        raise SnapshotError(f"{source}: employee {first['employee_id']!r}: field 'status': {first['status']!r} "
                            f"is not one of {', '.join(PERSON_STATUSES)}")
    try:
        frame["termination_date"] = pd.to_datetime(frame["termination_date"]).dt.date
    except (ValueError, TypeError) as error:
        raise SnapshotError(f"{source}: field 'termination_date': not a date: {error}") from error
    frame["termination_date"] = frame["termination_date"].astype(object).where(frame["termination_date"].notna(), None)
    _unique(frame, ("employee_id",), source)
    return frame


def _frame(rows: Any, columns: tuple[str, ...], source: str, required: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise SnapshotError(f"{source}: rows lack the field(s) {', '.join(missing)}")
    for column in required:
        if frame[column].isna().any():
            position = int(frame[column].isna().to_numpy().nonzero()[0][0])
            raise SnapshotError(f"{source}: row {position}: field {column!r} is empty")
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame.loc[:, list(columns)]


def _text(series: pd.Series) -> pd.Series:
    """Strings, with None for missing (never the text 'nan')."""
    if series.dtype != object:
        return series.astype(str).astype(object).where(series.notna(), None)
    return series.where(series.notna(), None)


def _unique(frame: pd.DataFrame, keys: tuple[str, ...], source: str) -> None:
    duplicated = frame.duplicated(list(keys))
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise SnapshotError(f"{source}: {', '.join(f'{k} {first[k]!r}' for k in keys)} appears more than once")


# --- canonical form and manifest ----------------------------------------------------------------


def canonical(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    _, columns, keys = KINDS[kind]
    return frame.loc[:, list(columns)].sort_values(list(keys), ignore_index=True, kind="stable")


def canonical_csv(frame: pd.DataFrame, kind: str, *, ordered: bool = False) -> bytes:
    """The bytes a source's hash is taken of: header line, then rows in key order, CSV, ``\\n`` ends."""
    rows = frame if ordered else canonical(frame, kind)
    # No date_format: pandas would then format every object cell in Python (10x slower); its default
    # for an aware timestamp is ISO 8601 with the offset ("2026-10-01 06:00:00+00:00").
    return rows.to_csv(index=False, lineterminator="\n").encode()


def sha256_of(frame: pd.DataFrame, kind: str) -> str:
    return hashlib.sha256(canonical_csv(frame, kind)).hexdigest()


# --- writing and reading ------------------------------------------------------------------------


def write_snapshot(engine: Engine, campaign_id: str, sources: list[Source], *, run_id: str, as_of: datetime,
                   now: datetime, started_by: str = SYSTEM) -> list[dict[str, Any]]:
    """Replace the campaign's snapshot with these sources; return the manifest (one entry per source).

    The next source is put in order and serialised on another thread while the database loads the one
    before it: the client's CPU work and the server's overlap instead of taking turns.
    """
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise SnapshotError(f"a source appears twice in the snapshot: {names}")
    manifest: list[dict[str, Any]] = []
    with engine.begin() as connection, ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot") as pool:
        serialised = [pool.submit(_serialise, source) for source in sources[:1]]
        upsert(connection, AccessCampaignRow.__table__, [{
            "id": campaign_id, "run_id": run_id, "started_by": started_by, "as_of": as_of, "status": "snapshot",
            "summary": {},
            "review_started_at": None, "page_url": None, "created_at": now, "updated_at": now,
        }], ["id"])
        connection.execute(delete(AccessSnapshotSourceRow).where(AccessSnapshotSourceRow.campaign_id == campaign_id))
        for table, _, _ in KINDS.values():
            connection.execute(delete(table).where(table.c.campaign_id == campaign_id))
        for index, source in enumerate(sources):
            ordered, data, digest = serialised[index].result()
            if index + 1 < len(sources):
                serialised.append(pool.submit(_serialise, sources[index + 1]))
            serialised[index] = None  # each source's bytes are freed once loaded
            _insert_rows(connection, campaign_id, source.kind, ordered, data)
            manifest.append({"source": source.name, "rows": len(ordered), "sha256": digest,
                             "read_at": source.read_at})
        connection.execute(insert(AccessSnapshotSourceRow),
                           [{"campaign_id": campaign_id, **entry} for entry in manifest])
    return [{**entry, "read_at": entry["read_at"].isoformat()} for entry in manifest]


def _serialise(source: Source) -> tuple[pd.DataFrame, bytes, str]:
    """The source in canonical order, the CSV bytes its hash is taken of, and that hash."""
    ordered = canonical(source.frame, source.kind)
    data = canonical_csv(ordered, source.kind, ordered=True)
    return ordered, data, hashlib.sha256(data).hexdigest()


def _insert_rows(connection: Any, campaign_id: str, kind: str, ordered: pd.DataFrame, data: bytes) -> None:
    table, columns, _ = KINDS[kind]
    if ordered.empty:
        return
    if connection.dialect.name == "postgresql":
        body = data[data.index(b"\n") + 1:]  # the header line is hashed, not loaded
        prefix = campaign_id.encode() + b","
        if b'"' in body:  # a quoted field may hold a line break: serialise again with the campaign column
            body = ordered.assign(campaign_id=campaign_id).loc[:, ["campaign_id", *columns]].to_csv(
                index=False, header=False, lineterminator="\n").encode()
        else:
            body = prefix + body[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
        copy_csv(connection, table.name, ("campaign_id", *columns), body)
        return
    records = ordered.astype(object).where(ordered.notna(), None)
    if "last_login" in records:
        records["last_login"] = [None if v is None else v.to_pydatetime() for v in records["last_login"]]
    rows = [{"campaign_id": campaign_id, **dict(zip(columns, values, strict=True))}
            for values in records.itertuples(index=False, name=None)]
    connection.execute(insert(table), rows)


def copy_csv(connection: Any, table_name: str, columns: tuple[str, ...], body: bytes) -> None:
    """``COPY`` CSV lines (no header) into a PostgreSQL table, inside the connection's transaction."""
    cursor = connection.connection.driver_connection.cursor()
    try:
        # Large reads: the GIL is taken once per megabyte, not per 8 KiB, while other threads serialise.
        cursor.copy_expert(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)",
                           io.BytesIO(body), size=COPY_CHUNK)
    finally:
        cursor.close()


def manifest_of(engine: Engine, campaign_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(AccessSnapshotSourceRow).where(AccessSnapshotSourceRow.campaign_id == campaign_id)
            .order_by(AccessSnapshotSourceRow.source)
        ).all()
    return [{"source": r.source, "rows": r.rows, "sha256": r.sha256, "read_at": r.read_at.isoformat()} for r in rows]


def load_snapshot(engine: Engine, campaign_id: str, kind: str) -> pd.DataFrame:
    """One kind of a campaign's stored rows, as a frame with the normalised columns (key order)."""
    import pandas as pd

    table, columns, keys = KINDS[kind]
    query = (f"SELECT {', '.join(columns)} FROM {table.name} WHERE campaign_id = :campaign "
             f"ORDER BY {', '.join(keys)}")
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            frame = _copy_out(connection, table.name, columns, keys, campaign_id)
        else:
            frame = pd.read_sql_query(text(query), connection, params={"campaign": campaign_id})
    if kind == "accounts":
        return accounts_frame(frame, f"stored {kind}") if not frame.empty else _empty(columns)
    if kind == "people":
        return people_frame(frame, f"stored {kind}") if not frame.empty else _empty(columns)
    return frame if not frame.empty else _empty(columns)


def _copy_out(connection: Any, table: str, columns: tuple[str, ...], keys: tuple[str, ...],
              campaign_id: str) -> pd.DataFrame:
    import pandas as pd

    cursor = connection.connection.driver_connection.cursor()
    buffer = io.BytesIO()
    # The campaign id is a validated 'YYYY-Qn'; bound parameters do not exist inside COPY.
    if not (len(campaign_id) <= 20 and campaign_id.replace("-", "").isalnum()):
        raise ValueError(f"campaign id {campaign_id!r} is not of the form 2026-Q4")
    try:
        cursor.copy_expert(f"COPY (SELECT {', '.join(columns)} FROM {table} WHERE campaign_id = '{campaign_id}' "
                           f"ORDER BY {', '.join(keys)}) TO STDOUT WITH (FORMAT csv, HEADER)", buffer)
    finally:
        cursor.close()
    buffer.seek(0)
    frame = pd.read_csv(buffer, dtype=str, keep_default_na=False, na_values=[""])
    if "enabled" in frame:
        frame["enabled"] = frame["enabled"].map({"t": True, "f": False})
    return frame.astype(object).where(frame.notna(), None) if not frame.empty else frame


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})


def previous_campaign(engine: Engine, campaign_id: str) -> str | None:
    """The latest campaign before this one that has a snapshot (for the change since then)."""
    with engine.connect() as connection:
        return connection.execute(
            select(AccessSnapshotSourceRow.campaign_id).where(AccessSnapshotSourceRow.campaign_id < campaign_id)
            .order_by(AccessSnapshotSourceRow.campaign_id.desc()).limit(1)
        ).scalar()
