#!/bin/sh
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d): a role for
# Temporal and one for Regatta, each owning only its own databases, so neither can read or rewrite the
# other's (the audit trail is Regatta's; Temporal's histories are Temporal's). The superuser stays with
# PostgreSQL itself.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" -v regatta_password="$REGATTA_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE ROLE regatta LOGIN PASSWORD :'regatta_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE DATABASE regatta OWNER regatta;
REVOKE ALL ON DATABASE temporal, temporal_visibility FROM PUBLIC;
REVOKE ALL ON DATABASE regatta FROM PUBLIC;
SQL
