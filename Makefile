# Two commands are all a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)-uv/bin/uv)

.PHONY: run test lint bench venv clean

venv: $(VENV)/.installed

# The virtualenv is built from the pinned lock only, and rebuilt when the lock changes.
$(VENV)/.installed: requirements.txt
	@if [ ! -x "$(UV)" ]; then python3 -m venv $(VENV)-uv && $(VENV)-uv/bin/pip install -q uv; fi
	$(UV) venv --allow-existing --python 3.11 $(VENV)
	$(UV) pip install --python $(PY) -r requirements.txt
	touch $@

run: venv
	$(PY) scripts/quickstart.py

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

# The docker-compose topology as processes on this machine (local PostgreSQL and Redis); Ctrl-C stops it.
.PHONY: distributed
distributed: venv
	$(PY) scripts/distributed.py $(DISTRIBUTED_ARGS)

bench: venv
	$(PY) bench/health_sweep.py
	$(PY) bench/data_quality.py $(BENCH_DQ_ARGS)
	$(PY) bench/dashboard.py $(BENCH_DASHBOARD_ARGS)
	$(PY) bench/access_review.py $(BENCH_ACCESS_ARGS)
	$(PY) bench/how_to.py $(BENCH_HOW_TO_ARGS)

clean:
	rm -rf .airflow $(VENV) $(VENV)-uv .pytest_cache .ruff_cache
