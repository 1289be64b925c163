#!/usr/bin/env bash
# Prepare this machine for hafen: the Debian packages it needs and a venv in .venv.
# Idempotent: installs only what is missing, so `make test` and `make demo` can call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests, the demo and the benchmarks use (real brokers, browsers and
# databases, never mocks; wrk loads the API in benchmarks; victoria-metrics takes InfluxDB's
# line protocol in the InfluxDB sink's tests, as Debian has no InfluxDB 2; shellcheck checks the
# door's installer, provisioning/install.sh).
APT_PACKAGES=(python3-venv sqlite3 mosquitto mosquitto-clients postgresql wrk victoria-metrics chromium
    shellcheck)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # A fresh machine's unattended upgrades (or a second set-up) may hold dpkg's lock: wait for it.
    apt_get=($sudo apt-get -o DPkg::Lock::Timeout=600)
    "${apt_get[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing[@]}"
fi

# PostgreSQL for the hub's tests: the cluster running, and a superuser role and a database
# "test" for whoever runs the tests, reached over the local socket.
if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header | while read -r version cluster _port status _rest; do
        if [ "$status" != "online" ]; then
            echo "setup: starting PostgreSQL $version/$cluster"
            pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
        fi
    done
    me=$(id -un)
    if ! psql -h /var/run/postgresql -d test -c "select 1" >/dev/null 2>&1; then
        echo "setup: creating PostgreSQL role $me and database test"
        as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$*"; else sudo -u postgres sh -c "$*"; fi; }
        as_postgres "psql -tAc \"select 1 from pg_roles where rolname = '$me'\"" | grep -q 1 \
            || as_postgres "createuser --superuser $me"
        as_postgres "psql -tAc \"select 1 from pg_database where datname = 'test'\"" | grep -q 1 \
            || as_postgres "createdb --owner $me test"
    fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: hafen needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version)" >&2
    exit 1
fi

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    # The wheels of hafen[edge]'s dependencies, for the fleet-update tests' releases: fetched
    # now, while pip's sources are at hand, and kept in .venv, so the tests need no network.
    .venv/bin/python -m tests.support.wheelhouse
    touch "$stamp"
fi
