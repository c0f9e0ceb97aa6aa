#!/bin/sh
# Temporal's two databases on PostgreSQL, created if missing and brought to the schema this server
# version ships (temporal-sql-tool is idempotent: a schema already current is left as it is).
set -eu
for db in temporal temporal_visibility; do
  case "$db" in
    temporal) schema=/etc/temporal/schema/postgresql/v12/temporal/versioned ;;
    *) schema=/etc/temporal/schema/postgresql/v12/visibility/versioned ;;
  esac
  tool="temporal-sql-tool --plugin postgres12 --ep ${SQL_HOST} -p 5432 -u ${SQL_USER} --pw ${SQL_PASSWORD} --db ${db}"
  $tool create-database || true   # already there on every start but the first
  $tool setup-schema -v 0.0 || true
  $tool update-schema -d "$schema"
done
echo "Temporal schema is current"
