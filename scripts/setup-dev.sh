#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine of this project's kind:
# Debian's prometheus, chromium, goaccess, poppler-utils, prometheus-alertmanager, haproxy
# and rsyslog; a virtualenv in .venv with the package and its dev extra; a running
# PostgreSQL.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in prometheus:prometheus promtool:prometheus chromium:chromium goaccess:goaccess \
            pdftotext:poppler-utils prometheus-alertmanager:prometheus-alertmanager \
            haproxy:haproxy rsyslogd:rsyslog; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) fonts-dejavu-core
fi

# The suite runs from a virtualenv, as a user's install would: nothing leaks in from the
# machine's own site-packages.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
