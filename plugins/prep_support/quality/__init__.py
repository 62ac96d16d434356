"""Data quality: suites as config, validated on the data interval's slice with GX semantics.

- :mod:`.config`: ``load_suites(directory, known_connections, catalog)`` -> (suites, errors), the
  ``Suite`` model (YAML under include/config/quality/), ``SuiteError``.
- :mod:`.checks`: the check vocabulary (GX expectations and our own kinds) and their kwargs.
- :mod:`.sql_engine`: ``validate_sql(engine, suite, start, end, volume_history)``, pushed down
  to PostgreSQL or SQLite in one pass.
- :mod:`.file_engine`: ``validate_files(suite, start, end, volume_history)``, CSV/Parquet via pandas.
- :mod:`.outcomes`: ``CheckOutcome`` and ``QualityError``.

Nothing is imported here, so the DAG file can load suites without SQLAlchemy or pandas.
"""
