"""The support database's migrations on a real PostgreSQL server: up, down, and the indexes queries need."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from prep_support.migrate import downgrade, upgrade


def test_migrations_up_and_down_on_postgresql(postgres_url) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    upgrade(engine)
    inspector = inspect(engine)
    assert {"services", "checks", "check_results", "alembic_version"} <= set(inspector.get_table_names())
    indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes("check_results")}
    assert indexes["ix_check_results_check_interval_end"] == ["check_id", "data_interval_end"]
    assert indexes["ix_check_results_interval_end"] == ["data_interval_end"]
    uniques = [u["column_names"] for u in inspector.get_unique_constraints("check_results")]
    assert ["check_id", "run_id"] in uniques
    columns = {c["name"]: c for c in inspector.get_columns("check_results")}
    assert "TIMESTAMP" in str(columns["data_interval_end"]["type"]) and columns["data_interval_end"]["type"].timezone

    downgrade(engine)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(engine)  # and back up again: the downgrade left nothing behind that breaks it
    assert "check_results" in inspect(engine).get_table_names()
    engine.dispose()
