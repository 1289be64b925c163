# The two set-up commands of the README; each works alone on a fresh Debian machine.
.PHONY: setup demo test lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/hafen demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/python -m pytest -n auto

lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy

bench: setup
	.venv/bin/python benchmarks/edge_access.py
	.venv/bin/python benchmarks/network.py
	.venv/bin/python benchmarks/ingest_firehose.py
	.venv/bin/python benchmarks/hub_scale.py
	.venv/bin/python benchmarks/dashboard.py
	.venv/bin/python benchmarks/dashboard_streams.py
	.venv/bin/python benchmarks/acl_versions.py
	.venv/bin/python benchmarks/agent_memory.py
	.venv/bin/python benchmarks/occupancy_accuracy.py
	.venv/bin/python benchmarks/occupancy_days.py
	.venv/bin/python benchmarks/occupancy_agent.py
	.venv/bin/python benchmarks/squatter.py
	.venv/bin/python benchmarks/provisioned_network.py
	.venv/bin/python benchmarks/spaces_near.py
