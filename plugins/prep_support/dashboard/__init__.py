"""The support dashboard: read-only pages over the support database (health, incidents, maintenance
windows, latency and availability charts), served inside Airflow's API server by the
``prep_support_dashboard`` plugin (``plugins/support_dashboard.py``).

Nothing here imports Airflow: the plugin hands in how to get the engine.
"""
