"""Talking to each cluster's own Kubernetes API with the official `kubernetes` client:
connecting (connect.py), cordon and PDB-respecting drain (drain.py), and reading nodes,
budgets and workload health (health.py). Only this package and `regatta.clouds` talk to
clusters and clouds.
"""
