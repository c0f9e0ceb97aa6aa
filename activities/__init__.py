"""Every side effect of a workflow, grouped by what it touches: cloud.py (control planes and
node pools), kube.py (cordon, drain, health), inventory.py (records and the audit trail).

Activities are synchronous and run on the worker's thread pool; each is idempotent, so a
worker may die on any line and the retried activity leaves the world the same.
"""
