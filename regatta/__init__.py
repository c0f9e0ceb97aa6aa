"""Regatta: a control plane that runs fleets of Kubernetes clusters through durable Temporal workflows."""
