#!/usr/bin/env bash
# Install and start PostgreSQL on 127.0.0.1 with a throwaway CI database and role.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main restart
for _ in $(seq 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
su postgres -c "psql -qtc \"SELECT 1 FROM pg_roles WHERE rolname='optuna'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE optuna LOGIN PASSWORD 'optuna-ci'\""
su postgres -c "psql -qc 'DROP DATABASE IF EXISTS optuna_qsvr'"
su postgres -c "psql -qc 'CREATE DATABASE optuna_qsvr OWNER optuna'"
