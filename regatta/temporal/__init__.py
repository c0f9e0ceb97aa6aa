"""Regatta as a Temporal client: connecting (with the payload codec), the checks made before an
operation starts, starting and steering operations, and the schedules. No rendering here: the CLI
and the API present what these return.
"""
