"""Local stand-ins for the external systems Prep Support talks to, plus a sample estate.

Run it with ``python -m sandbox`` or, from Python and tests, with
:class:`sandbox.server.SandboxProcess`. It is never a dependency of the DAGs: hooks reach it
only through Airflow Connections, exactly as they reach the real systems.
"""
