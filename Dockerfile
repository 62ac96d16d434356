# The Prep Support image: the official Airflow image plus exactly our lock (requirements.txt).
#
# Built by `docker compose build` (or `docker compose up airflow-init`). DAGs, plugins and
# include/ are mounted by docker-compose.yaml rather than baked in, so editing them needs no
# rebuild; editing requirements.txt does.
#
# The Airflow version of this tag must equal the apache-airflow== pin of requirements.txt, and the
# Python version must satisfy pyproject.toml: tests/dags/test_docker_compose.py checks both.
FROM apache/airflow:3.3.2-python3.11

# Only the lock is copied, so BuildKit sends only it as build context and the pip layer is cached
# until the lock changes. The lock pins apache-airflow itself, so pip cannot move Airflow.
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt
