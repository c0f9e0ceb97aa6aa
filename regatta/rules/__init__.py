"""Every decision that needs no I/O, split by subject: versions and skew, PodDisruptionBudgets and
drains, health, upgrade readiness (what a target version would break), fleet rules for new and
departing clusters, disaster recovery, selectors, maintenance windows, wave planning and the
forecast, API access, the audit chain, webhook signing.

Workflows call these deterministically, the CLI and the API call them before an operation starts,
and plain unit tests call them directly. An import-linter contract keeps this package free of I/O
and of Temporal; it may import only `regatta.models` and the standard library.
"""
