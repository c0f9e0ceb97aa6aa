"""The files operators write: the fleet file (clusters, node pools, workloads, accounts) and the wave
file. Each reader reports every problem with the file and line that holds it.
"""
