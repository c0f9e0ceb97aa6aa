"""The fleet simulator: one HTTP server standing in for every cloud control plane and every
cluster's API server, with faults, a movable clock and its own record of invariants. Imported
only by the dev stack, the tests and the benchmarks.
"""
