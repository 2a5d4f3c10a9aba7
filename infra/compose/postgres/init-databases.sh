#!/bin/bash
# A role and a database per component, each owning its own database only (compose.yaml mounts
# this into /docker-entrypoint-initdb.d/: PostgreSQL's image runs it once, on an empty data
# volume). Passwords come from the environment (.env); psql quotes them, never the shell.
# infra/tests/test_compose.py runs it against a real PostgreSQL.
set -euo pipefail

create() {
  local name=$1 password=$2
  if [ -z "$password" ]; then
    echo "init-databases: no password for $name" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
  echo "init-databases: $name ready"
}

create citizen_services "${CITIZEN_SERVICES_DB_PASSWORD:-}"
create inclusion "${INCLUSION_DB_PASSWORD:-}"
create notifications "${NOTIFICATIONS_DB_PASSWORD:-}"
create gateway "${GATEWAY_DB_PASSWORD:-}"
