from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from prep_support.access.snapshot import (
    SnapshotError,
    Source,
    accounts_frame,
    campaign_id_for,
    canonical_csv,
    load_snapshot,
    manifest_of,
    people_frame,
    previous_campaign,
    write_snapshot,
)
from prep_support.schema import AccessMembershipRow
from tests.plugins.access.conftest import ACCOUNTS, AS_OF, PEOPLE


def sources(frames):
    return [Source("okta.accounts", "accounts", frames["accounts"], AS_OF),
            Source("okta.memberships", "memberships", frames["memberships"], AS_OF),
            Source("hr.people", "people", frames["people"], AS_OF)]


@pytest.mark.parametrize(("moment", "campaign"), [
    (datetime(2026, 10, 1, 6, tzinfo=UTC), "2026-Q4"), (datetime(2026, 1, 1, 6, tzinfo=UTC), "2026-Q1"),
    (datetime(2026, 6, 30, 23, tzinfo=UTC), "2026-Q2")])
def test_campaign_id_is_the_quarter(moment, campaign) -> None:
    assert campaign_id_for(moment) == campaign


def test_manifest_hashes_the_canonical_csv_whatever_the_read_order(engine, frames) -> None:
    manifest = write_snapshot(engine, "2026-Q4", sources(frames), run_id="r1", as_of=AS_OF, now=AS_OF)
    by_source = {m["source"]: m for m in manifest}
    assert by_source["okta.memberships"]["rows"] == len(frames["memberships"])
    shuffled = frames["memberships"].sample(frac=1, random_state=3)
    assert by_source["okta.memberships"]["sha256"] == hashlib.sha256(canonical_csv(shuffled, "memberships")).hexdigest()
    # The stored rows give the same bytes back: the auditor can recompute every hash.
    for kind, name in (("accounts", "okta.accounts"), ("memberships", "okta.memberships"), ("people", "hr.people")):
        stored = load_snapshot(engine, "2026-Q4", kind)
        assert hashlib.sha256(canonical_csv(stored, kind)).hexdigest() == by_source[name]["sha256"], kind
    assert manifest_of(engine, "2026-Q4") == sorted(manifest, key=lambda m: m["source"])


def test_a_rerun_replaces_the_campaign_snapshot(engine, frames) -> None:
    write_snapshot(engine, "2026-Q4", sources(frames), run_id="r1", as_of=AS_OF, now=AS_OF)
    fewer = {**frames, "memberships": frames["memberships"].iloc[:3]}
    manifest = write_snapshot(engine, "2026-Q4", sources(fewer), run_id="r1", as_of=AS_OF, now=AS_OF)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(AccessMembershipRow)).scalar()
    assert count == 3
    assert {m["source"]: m["rows"] for m in manifest}["okta.memberships"] == 3


def test_previous_campaign(engine, frames) -> None:
    write_snapshot(engine, "2026-Q3", sources(frames), run_id="a", as_of=AS_OF, now=AS_OF)
    write_snapshot(engine, "2026-Q4", sources(frames), run_id="b", as_of=AS_OF, now=AS_OF)
    assert previous_campaign(engine, "2026-Q4") == "2026-Q3"
    assert previous_campaign(engine, "2026-Q3") is None


def test_postgres_copy_round_trips(postgres_url, frames) -> None:
    from sqlalchemy import create_engine

    from prep_support.migrate import upgrade

    engine = create_engine(postgres_url)
    upgrade(engine)
    tricky = frames["accounts"].copy()
    tricky.loc[0, "display_name"] = 'Comma, "quote"\nnewline'
    snap = [Source("okta.accounts", "accounts", tricky, AS_OF), *sources(frames)[1:]]
    manifest = write_snapshot(engine, "2026-Q4", snap, run_id="r", as_of=AS_OF, now=AS_OF)
    write_snapshot(engine, "2026-Q4", snap, run_id="r", as_of=AS_OF, now=AS_OF)  # replaces, no duplicate key
    by_source = {m["source"]: m["sha256"] for m in manifest}
    for kind, name in (("accounts", "okta.accounts"), ("memberships", "okta.memberships"), ("people", "hr.people")):
        stored = load_snapshot(engine, "2026-Q4", kind)
        assert hashlib.sha256(canonical_csv(stored, kind)).hexdigest() == by_source[name], kind
    engine.dispose()


def test_bad_rows_name_the_source_and_field() -> None:
    with pytest.raises(SnapshotError, match=r"okta.accounts: rows lack the field\(s\) enabled"):
        accounts_frame([{k: v for k, v in ACCOUNTS[0].items() if k != "enabled"}], "okta.accounts")
    with pytest.raises(SnapshotError, match=r"hr.people: employee 'E1': field 'status': 'gone'"):
        people_frame([{**PEOPLE[0], "status": "gone"}])
    with pytest.raises(SnapshotError, match=r"system 'okta', account_id '00u1' appears more than once"):
        accounts_frame([ACCOUNTS[0], ACCOUNTS[0]], "okta.accounts")
