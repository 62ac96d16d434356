"""Run the support database's Alembic migrations.

``python -m prep_support.migrate`` migrates the database of the ``support_db``
Connection (``--url`` to give one directly); ``--revision`` picks a target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="SQLAlchemy URL (default: the support_db Connection)")
    parser.add_argument("--conn-id", default="support_db")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args(argv)
    if args.url:
        engine = create_engine(args.url)
    else:
        from hooks.database import DatabaseHook  # Airflow only for resolving the Connection

        engine = DatabaseHook(conn_id=args.conn_id).engine
    upgrade(engine, args.revision)
    print(f"support database at {engine.url.render_as_string()} is at revision {args.revision}")


if __name__ == "__main__":
    main()
