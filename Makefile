# The two set-up commands of the README; each works alone on a fresh Debian machine.
.PHONY: setup demo test lint bench messages

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/hafen demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/python -m pytest -n auto

# New or changed page texts into the catalogues (then translate the empty German entries;
# tests/test_hub_i18n.py fails while any is missing).
messages: setup
	.venv/bin/pybabel extract -F babel.cfg --no-location --sort-output --project hafen -o hub/web/locale/messages.pot .
	.venv/bin/pybabel update -N --no-wrap -i hub/web/locale/messages.pot -d hub/web/locale

lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy

bench: setup
	.venv/bin/python benchmarks/edge_access.py
	.venv/bin/python benchmarks/network.py
	.venv/bin/python benchmarks/ingest_firehose.py
	.venv/bin/python benchmarks/hub_scale.py
	.venv/bin/python benchmarks/site_change_reach.py
	.venv/bin/python benchmarks/dashboard.py
	.venv/bin/python benchmarks/dashboard_streams.py
	.venv/bin/python benchmarks/acl_versions.py
	.venv/bin/python benchmarks/agent_memory.py
	.venv/bin/python benchmarks/occupancy_accuracy.py
	.venv/bin/python benchmarks/occupancy_days.py
	.venv/bin/python benchmarks/occupancy_agent.py
	.venv/bin/python benchmarks/squatter.py
	.venv/bin/python benchmarks/provisioned_network.py
	.venv/bin/python benchmarks/booking_rush.py
	.venv/bin/python benchmarks/booking_rate.py
	.venv/bin/python benchmarks/spaces_near.py
	.venv/bin/python benchmarks/release_install.py
	.venv/bin/python benchmarks/update_handover.py
	.venv/bin/python benchmarks/fleet_rollout.py
