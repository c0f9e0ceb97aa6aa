#!/bin/sh
# The namespace Regatta runs in and the search attributes it lists operations by; both idempotent.
set -eu
# mTLS with the admin tools' own certificate (deploy/secrets/admin-tools), as Temporal demands of every client.
if [ -n "${TEMPORAL_TLS_DIR:-}" ]; then
  set -- --tls-ca-path "$TEMPORAL_TLS_DIR/ca.pem" --tls-cert-path "$TEMPORAL_TLS_DIR/client.pem" \
    --tls-key-path "$TEMPORAL_TLS_DIR/client.key" --tls-server-name temporal
fi
temporal operator namespace describe --namespace "${REGATTA_NAMESPACE}" "$@" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "${REGATTA_NAMESPACE}" --retention 30d "$@"
for name in ${REGATTA_SEARCH_ATTRIBUTES}; do
  temporal operator search-attribute create --namespace "${REGATTA_NAMESPACE}" --name "$name" --type Keyword "$@" \
    || temporal operator search-attribute list --namespace "${REGATTA_NAMESPACE}" "$@" | grep -q "$name"
done
echo "namespace ${REGATTA_NAMESPACE} and its search attributes are in place"
