"""The workflows: deterministic orchestration, one per file, each reading like the runbook an SRE
would follow. They import only `regatta.models`, `regatta.rules` and Temporal; every side effect is an
activity called by its name (`regatta.models.Activity`).
"""
