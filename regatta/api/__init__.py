"""The HTTP API change-ticket systems and portals call (`regatta api`, port 8700): start and steer
operations, read them and the inventory, each call under a token whose role and environments
say what it may do (regatta/rules/access.py)."""
